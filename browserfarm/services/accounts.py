"""Accounts (teams), their members, API tokens and v5 credentials.

Secrets are shown once, when created, and stored as SHA-256 digests only.
"""
from __future__ import annotations

import re
import secrets as pysecrets
from dataclasses import dataclass
from datetime import timedelta

from browserfarm import permissions as perm
from browserfarm.db import Lookup, write_transaction
from browserfarm.errors import InvalidInput, NotFound, Unauthorized
from browserfarm.models import Account, ApiToken, Member, utcnow
from browserfarm.security import TOKEN_PREFIX, digest, new_access_key, new_token

LAST_USED_RESOLUTION = timedelta(minutes=1)  # don't write on every request
# Every cloud request reads its token: built by peewee once (see db.Lookup).
_LIVE_TOKEN = Lookup(lambda: ApiToken.select().where(ApiToken.token_hash == "",
                                                     ApiToken.revoked_at.is_null()))


@dataclass(frozen=True)
class NewAccount:
    account: Account
    owner: Member
    token: str  # the owner's bearer token, shown once
    v5_username: str
    v5_access_key: str  # shown once


def create_account(farm, name: str, owner_name: str = "owner", email: str | None = None,
                   v5_username: str | None = None, sessions_limit: int = 2) -> NewAccount:
    if not name.strip():
        raise InvalidInput("name", "must not be empty")
    if Account.select().where(Account.name == name).exists():
        raise InvalidInput("name", f"an account named {name!r} exists")
    username = v5_username or _username_for(name)
    if Account.select().where(Account.v5_username == username).exists():
        raise InvalidInput("v5_username", f"{username!r} is taken")
    access_key = new_access_key()
    with write_transaction(farm.db):
        account = Account.create(name=name, v5_username=username,
                                 v5_key_hash=digest(access_key),
                                 sessions_limit=sessions_limit)
        owner = Member.create(account=account, name=owner_name, email=email, role="owner")
        token, _ = create_token(farm, account.id, name=f"{owner_name} (owner)", role="owner",
                                member_id=owner.id)
    return NewAccount(account, owner, token, username, access_key)


def create_token(farm, account_id: int, name: str, permissions=(), role: str | None = None,
                 member_id: int | None = None) -> tuple[str, ApiToken]:
    """A new bearer token with ``permissions`` plus those of ``role``."""
    if role is not None and role not in perm.ROLES:
        raise InvalidInput("role", f"unknown role {role!r} (known: {', '.join(perm.ROLES)})")
    granted = set(permissions) | set(perm.ROLES.get(role, ()))
    unknown = sorted(granted - set(perm.ALL))
    if unknown:
        raise InvalidInput("permission", f"unknown permissions: {', '.join(unknown)}")
    if not granted:
        raise InvalidInput("permission", "a token needs at least one permission or a role")
    if not Account.select().where(Account.id == account_id).exists():
        raise NotFound(f"Account not found: {account_id}")
    raw = new_token()
    token = ApiToken.create(account=account_id, member=member_id, name=name,
                            token_hash=digest(raw), prefix=raw[:10],
                            permissions=sorted(granted))
    return raw, token


def reissue_token(farm, account_id: int, name: str, role: str,
                  member_id: int | None = None) -> tuple[str, ApiToken]:
    """A new token named ``name``, replacing the account's live tokens of that name
    (revoked): one whose secret was lost (a deleted credentials file) must not stay
    valid next to the new one."""
    with write_transaction(farm.db):
        ApiToken.update(revoked_at=utcnow()).where(
            ApiToken.account == account_id, ApiToken.name == name,
            ApiToken.revoked_at.is_null()).execute()
        return create_token(farm, account_id, name=name, role=role, member_id=member_id)


def live_token(raw: str) -> ApiToken | None:
    """The token ``raw`` if it exists and is not revoked."""
    return _LIVE_TOKEN.first(digest(raw)) if raw else None


def add_member(farm, account_id: int, name: str, role: str,
               email: str | None = None) -> tuple[Member, str]:
    """A new member of the account with a token carrying the role's permissions."""
    if role not in perm.ROLES:
        raise InvalidInput("role", f"unknown role {role!r} (known: {', '.join(perm.ROLES)})")
    if not name.strip():
        raise InvalidInput("name", "must not be empty")
    with write_transaction(farm.db):
        if not Account.select().where(Account.id == account_id).exists():
            raise NotFound(f"Account not found: {account_id}")
        member = Member.create(account=account_id, name=name, email=email, role=role)
        raw, _ = create_token(farm, account_id, name=f"{name} ({role})", role=role,
                              member_id=member.id)
    return member, raw


def revoke_token(farm, token_id: int | None = None, raw: str | None = None) -> ApiToken:
    query = ApiToken.select().where(ApiToken.revoked_at.is_null())
    if raw:
        query = query.where(ApiToken.token_hash == digest(raw))
    else:
        query = query.where(ApiToken.id == token_id)
    token = query.first()
    if token is None:
        raise NotFound("No such active token")
    token.revoked_at = utcnow()
    token.save()
    return token


def authenticate_bearer(header: str | None) -> perm.Caller:
    """The caller of an ``Authorization: Bearer <token>`` header."""
    if not header:
        raise Unauthorized("Authorization: Bearer <token> is required")
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw.startswith(TOKEN_PREFIX):
        raise Unauthorized("Invalid token")
    # The digest is the lookup key: no timing signal about stored tokens.
    token = _LIVE_TOKEN.first(digest(raw))
    if token is None:
        raise Unauthorized("Invalid token")
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
    return perm.Caller(account_id=token.account_id, permissions=frozenset(token.permissions),
                       token_id=token.id)


def find_account(ref: str) -> Account:
    """An account by id or name."""
    account = (Account.get_or_none(Account.id == int(ref)) if _is_number(ref)
               else Account.get_or_none(Account.name == ref))
    if account is None:
        raise NotFound(f"Account not found: {ref}")
    return account


def _is_number(ref) -> bool:
    return str(ref).isascii() and str(ref).isdigit()


def _username_for(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "", name.lower())[:20] or "user"
    return f"{base}{pysecrets.token_hex(3)}"
