"""runqy login, logout and auth: the saved profiles, and which server and key a command uses."""

import json
import os
import stat
import sys

from runqy import defaults, keys
from tests.cli.helpers import cli, nowhere
from tests.conftest import ADMIN_KEY, WORKER_KEY

SECRET_KEY = "adm-0123456789-secret-zz"


def save(capsys, server: str, key: str, name: str = defaults.CLI_PROFILE) -> None:
    """A profile saved as login saves it, without a server to check the key with."""
    assert cli(capsys, "login", "-s", server, "-k", key, "-n", name, "--no-check")[0] == 0


def test_login_checks_the_key_and_saves_the_profile_in_a_0700_directory_and_a_0600_file(url, capsys, tmp_path):
    code, out, _ = cli(capsys, "login", "-s", url + "/", "-k", ADMIN_KEY)

    assert (code, out) == (0, 'Logged in to %s (saved as "%s")\n' % (url, defaults.CLI_PROFILE))
    home = tmp_path / "runqy-home"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "credentials.json").stat().st_mode) == 0o600
    assert json.loads((home / "credentials.json").read_text()) == {
        "servers": {defaults.CLI_PROFILE: {"url": url, "api_key": ADMIN_KEY}}, "current": defaults.CLI_PROFILE}
    assert os.listdir(home) == ["credentials.json"]  # the temporary file was renamed into place


def test_login_with_a_wrong_key_exits_1_and_saves_nothing(url, capsys, tmp_path):
    save(capsys, "http://a.example", "key-a-123", "a")
    before = (tmp_path / "runqy-home" / "credentials.json").read_text()

    code, out, err = cli(capsys, "login", "-s", url, "-k", "not-the-key", "-n", "local")

    assert (code, out) == (1, "")
    assert err == "Error: invalid API key\nNothing was saved. Log in with the server's admin key (its RUNQY_API_KEY).\n"
    assert (tmp_path / "runqy-home" / "credentials.json").read_text() == before


def test_login_with_a_key_that_is_not_the_admin_key_exits_1_and_saves_nothing(url, capsys, tmp_path):
    code, out, err = cli(capsys, "login", "-s", url, "-k", WORKER_KEY)

    assert (code, out) == (1, "")
    assert err.startswith("Error: ") and "Nothing was saved" in err
    assert not (tmp_path / "runqy-home").exists()


def test_login_to_a_server_that_does_not_listen_exits_3_saves_nothing_and_says_how_to_save_anyway(capsys, tmp_path):
    server = nowhere()

    code, out, err = cli(capsys, "login", "-s", server, "-k", SECRET_KEY)

    assert (code, out) == (3, "")
    first, hint = err.splitlines()
    assert first.startswith("Error: cannot reach the runqy server at %s: " % server)
    assert hint == "Nothing was saved. Check the URL. To save the profile without asking the server, add --no-check."
    assert not (tmp_path / "runqy-home").exists()


def test_login_no_check_saves_without_asking_the_server(capsys, tmp_path):
    server = nowhere()

    code, out, err = cli(capsys, "login", "-s", server, "-k", SECRET_KEY, "--no-check")

    assert (code, out, err) == (0, 'Saved %s as "%s" without checking the key\n' % (server, defaults.CLI_PROFILE), "")
    saved = json.loads((tmp_path / "runqy-home" / "credentials.json").read_text())
    assert saved["servers"][defaults.CLI_PROFILE] == {"url": server, "api_key": SECRET_KEY}


def test_without_runqy_config_home_credentials_go_to_dot_runqy_in_home(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("RUNQY_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))

    save(capsys, "runqy.example.com", SECRET_KEY, "prod")

    path = tmp_path / defaults.CLI_HOME / "credentials.json"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["servers"]["prod"]["url"] == "http://runqy.example.com"


def test_auth_status_and_list_show_keys_masked(capsys):
    save(capsys, "http://prod.example:3000", SECRET_KEY, "prod")
    save(capsys, "http://staging.example:3000", "staging-key-42", "staging")

    code, out, _ = cli(capsys, "auth", "status")
    assert code == 0
    assert out == "Current server: staging\nURL: http://staging.example:3000\nAPI Key: st****42\n"

    code, out, _ = cli(capsys, "auth", "list")
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "URL", "API_KEY", "CURRENT"],
        ["prod", "http://prod.example:3000", "ad****zz"],
        ["staging", "http://staging.example:3000", "st****42", "*"]]

    for argv in (("auth", "status", "--json"), ("auth", "list", "--json")):
        code, out, _ = cli(capsys, *argv)
        assert code == 0
        assert json.loads(out)["servers"]["prod"]["api_key"] == "ad****zz"
        assert SECRET_KEY not in out and "staging-key-42" not in out


