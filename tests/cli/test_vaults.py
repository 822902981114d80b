"""runqy vault: entries stored encrypted, printed masked; deleting asks first."""

import io
import json
import os
import pty
import sys

import pytest

from runqy import keys
from runqy.vault import Cipher
from tests.cli.helpers import VAULT_KEY, cli
from tests.conftest import ADMIN_KEY, ROOT, Gunicorn


def test_vault_commands_store_encrypted_entries_and_print_them_masked(url, capsys, r):
    assert cli(capsys, "vault", "create", "api-keys", "-d", "keys for services") == \
        (0, "Vault 'api-keys' created successfully.\n", "")
    assert cli(capsys, "vault", "set", "api-keys", "OPENAI_API_KEY", "sk-live-123456789") == \
        (0, "Entry 'OPENAI_API_KEY' set in vault 'api-keys'.\n", "")
    assert cli(capsys, "vault", "set", "api-keys", "DEBUG_MODE", "true", "--no-secret")[0] == 0

    assert r.sismember(keys.VAULTS, "api-keys")
    stored = json.loads(r.hget(keys.vault("api-keys"), keys.vault_entry_field("OPENAI_API_KEY")))
    assert "sk-live" not in stored["value"] and stored["is_secret"] is True

    code, out, _ = cli(capsys, "vault", "show", "api-keys")
    assert code == 0
    assert out.startswith("Vault: api-keys\nDescription: keys for services\nCreated: ")
    assert "Entries (2):" in out
    assert ["OPENAI_API_KEY", "sk****89", "yes"] in [line.split() for line in out.splitlines()]
    assert ["DEBUG_MODE", "true", "no"] in [line.split() for line in out.splitlines()]
    assert "sk-live-123456789" not in out

    code, out, _ = cli(capsys, "vault", "entries", "api-keys")
    assert out.splitlines()[0].split() == ["KEY", "VALUE", "SECRET", "UPDATED"]
    assert "sk-live-123456789" not in out

    code, out, _ = cli(capsys, "vault", "list")
    assert [line.split(None, 1) for line in out.splitlines()][1] == ["api-keys", "keys for services  2"]

    assert cli(capsys, "vault", "unset", "api-keys", "DEBUG_MODE") == \
        (0, "Entry 'DEBUG_MODE' removed from vault 'api-keys'.\n", "")
    assert not r.hexists(keys.vault("api-keys"), keys.vault_entry_field("DEBUG_MODE"))


def test_vault_set_reads_the_value_from_stdin_when_it_is_a_dash(url, capsys, r, monkeypatch):
    cli(capsys, "vault", "create", "v")
    monkeypatch.setattr(sys, "stdin", io.StringIO("from-stdin-secret\n"))

    assert cli(capsys, "vault", "set", "v", "TOKEN", "-")[0] == 0

    stored = json.loads(r.hget(keys.vault("v"), keys.vault_entry_field("TOKEN")))
    assert Cipher(VAULT_KEY).decrypt("v", "TOKEN", stored["value"]) == "from-stdin-secret"


def test_vault_json_answers_are_masked_too(url, capsys):
    cli(capsys, "vault", "create", "v")
    cli(capsys, "vault", "set", "v", "TOKEN", "abcdefghijkl")

    for argv in (("vault", "show", "v", "--json"), ("vault", "entries", "v", "--json")):
        code, out, _ = cli(capsys, *argv)
        assert code == 0
        assert "abcdefghijkl" not in out and "ab****kl" in out


def test_vault_set_of_a_reserved_key_exits_1_with_the_server_message(url, capsys, r):
    cli(capsys, "vault", "create", "v")

    code, _, err = cli(capsys, "vault", "set", "v", "PATH", "/tmp")

    assert code == 1
    assert "PATH is reserved" in err
    assert not r.hexists(keys.vault("v"), keys.vault_entry_field("PATH"))


def test_vault_delete_without_a_terminal_refuses_and_keeps_the_vault(url, capsys, r, monkeypatch):
    cli(capsys, "vault", "create", "v")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))

    code, out, err = cli(capsys, "vault", "delete", "v")

    assert (code, out) == (2, "")
    assert "stdin is not a terminal (use --force)" in err
    assert r.sismember(keys.VAULTS, "v")


def test_vault_delete_with_force_deletes_without_asking(url, capsys, r):
    cli(capsys, "vault", "create", "v")

    assert cli(capsys, "vault", "delete", "v", "--force") == (0, "Vault 'v' deleted successfully.\n", "")
    assert not r.sismember(keys.VAULTS, "v") and not r.exists(keys.vault("v"))
    assert cli(capsys, "vault", "show", "v")[0] == 1


@pytest.mark.parametrize("answer, deleted", [("y", True), ("n", False)])
def test_vault_delete_on_a_terminal_asks_first(url, capsys, r, monkeypatch, answer, deleted):
    cli(capsys, "vault", "create", "v")
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "r")
    try:
        os.write(master, (answer + "\n").encode())
        monkeypatch.setattr(sys, "stdin", terminal)

        code, out, _ = cli(capsys, "vault", "delete", "v")
    finally:
        terminal.close()
        os.close(master)

    assert code == 0
    assert out.startswith("Are you sure you want to delete vault 'v' and all its entries? (y/N): ")
    assert out.endswith("Vault 'v' deleted successfully.\n" if deleted else "Cancelled.\n")
    assert r.sismember(keys.VAULTS, "v") is not deleted


@pytest.fixture(scope="module")
def vaultless_server(redis_server):
    """A server without RUNQY_VAULT_MASTER_KEY: vaults disabled."""
    server = Gunicorn({"RUNQY_API_KEY": ADMIN_KEY, "REDIS_URL": "redis://127.0.0.1:%d/0" % redis_server.port,
                       "RUNQY_CONFIG_DIR": str(ROOT / "config"), "RUNQY_VAULT_MASTER_KEY": ""}, workers=1)
    yield server
    server.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("argv", [("vault", "list"), ("vault", "create", "v")])
def test_with_vaults_disabled_the_servers_message_is_shown_whole_and_named_a_server_setting(
        vaultless_server, capsys, r, argv):
    code, out, err = cli(capsys, "-s", vaultless_server.url, "-k", ADMIN_KEY, *argv)

    assert (code, out) == (1, "")
    assert err == ("Error: %s\nRUNQY_VAULT_MASTER_KEY is a setting of the server, not of this CLI: set it in the "
                   "server's environment and restart the server.\n" % Cipher("").problem)
    assert "python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'" in err
    assert not r.sismember(keys.VAULTS, "v")
