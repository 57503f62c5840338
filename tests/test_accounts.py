"""Accounts, tokens and secrets at rest, through the CLI an operator uses."""
import json
import subprocess
import sys

import pytest

from browserfarm.models import Account, ApiToken, Window
from browserfarm.security import ProxyCipher, digest
from tests.conftest import Caller, in_db


def cli(data_dir, *args, env=None, check=True):
    result = subprocess.run([sys.executable, "-m", "browserfarm.cli", "--data-dir",
                             str(data_dir), *args], capture_output=True, text=True,
                            timeout=120, env=env)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_tokens_and_access_keys_are_stored_as_digests_only(farm, owner):
    stored = in_db(farm, lambda: [(t.token_hash, t.prefix) for t in ApiToken.select()])
    assert stored == [(digest(owner.token), owner.token[:10])]
    account = in_db(farm, lambda: Account.get_by_id(owner.account.id))
    assert len(account.v5_key_hash) == 64
    url = farm.settings.effective_database_url
    if url.startswith("sqlite"):
        raw = open(url.split("///", 1)[1], "rb").read()
        assert owner.token.encode() not in raw


def test_proxy_passwords_are_encrypted_at_rest(farm, owner):
    window = owner("/browser/update", {"proxyType": "socks5", "host": "h", "port": 1,
                                       "proxyUserName": "u",
                                       "proxyPassword": "hunter2-secret"}).data
    column = in_db(farm, lambda: Window.get_by_id(window["id"]).proxy_password_enc)
    assert "hunter2" not in column
    assert ProxyCipher.from_settings(farm.settings).decrypt(column) == "hunter2-secret"
    key_file = farm.settings.data_dir / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_a_farm_with_another_key_cannot_read_passwords(farm):
    other = ProxyCipher(ProxyCipher.from_settings(farm.settings)._fernet.generate_key())
    token = ProxyCipher.from_settings(farm.settings).encrypt("x")
    with pytest.raises(RuntimeError, match="secret key changed"):
        other.decrypt(token)


def test_cli_account_and_token_lifecycle(tmp_path, farm, client):
    """An operator creates an account, a limited token, uses it, then revokes it."""
    data_dir = farm.settings.data_dir
    env = {"DATABASE_URL": farm.settings.effective_database_url, "PATH": "/usr/bin:/bin"}
    created = json.loads(cli(data_dir, "account", "create", "Team A", "--email",
                             "a@example.com", env=env).stdout)
    assert created["token"].startswith("bf_") and len(created["v5_access_key"]) == 40
    assert Caller(client, created["token"])("/browser/list").code == 0

    limited = json.loads(cli(data_dir, "token", "create", "--account", "Team A",
                             "--permission", "browser:list", "--name", "reader",
                             env=env).stdout)
    assert limited["permissions"] == ["browser:list"]
    reader = Caller(client, limited["token"])
    assert reader("/browser/list").code == 0
    assert reader("/browser/update", {}).code == 403

    listing = cli(data_dir, "token", "list", "--account", str(created["account_id"]),
                  env=env).stdout
    assert "reader" in listing and limited["token"] not in listing
    cli(data_dir, "token", "revoke", str(limited["id"]), env=env)
    assert reader("/browser/list").code == 401

    role = json.loads(cli(data_dir, "token", "create", "--account", "Team A", "--role",
                          "read-only", env=env).stdout)
    assert role["permissions"] == ["browser:list", "group:list", "proxy:list", "tag:list"]


def test_cli_refuses_bad_input_with_a_message(tmp_path):
    bad_permission = cli(tmp_path, "token", "create", "--account", "x", "--permission",
                         "browser:fly", check=False)
    assert bad_permission.returncode == 2 and "browser:fly" in bad_permission.stderr
    cli(tmp_path, "db", "upgrade")
    unknown = cli(tmp_path, "token", "create", "--account", "nobody", "--role", "owner",
                  check=False)
    assert unknown.returncode == 1 and "Account not found: nobody" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    no_permission = cli(tmp_path, "account", "create", "t", check=True)
    acc = json.loads(no_permission.stdout)["account_id"]
    empty = cli(tmp_path, "token", "create", "--account", str(acc), check=False)
    assert empty.returncode == 1 and "at least one permission" in empty.stderr


def test_cli_adds_members_with_role_tokens(tmp_path, farm, client):
    data_dir = farm.settings.data_dir
    env = {"DATABASE_URL": farm.settings.effective_database_url, "PATH": "/usr/bin:/bin"}
    cli(data_dir, "account", "create", "Team B", env=env)
    added = json.loads(cli(data_dir, "account", "add-member", "--account", "Team B",
                           "--name", "eve", "--role", "read-only", env=env).stdout)
    eve = Caller(client, added["token"])
    assert eve("/browser/list").code == 0 and eve("/browser/update", {}).code == 403
    listing = cli(data_dir, "account", "list", env=env).stdout
    assert "eve (read-only)" in listing and "owner (owner)" in listing
    bad = cli(data_dir, "account", "add-member", "--account", "Team B", "--name", "x",
              "--role", "boss", env=env, check=False)
    assert bad.returncode == 2 and "boss" in bad.stderr


def test_account_names_are_unique(farm):
    from browserfarm.errors import InvalidInput
    from browserfarm.services.accounts import create_account
    in_db(farm, lambda: create_account(farm, "Team A"))
    with pytest.raises(InvalidInput, match="Team A"):
        in_db(farm, lambda: create_account(farm, "Team A"))