def test_auth_status_names_a_flag_or_variable_that_overrides_the_profile(capsys, monkeypatch):
    save(capsys, "http://prod.example:3000", SECRET_KEY)
    monkeypatch.setenv("RUNQY_SERVER", "http://other.example:3000")

    _, out, _ = cli(capsys, "auth", "status")

    assert "In use: http://other.example:3000 (from RUNQY_SERVER), no API key" in out


def test_auth_switch_changes_the_current_profile(capsys, tmp_path):
    save(capsys, "http://a.example", "key-a-123", "a")
    save(capsys, "http://b.example", "key-b-123", "b")

    assert cli(capsys, "auth", "switch", "a") == (0, 'Switched to "a"\nURL: http://a.example\n', "")
    assert json.loads((tmp_path / "runqy-home" / "credentials.json").read_text())["current"] == "a"

    code, _, err = cli(capsys, "auth", "switch", "c")
    assert code == 1
    assert err == ("Error: no saved server named 'c' (saved: a, b)\n"
                   "'runqy login -s URL -n c' saves a profile under that name.\n")


def test_logout_removes_the_current_profile_or_all_of_them(capsys, tmp_path):
    path = tmp_path / "runqy-home" / "credentials.json"
    save(capsys, "http://a.example", "key-a-123", "a")
    save(capsys, "http://b.example", "key-b-123", "b")

    assert cli(capsys, "logout") == (0, 'Logged out from "b"\n', "")
    assert json.loads(path.read_text()) == {"servers": {"a": {"url": "http://a.example", "api_key": "key-a-123"}},
                                            "current": None}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli(capsys, "auth", "status")[1].startswith("Not logged in.\n")
    assert cli(capsys, "logout", "-n", "zzz")[0] == 1

    assert cli(capsys, "logout", "--all") == (0, "Removed all saved credentials.\n", "")
    assert not path.exists()
    assert cli(capsys, "auth", "list")[1].startswith("No saved servers.\n")


def test_login_without_a_key_and_without_a_terminal_is_a_usage_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))

    code, _, err = cli(capsys, "login", "-s", "http://a.example")
    sys.stdin.close()

    assert code == 2
    assert "login needs an API key" in err
    assert not (tmp_path / "runqy-home").exists()


def test_login_takes_the_key_from_runqy_api_key(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNQY_API_KEY", "from-the-environment")

    assert cli(capsys, "login", "-s", "http://a.example", "--no-check")[0] == 0

    saved = json.loads((tmp_path / "runqy-home" / "credentials.json").read_text())
    assert saved["servers"][defaults.CLI_PROFILE]["api_key"] == "from-the-environment"


def test_a_corrupt_credentials_file_is_a_usage_error_naming_it(capsys, tmp_path):
    home = tmp_path / "runqy-home"
    home.mkdir()
    (home / "credentials.json").write_text("{not json")

    code, _, err = cli(capsys, "auth", "status")

    assert code == 2
    assert str(home / "credentials.json") in err


def test_the_saved_profile_names_the_server_that_is_called(capsys):
    server = nowhere()
    save(capsys, server, "key-123")

    code, _, err = cli(capsys, "queue", "list")

    assert code == 3
    assert server in err


def test_the_saved_profile_is_used_without_flags_and_its_key_only_goes_to_its_server(url, capsys, monkeypatch):
    monkeypatch.delenv("RUNQY_SERVER")
    monkeypatch.delenv("RUNQY_API_KEY")
    assert cli(capsys, "login", "-s", url, "-k", ADMIN_KEY, "-n", "local")[0] == 0

    code, out, _ = cli(capsys, "config", "list")
    assert code == 0 and "simple" in out

    other_spelling = url.replace("127.0.0.1", "localhost")
    code, _, err = cli(capsys, "-s", other_spelling, "config", "list")
    assert code == 1
    assert "missing API key" in err


def test_a_wrong_api_key_exits_1_with_the_servers_message_and_a_hint(url, capsys, r):
    code, out, err = cli(capsys, "-k", "not-the-key", "queue", "pause", "simple")

    assert (code, out) == (1, "")
    assert err.startswith("Error: invalid API key\n")
    assert "RUNQY_API_KEY" in err
    assert not r.exists(keys.paused("simple.default"))
