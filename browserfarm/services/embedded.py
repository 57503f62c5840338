"""The embedded farm's first start: an owner account and its credentials file."""
from __future__ import annotations

import json
import os
from pathlib import Path

from browserfarm.models import Account
from browserfarm.security import digest, new_access_key
from browserfarm.services.accounts import create_account, create_token


def ensure_owner_credentials(farm, cloud_url: str) -> tuple[Path, bool]:
    """Write ``<data dir>/credentials.json`` (0600) for the owner account, creating the
    account on first start. Returns the path and whether anything was created.

    When the file is gone but the account exists, its secrets can't be recovered
    (only digests are stored): a new owner token and v5 key are issued.
    """
    path = farm.settings.credentials_path
    first = Account.select().order_by(Account.id).first()
    if first is not None and path.exists():
        current = json.loads(path.read_text())
        if current.get("cloud_url") != cloud_url:
            _write(path, current | {"cloud_url": cloud_url})
        return path, False
    if first is None:
        new = create_account(farm, "owner")
        credentials = {"account_id": new.account.id, "token": new.token,
                       "v5_username": new.v5_username, "v5_access_key": new.v5_access_key}
    else:
        raw, _ = create_token(farm, first.id, name="owner (reissued)", role="owner")
        key = new_access_key()
        Account.update(v5_key_hash=digest(key)).where(Account.id == first.id).execute()
        credentials = {"account_id": first.id, "token": raw,
                       "v5_username": first.v5_username, "v5_access_key": key}
    _write(path, {"cloud_url": cloud_url, **credentials})
    return path, True


def _write(path: Path, credentials: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credentials, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def login_agent(farm, credentials_path: Path) -> str:
    """Log this data dir's agent into the embedded cloud with the owner's token, and
    add ``local_url`` and ``local_token`` to the credentials file."""
    from browserfarm.agent import Login
    credentials = json.loads(credentials_path.read_text())
    settings = farm.settings
    current = Login.load(settings.data_dir)
    Login(server=credentials["cloud_url"], token=credentials["token"],
          local_token=current.local_token).save(settings.data_dir)
    local_url = f"http://127.0.0.1:{settings.local_port}"
    _write(credentials_path, credentials | {"local_url": local_url,
                                            "local_token": current.local_token})
    return local_url
