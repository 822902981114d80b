"""The command line as a whole: usage errors, help, exit codes, retries, and bin/runqy."""

import json
import os
import socket
import subprocess
import sys

import pytest

from runqy import __version__, defaults, keys, protobuf
from runqy.cli.errors import UNREACHABLE_HINT
from tests.cli.helpers import COMMANDS, bin_env, cli, nowhere
from tests.conftest import ADMIN_KEY, ROOT, WORKER_KEY, Gunicorn, wait_for

# --- usage -------------------------------------------------------------------------------


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

    for noun in ("status", "queue", "task", "worker", "config", "vault", "login", "logout", "auth", "serve",
                 "completion"):
        assert "\n    %s " % noun in out
    assert "3  the server cannot be reached" in out


def test_the_command_tree_holds_every_verb_of_every_noun():
    assert len(COMMANDS) == 33
    assert {("status",), ("queue", "list"), ("vault", "entries"), ("auth", "switch"), ("completion",)} <= set(COMMANDS)


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_of_every_command_ends_with_one_or_two_examples_of_it(capsys, argv):
    code, out, _ = cli(capsys, *argv, "-h")

    assert code == 0
    _, found, section = out.rpartition("\nexample")
    lines = section.splitlines()
    assert found and lines[0] in (":", "s:")
    examples = lines[1:]
    assert len(examples) == (2 if lines[0] == "s:" else 1)
    assert all(line.startswith("  runqy %s" % " ".join(argv)) for line in examples), examples


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
    (["task", "enqueue", "-q", "q", "--delay", "5x"], "argument --delay: '5x' is not a duration: give seconds (90)"),
    (["task", "enqueue", "-q", "q", "--delay", "1.5h"], "argument --delay: '1.5h' is not a duration"),
    (["task", "enqueue", "-q", "q", "--delay", "0s"], "argument --delay: must be at least 1s, not 0s"),
    (["task", "enqueue", "-q", "q", "--unique-for", "week"], "argument --unique-for: 'week' is not a duration"),
    (["task", "enqueue", "-q", "q", "--delay", "5m", "--at", "1900000000"], "argument --at: not allowed with"),
    (["task", "enqueue", "-q", "q", "--at", "2026-12-01T10:00:00"], "argument --at: '2026-12-01T10:00:00' is not a"),
    (["task", "get", "q", "id", "--wait", "61"], "argument --wait: must be from 1 to 60, not 61"),
    (["queue", "run", "q"], "the following arguments are required: --state"),
    (["queue", "run", "q", "--state", "pending"], "argument --state: invalid choice: 'pending'"),
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


def error_lines_then_a_hint(err: str) -> list[str]:
    """The ``Error:`` lines of stderr, once it is checked that one line saying what to do next follows
    them (after argparse's usage, for a usage error) and that nothing else says error."""
    lines = err.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("Error: ")]
    assert errors == list(range(errors[0], len(lines) - 1)), err
    assert lines[-1].strip(), err
    assert not any("error" in line.lower() for i, line in enumerate(lines) if i not in errors), err
    return [lines[i] for i in errors]


@pytest.mark.parametrize("argv, code", [
    (["task", "enqueue", "-p", "{}"], 2),  # argparse
    (["queue", "nosuch"], 2),  # argparse, in a group
    (["task", "enqueue", "-q", "q", "-p", "{"], 2),  # a payload
    (["-s", "ftp://example.com", "queue", "list"], 2),  # the server URL
    (["auth", "switch", "nosuch"], 1),  # a local check
    (["config", "validate", "--dir", "/nonexistent/configs"], 2),
    (["-s", "NOWHERE", "queue", "list"], 3),
])
def test_every_failure_goes_out_as_error_lines_then_what_to_do_next(capsys, argv, code):
    argv = [nowhere() if word == "NOWHERE" else word for word in argv]

    got, out, err = cli(capsys, *argv)

    assert (got, out) == (code, "")
    assert error_lines_then_a_hint(err)


