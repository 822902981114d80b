"""The admin CLI where no runqy server is involved: usage errors, saved credentials,
``config validate``, and the exit code for a server that cannot be reached.
"""

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from runqy import __version__
from runqy.cli import main
from tests.conftest import ROOT, free_port

SECRET_KEY = "adm-0123456789-secret-zz"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No server or key from the environment; profiles are saved under tmp_path."""
    monkeypatch.delenv("RUNQY_SERVER", raising=False)
    monkeypatch.delenv("RUNQY_API_KEY", raising=False)
    monkeypatch.setenv("RUNQY_CONFIG_HOME", str(tmp_path / "runqy-home"))


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def nowhere() -> str:
    """A loopback URL where nothing listens."""
    return "http://127.0.0.1:%d" % free_port()


# --- usage ------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["--version"], ["-v"], ["queue", "--version"], ["task", "list", "--version"], ["vault", "set", "--version"],
    ["config", "validate", "--version"], ["auth", "status", "--version"],
])
def test_version_is_printed_at_every_level(capsys, argv):
    assert cli(capsys, *argv) == (0, "runqy %s\n" % __version__, "")


@pytest.mark.parametrize("argv", [
    ["-h"], ["queue", "-h"], ["queue", "list", "-h"], ["task", "enqueue", "-h"], ["worker", "info", "-h"],
    ["config", "create", "-h"], ["vault", "delete", "-h"], ["login", "-h"], ["auth", "switch", "-h"], ["serve", "-h"],
])
def test_help_is_printed_at_every_level(capsys, argv):
    code, out, _ = cli(capsys, *argv)

    assert code == 0
    assert out.startswith("usage: runqy")


def test_help_of_the_top_level_lists_every_command_and_the_exit_codes(capsys):
    _, out, _ = cli(capsys, "-h")

    for noun in ("queue", "task", "worker", "config", "vault", "login", "logout", "auth", "serve"):
        assert "\n    %s " % noun in out
    assert "3  the server cannot be reached" in out


@pytest.mark.parametrize("argv, message", [
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["task", "enqueue", "-p", "{}"], "the following arguments are required: -q/--queue"),
    (["task", "list", "q", "--state", "lost"], "argument --state: invalid choice: 'lost'"),
    (["task", "list", "q", "-l", "0"], "argument -l/--limit: must be at least 1"),
    (["task", "enqueue", "-q", "q", "-t", "soon"], "argument -t/--timeout: 'soon' is not a whole number"),
    (["queue", "pause"], "the following arguments are required: queue"),
    (["vault", "set", "v", "K"], "the following arguments are required: VALUE"),
    (["logout", "-n", "x", "--all"], "not allowed with argument"),
    (["queue", "list", "--watch", "--interval", "0"], "must be more than 0"),
    (["config", "create", "--mode", "forever"], "invalid choice: 'forever'"),
])
def test_bad_flags_are_usage_errors_with_exit_2(capsys, argv, message):
    code, out, err = cli(capsys, *argv)

    assert (code, out) == (2, "")
    assert message in err


@pytest.mark.parametrize("argv", [[], ["queue"], ["vault"], ["auth"]])
def test_a_command_group_without_its_verb_prints_its_help_and_exits_2(capsys, argv):
    code, out, err = cli(capsys, *argv)

    assert (code, out) == (2, "")
    assert err.startswith("usage: runqy")


def test_an_invalid_json_payload_is_refused_before_anything_is_sent(capsys):
    code, out, err = cli(capsys, "-s", nowhere(), "task", "enqueue", "-q", "simple", "-p", "[1, 2,, 3]")

    assert (code, out) == (2, "")
    assert err == "runqy: error: invalid JSON payload (--payload): Expecting value at line 1 column 7\n"


def test_an_invalid_json_payload_file_names_the_file(capsys, tmp_path):
    (tmp_path / "p.json").write_text('{\n  "a": 1\n  "b": 2\n}')

    code, _, err = cli(capsys, "-s", nowhere(), "task", "enqueue", "-q", "simple", "-p", "@%s" % (tmp_path / "p.json"))

    assert code == 2
    assert "invalid JSON payload (%s): Expecting ',' delimiter at line 3 column 3" % (tmp_path / "p.json") in err


def test_a_missing_payload_file_is_a_usage_error(capsys, tmp_path):
    code, _, err = cli(capsys, "-s", nowhere(), "task", "enqueue", "-q", "simple", "-p", "@%s" % (tmp_path / "no.json"))

    assert code == 2
    assert "cannot read payload file" in err and "No such file or directory" in err


def test_a_server_url_that_is_not_http_is_a_usage_error(capsys):
    code, _, err = cli(capsys, "-s", "ftp://example.com", "queue", "list")

    assert code == 2
    assert "invalid server URL 'ftp://example.com'" in err


# --- unreachable ---------------------------------------------------------------------------


def test_a_server_that_does_not_listen_exits_3(capsys):
    server = nowhere()

    code, out, err = cli(capsys, "-s", server, "-k", "k", "queue", "list")

    assert (code, out) == (3, "")
    assert err.startswith("Error: cannot reach the runqy server at %s: " % server)
    assert "Connection refused" in err


def test_a_server_that_does_not_answer_in_time_exits_3(capsys):
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        server = "http://127.0.0.1:%d" % silent.getsockname()[1]

        code, _, err = cli(capsys, "-s", server, "--request-timeout", "0.3", "queue", "pause", "simple")

    assert code == 3
    assert err == "Error: the runqy server at %s did not answer within 0.3s\n" % server


# --- saved credentials ---------------------------------------------------------------------


def test_login_saves_the_profile_in_a_0700_directory_and_a_0600_file(capsys, tmp_path):
    code, out, _ = cli(capsys, "login", "-s", "https://runqy.example.com:3000/", "-k", SECRET_KEY)

    assert (code, out) == (0, 'Logged in to https://runqy.example.com:3000 (saved as "default")\n')
    home = tmp_path / "runqy-home"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "credentials.json").stat().st_mode) == 0o600
    assert json.loads((home / "credentials.json").read_text()) == {
        "servers": {"default": {"url": "https://runqy.example.com:3000", "api_key": SECRET_KEY}}, "current": "default"}
    assert os.listdir(home) == ["credentials.json"]  # the temporary file was renamed into place


def test_without_runqy_config_home_credentials_go_to_dot_runqy_in_home(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("RUNQY_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))

    assert cli(capsys, "login", "-s", "runqy.example.com", "-k", SECRET_KEY, "-n", "prod")[0] == 0

    path = tmp_path / ".runqy" / "credentials.json"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["servers"]["prod"]["url"] == "http://runqy.example.com"


def test_auth_status_and_list_show_keys_masked(capsys):
    cli(capsys, "login", "-s", "http://prod.example:3000", "-k", SECRET_KEY, "-n", "prod")
    cli(capsys, "login", "-s", "http://staging.example:3000", "-k", "staging-key-42", "-n", "staging")

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
    cli(capsys, "login", "-s", "http://prod.example:3000", "-k", SECRET_KEY)
    monkeypatch.setenv("RUNQY_SERVER", "http://other.example:3000")

    _, out, _ = cli(capsys, "auth", "status")

    assert "In use: http://other.example:3000 (from RUNQY_SERVER), no API key" in out


def test_auth_switch_changes_the_current_profile(capsys, tmp_path):
    cli(capsys, "login", "-s", "http://a.example", "-k", "key-a-123", "-n", "a")
    cli(capsys, "login", "-s", "http://b.example", "-k", "key-b-123", "-n", "b")

    assert cli(capsys, "auth", "switch", "a") == (0, 'Switched to "a"\nURL: http://a.example\n', "")
    assert json.loads((tmp_path / "runqy-home" / "credentials.json").read_text())["current"] == "a"

    code, _, err = cli(capsys, "auth", "switch", "c")
    assert code == 1
    assert err == "Error: no saved server named 'c' (saved: a, b)\n"


def test_logout_removes_the_current_profile_or_all_of_them(capsys, tmp_path):
    path = tmp_path / "runqy-home" / "credentials.json"
    cli(capsys, "login", "-s", "http://a.example", "-k", "key-a-123", "-n", "a")
    cli(capsys, "login", "-s", "http://b.example", "-k", "key-b-123", "-n", "b")

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

    assert cli(capsys, "login", "-s", "http://a.example")[0] == 0

    saved = json.loads((tmp_path / "runqy-home" / "credentials.json").read_text())
    assert saved["servers"]["default"]["api_key"] == "from-the-environment"


def test_a_corrupt_credentials_file_is_a_usage_error_naming_it(capsys, tmp_path):
    home = tmp_path / "runqy-home"
    home.mkdir()
    (home / "credentials.json").write_text("{not json")

    code, _, err = cli(capsys, "auth", "status")

    assert code == 2
    assert str(home / "credentials.json") in err


def test_the_saved_profile_names_the_server_that_is_called(capsys):
    server = nowhere()
    cli(capsys, "login", "-s", server, "-k", "key-123")

    code, _, err = cli(capsys, "queue", "list")

    assert code == 3
    assert server in err


# --- config validate -------------------------------------------------------------------------


def test_config_validate_checks_the_example_configs_without_a_server(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)

    code, out, _ = cli(capsys, "-s", nowhere(), "config", "validate")

    assert code == 0
    assert out.startswith("Validated config:\n  - inference.high (priority=10)\n  - inference.low (priority=2)\n"
                          "  - simple.default (priority=1)\n")
    assert out.endswith("Total: 2 queue(s), 3 sub-queue(s)\nValidation successful!\n")


def test_config_validate_of_a_bad_directory_names_file_queue_and_field_and_exits_1(capsys, tmp_path):
    (tmp_path / "good.yaml").write_text("queues:\n  a:\n    deployment: {git_url: g, startup_cmd: s}\n")
    (tmp_path / "bad.yaml").write_text("queues:\n  b:\n    mode: sometimes\n    deployment: {git_url: g}\n")

    code, out, err = cli(capsys, "config", "validate", "--dir", str(tmp_path))

    assert (code, out) == (1, "")
    assert "%s: queue 'b': field 'mode'" % (tmp_path / "bad.yaml") in err
    assert "startup_cmd" in err
    assert err.endswith("Validation failed: 1 file(s) with errors.\n")


def test_config_validate_json_reports_queues_and_errors(capsys, tmp_path):
    (tmp_path / "bad.yaml").write_text("queues: [not, a, map]\n")

    code, out, _ = cli(capsys, "config", "validate", "--dir", str(tmp_path), "--json")

    assert code == 1
    answer = json.loads(out)
    assert answer["valid"] is False and list(answer["errors"]) == [str(tmp_path / "bad.yaml")]


def test_config_validate_of_a_missing_directory_is_a_usage_error(capsys, tmp_path):
    code, _, err = cli(capsys, "config", "validate", "--dir", str(tmp_path / "nope"))

    assert code == 2
    assert "is not a directory" in err


# --- bin/runqy -------------------------------------------------------------------------------


def test_bin_runqy_prints_the_version(tmp_path):
    done = subprocess.run([str(ROOT / "bin" / "runqy"), "--version"], cwd=tmp_path,
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=30)

    assert (done.returncode, done.stdout) == (0, "runqy %s\n" % __version__)


def test_bin_runqy_without_the_project_venv_says_so_and_runs_python(tmp_path):
    env = {**os.environ, "RUNQY_VENV": str(tmp_path / "no-venv"), "PYTHON": sys.executable}
    done = subprocess.run([str(ROOT / "bin" / "runqy"), "--version"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=30)

    assert (done.returncode, done.stdout) == (0, "runqy %s\n" % __version__)
    assert "no-venv does not exist (bin/dev-server or bin/test creates it)" in done.stderr


def test_bin_runqy_passes_the_exit_code_through(tmp_path):
    done = subprocess.run([str(ROOT / "bin" / "runqy"), "-s", nowhere(), "queue", "list"], cwd=tmp_path,
                          env={**os.environ, "PYTHON": sys.executable, "RUNQY_CONFIG_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=30)

    assert done.returncode == 3
    assert "cannot reach the runqy server" in done.stderr
