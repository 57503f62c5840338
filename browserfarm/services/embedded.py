"""The embedded farm's first start: an owner account and its credentials file; and the
login of this desktop's agent, with a token of its own (the "agent" role)."""
from __future__ import annotations

import json
from pathlib import Path

from browserfarm.models import Account, Member
from browserfarm.security import digest, new_access_key
from browserfarm.services.accounts import create_account, live_token, reissue_token

AGENT_TOKEN = "agent (embedded)"  # the name of the agent's token: one live at a time


def ensure_owner_credentials(farm, cloud_url: str) -> tuple[Path, bool]:
    """Write the data dir's credentials file (0600) for the owner account, creating the
    account on first start. Returns the path and whether anything was created.

    When the file is gone but the account exists, its secrets can't be recovered
    (only digests are stored): a new owner token and v5 key are issued, and the lost
    owner token is revoked.
    """
    data = farm.settings.data
    path = data.credentials
    first = Account.select().order_by(Account.id).first()
    if first is not None and path.exists():
        current = json.loads(path.read_text())
        if current.get("cloud_url") != cloud_url:
            _write(data, current | {"cloud_url": cloud_url})
        return path, False
    if first is None:
        new = create_account(farm, "owner")
        credentials = {"account_id": new.account.id, "token": new.token,
                       "v5_username": new.v5_username, "v5_access_key": new.v5_access_key}
    else:
        owner = first.members.where(Member.role == "owner").order_by(Member.id).first()
        # An account whose owners were all demoted or removed still gets its owner
        # token back, one of no member (as create_token allows), else up can't start.
        name = owner.name if owner else "owner"
        raw, _ = reissue_token(farm, first.id, name=f"{name} (owner)", role="owner",
                               member_id=owner.id if owner else None)
        key = new_access_key()
        Account.update(v5_key_hash=digest(key)).where(Account.id == first.id).execute()
        credentials = {"account_id": first.id, "token": raw,
                       "v5_username": first.v5_username, "v5_access_key": key}
    _write(data, {"cloud_url": cloud_url, **credentials})
    return path, True


def _write(data, credentials: dict) -> None:
    data.write_private(data.credentials, json.dumps(credentials, indent=2))


def login_agent(farm) -> str:
    """Log this data dir's agent into the embedded cloud with a token of the "agent"
    role (kept while it is live; else a new one, the earlier revoked), and add
    ``local_url`` and ``local_token`` to the credentials file."""
    from browserfarm.agent import Login
    settings = farm.settings
    credentials = json.loads(settings.data.credentials.read_text())
    current = Login.load(settings.data_dir)
    kept = live_token(current.token) if current.server == credentials["cloud_url"] else None
    if kept is not None and kept.name == AGENT_TOKEN \
            and kept.account_id == credentials["account_id"]:
        token = current.token
    else:
        token, _ = reissue_token(farm, credentials["account_id"], AGENT_TOKEN, role="agent")
    Login(server=credentials["cloud_url"], token=token,
          local_token=current.local_token).save(settings.data_dir)
    local_url = f"http://127.0.0.1:{settings.local_port}"
    _write(settings.data, credentials | {"local_url": local_url,
                                         "local_token": current.local_token})
    return local_url