@pytest.mark.parametrize("argv, first", [
    (["queue", "pause", "nosuch"], "Error: queue not found: nosuch"),
    (["task", "get", "simple", "nosuch"], "Error: task not found: nosuch"),
    (["-k", "wrong", "queue", "list"], "Error: invalid API key"),
    (["-k", WORKER_KEY, "queue", "list"], "Error: "),
    (["task", "list", "inference"], "Error: queue: inference has sub-queues"),
])
def test_every_refusal_of_the_server_goes_out_as_error_lines_then_what_to_do_next(url, capsys, argv, first):
    code, out, err = cli(capsys, *argv)

    assert (code, out) == (1, "")
    assert error_lines_then_a_hint(err)[0].startswith(first)


def test_a_server_url_that_is_not_http_is_a_usage_error(capsys):
    code, _, err = cli(capsys, "-s", "ftp://example.com", "queue", "list")

    assert code == 2
    assert "invalid server URL 'ftp://example.com'" in err


def test_global_flags_may_follow_the_command(url, capsys, monkeypatch):
    monkeypatch.delenv("RUNQY_SERVER")
    monkeypatch.delenv("RUNQY_API_KEY")

    code, out, _ = cli(capsys, "config", "list", "-s", url, "-k", ADMIN_KEY)

    assert code == 0 and out.startswith("NAME")


# --- unreachable, retries ----------------------------------------------------------------


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
    assert err == "Error: the runqy server at %s did not answer within 0.3s\n%s\n" % (server, UNREACHABLE_HINT)


def _requests_logged(server: Gunicorn, since: int, request_line: str) -> int:
    return server.output()[since:].count('"%s HTTP/1.1" 503' % request_line)


def test_only_gets_are_retried_when_the_server_answers_503(url, cli_server, redis_server, capsys):
    redis_server.stop()
    try:
        since = len(cli_server.output())
        code, _, err = cli(capsys, "queue", "list")
        assert code == 1
        assert err.startswith("Error: redis unavailable")

        code, _, err = cli(capsys, "queue", "pause", "simple")
        assert code == 1

        # each gunicorn worker writes its own access log lines: wait until all are there
        wait_for(lambda: _requests_logged(cli_server, since, "POST /api/cli/queues/simple/pause") == 1
                 and _requests_logged(cli_server, since, "GET /api/cli/queues") >= 1 + defaults.CLI_RETRIES,
                 what="the access log lines of the retried GET and of the pause")
        assert _requests_logged(cli_server, since, "GET /api/cli/queues") == 1 + defaults.CLI_RETRIES
        assert _requests_logged(cli_server, since, "POST /api/cli/queues/simple/pause") == 1
    finally:
        redis_server.start()


# --- bin/runqy ---------------------------------------------------------------------------


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


def test_bin_runqy_runs_a_real_command_from_any_directory(url, r, tmp_path):
    (tmp_path / "p.json").write_text('{"via": "bin/runqy"}')

    argv = [str(ROOT / "bin" / "runqy"), "-s", url, "-k", ADMIN_KEY, "task", "enqueue", "-q", "simple", "-p", "@p.json"]
    done = subprocess.run(argv, cwd=tmp_path, env=bin_env(RUNQY_CONFIG_HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    task_id = done.stdout.splitlines()[1].split()[-1]
    msg = protobuf.decode(r.hget(keys.task("simple.default", task_id), "msg"))
    assert json.loads(msg.payload) == {"via": "bin/runqy"}


def test_bin_runqy_runs_in_the_project_venv_from_a_clean_shell(url, tmp_path):
    """As the README runs it right after bin/dev-server: no venv on PATH, PYTHON unset, and here
    a python3 first on PATH that is not the project's environment."""
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "python3").write_text("#!/bin/sh\necho 'not the project environment' >&2\nexit 97\n")
    (decoy / "python3").chmod(0o755)
    env = {"PATH": "%s:/usr/bin:/bin" % decoy, "HOME": str(tmp_path), "RUNQY_CONFIG_HOME": str(tmp_path)}
    if os.environ.get("RUNQY_VENV"):  # bin/test was told to use another environment than .venv
        env["RUNQY_VENV"] = os.environ["RUNQY_VENV"]

    done = subprocess.run([str(ROOT / "bin" / "runqy"), "-s", url, "-k", ADMIN_KEY, "queue", "list"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    assert "inference.high" in done.stdout
