"""The admin CLI against a real gunicorn-served runqy: what it prints, its exit code, what Redis holds after.

One gunicorn serves the whole module (with vaults enabled and an access log, so
that retries can be counted); the ``store`` fixture empties Redis and puts the
example configs back before each test.
"""

import base64
import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from runqy import keys, protobuf
from runqy.cli import CLEAR_SCREEN, main
from runqy.store import NewTask
from runqy.vault import Cipher
from tests.conftest import ADMIN_KEY, CLIENT_KEY, ROOT, WORKER_KEY, Gunicorn, free_port, wait_for

pytestmark = pytest.mark.e2e

VAULT_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="module")
def cli_server(redis_server):
    env = {"RUNQY_API_KEY": ADMIN_KEY, "RUNQY_WORKER_API_KEY": WORKER_KEY, "RUNQY_CLIENT_API_KEY": CLIENT_KEY,
           "REDIS_URL": "redis://127.0.0.1:%d/0" % redis_server.port, "RUNQY_CONFIG_DIR": str(ROOT / "config"),
           "RUNQY_VAULT_MASTER_KEY": VAULT_KEY, "RUNQY_ACCESS_LOG": "-"}
    server = Gunicorn(env, workers=1)
    yield server
    server.stop()


@pytest.fixture
def url(cli_server, store, monkeypatch, tmp_path) -> str:
    """The server, named by RUNQY_SERVER/RUNQY_API_KEY; saved profiles live in tmp_path."""
    monkeypatch.setenv("RUNQY_SERVER", cli_server.url)
    monkeypatch.setenv("RUNQY_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("RUNQY_CONFIG_HOME", str(tmp_path / "runqy-home"))
    return cli_server.url


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def enqueue(capsys, queue: str, payload: str = "{}") -> str:
    code, out, err = cli(capsys, "task", "enqueue", "-q", queue, "-p", payload, "--json")
    assert code == 0, err
    return json.loads(out)["info"]["id"]


def column_starts(line: str) -> list[int]:
    """Where each column of a table row starts (cells hold no spaces here)."""
    return [i for i, c in enumerate(line) if c != " " and (i == 0 or line[i - 1] == " ")]


# --- queue -----------------------------------------------------------------------------


def test_queue_list_prints_an_aligned_row_per_sub_queue(url, capsys, r):
    enqueue(capsys, "inference.high")
    enqueue(capsys, "inference.high")

    code, out, err = cli(capsys, "queue", "list")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["QUEUE", "PENDING", "ACTIVE", "SCHEDULED", "RETRY", "ARCHIVED", "COMPLETED", "PAUSED"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["inference.high"] == ["2", "0", "0", "0", "0", "0", "no"]
    assert rows["simple.default"] == ["0", "0", "0", "0", "0", "0", "no"]
    assert r.llen(keys.pending("inference.high")) == 2
    assert {tuple(column_starts(line)) for line in lines} == {tuple(column_starts(lines[0]))}


def test_queue_list_json_is_the_server_answer(url, capsys):
    enqueue(capsys, "simple")

    code, out, _ = cli(capsys, "queue", "list", "--json")

    assert code == 0
    answer = json.loads(out)
    assert answer == requests.get(url + "/api/cli/queues", headers={"Authorization": "Bearer " + ADMIN_KEY}).json()
    assert {q["name"]: q["pending"] for q in answer["queues"]}["simple.default"] == 1


def test_queue_inspect_of_a_parent_sums_its_sub_queues_and_shows_its_config(url, capsys):
    enqueue(capsys, "inference.high")
    enqueue(capsys, "inference.low")

    code, out, _ = cli(capsys, "queue", "inspect", "inference")

    assert code == 0
    assert "Queue:    inference" in out
    assert "  Pending:   2" in out
    assert "Sub-queues:" in out and "inference.low" in out
    assert "Git URL:     https://github.com/example/inference-worker.git" in out


def test_queue_pause_holds_pending_tasks_back_and_unpause_returns_them(url, capsys, r):
    task_id = enqueue(capsys, "simple")

    code, out, _ = cli(capsys, "queue", "pause", "simple")

    assert (code, out) == (0, "Queue 'simple' paused successfully.\n")
    assert r.exists(keys.paused("simple.default"))
    assert r.lrange(keys.held("simple.default"), 0, -1) == [task_id.encode()]
    assert r.llen(keys.pending("simple.default")) == 0
    assert "yes" in [line.split()[-1] for line in cli(capsys, "queue", "list")[1].splitlines()
                     if line.startswith("simple.default")]

    code, out, _ = cli(capsys, "queue", "unpause", "simple")

    assert (code, out) == (0, "Queue 'simple' unpaused successfully.\n")
    assert not r.exists(keys.paused("simple.default"))
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task_id.encode()]


def test_pausing_an_unknown_queue_exits_1_with_the_server_message(url, capsys, r):
    code, out, err = cli(capsys, "queue", "pause", "nosuch")

    assert code == 1
    assert out == ""
    assert err == "Error: queue not found: nosuch\n"
    assert not r.exists(keys.paused("nosuch.default"))


# --- task ------------------------------------------------------------------------------


def test_task_enqueue_writes_the_task_and_prints_its_id_and_queue(url, capsys, r):
    code, out, _ = cli(capsys, "task", "enqueue", "-q", "simple", "-p", '{"msg": "hi"}', "-t", "60")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Task enqueued successfully!"
    task_id = lines[1].split()[-1]
    assert lines[1] == "  ID:    " + task_id
    assert lines[2] == "  Queue: simple.default"
    msg = protobuf.decode(r.hget(keys.task("simple.default", task_id), "msg"))
    assert json.loads(msg.payload) == {"msg": "hi"}
    assert msg.timeout == 60
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task_id.encode()]


def test_task_enqueue_reads_the_payload_from_a_file_and_from_stdin(url, capsys, r, tmp_path, monkeypatch):
    payload_file = tmp_path / "payload.json"
    payload_file.write_text('{"from": "file"}')
    from_file = enqueue(capsys, "simple", "@%s" % payload_file)
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"from": "stdin"}\n'))
    from_stdin = enqueue(capsys, "simple", "-")

    payloads = {task_id: json.loads(protobuf.decode(r.hget(keys.task("simple.default", task_id), "msg")).payload)
                for task_id in (from_file, from_stdin)}
    assert payloads == {from_file: {"from": "file"}, from_stdin: {"from": "stdin"}}


def test_task_enqueue_with_invalid_json_is_a_usage_error_naming_line_and_column(url, capsys, r):
    code, out, err = cli(capsys, "task", "enqueue", "-q", "simple", "-p", '{\n  "a": 1,\n  "b": }')

    assert code == 2
    assert out == ""
    assert "invalid JSON payload (--payload)" in err and "line 3 column 8" in err
    assert r.llen(keys.pending("simple.default")) == 0


def test_task_enqueue_to_an_unknown_queue_exits_1(url, capsys, r):
    code, _, err = cli(capsys, "task", "enqueue", "-q", "nosuch", "-p", "{}")

    assert code == 1
    assert "queue not found: nosuch.default" in err
    assert r.llen(keys.pending("nosuch.default")) == 0


def test_task_list_reads_page_after_page_past_the_servers_page_limit(url, capsys, store):
    ids = [t.id for t in store.enqueue("simple.default", [NewTask(b'{"n":%d}' % i) for i in range(600)])]
    ids += [t.id for t in store.enqueue("simple.default", [NewTask(b'{"n":%d}' % i) for i in range(600, 1200)])]

    code, out, _ = cli(capsys, "task", "list", "simple", "-l", "1100", "--json")

    assert code == 0
    answer = json.loads(out)
    assert answer["total"] == 1200
    assert [t["id"] for t in answer["tasks"]] == ids[:1100]  # oldest first, none twice, none skipped

    code, out, _ = cli(capsys, "task", "list", "simple", "--limit", "1100")

    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "PAYLOAD", "ENQUEUED_AT"]
    assert len(lines) == 1 + 1100 + 2
    assert lines[-1] == "Showing 1100 of 1200 pending task(s) in simple.default."


def test_task_list_of_archived_tasks_shows_their_errors(url, capsys):
    task_id = enqueue(capsys, "simple")
    assert cli(capsys, "task", "cancel", task_id)[0] == 0

    code, out, _ = cli(capsys, "task", "list", "simple", "--state", "archived")

    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "TYPE", "ERROR"]
    assert out.splitlines()[1].split() == [task_id, "simple.default", "canceled"]


def test_task_list_of_an_empty_state_says_so(url, capsys):
    assert cli(capsys, "task", "list", "inference.low", "--state", "retry") == \
        (0, "No retry tasks in inference.low.\n", "")


def test_task_get_prints_labelled_lines_the_payload_the_error_and_the_result(url, capsys, r):
    task_id = enqueue(capsys, "inference.high", '{"prompt": "hello", "n": [1, 2]}')
    r.hset(keys.task("inference.high", task_id), mapping={"error_msg": "GPU on fire", "result": '{"ok": true}'})

    code, out, _ = cli(capsys, "task", "get", "inference.high", task_id)

    assert code == 0
    assert out.startswith("Task ID:     %s\nType:        inference.high\nQueue:       inference.high\n"
                          "State:       pending\nMax Retry:   3\nRetried:     0\nTimeout:     5m0s\n" % task_id)
    payload = out.split("\nPayload:\n", 1)[1].split("\n\nLast Error:", 1)[0]
    assert json.loads(payload) == {"prompt": "hello", "n": [1, 2]}
    assert payload.startswith("  {\n    ")
    assert "\nLast Error: GPU on fire\n" in out
    assert out.endswith('\nResult:\n  {\n    "ok": true\n  }\n')


def test_task_get_json_is_the_server_answer(url, capsys):
    task_id = enqueue(capsys, "simple", "[1, 2]")

    code, out, _ = cli(capsys, "task", "get", "simple", task_id, "--json")

    assert code == 0
    assert json.loads(out)["task"]["payload"] == [1, 2]


def test_task_cancel_archives_a_pending_task_as_canceled(url, capsys, r):
    task_id = enqueue(capsys, "simple")

    code, out, _ = cli(capsys, "task", "cancel", task_id)

    assert (code, out) == (0, "Task '%s' cancelled.\n" % task_id)
    assert r.llen(keys.pending("simple.default")) == 0
    assert r.zscore(keys.archived("simple.default"), task_id) is not None
    assert r.hget(keys.task("simple.default", task_id), "error_msg") == b"canceled"


def test_task_cancel_of_a_running_task_says_it_cannot_be_interrupted_and_leaves_it(url, capsys, r):
    task_id = enqueue(capsys, "simple")
    r.lrem(keys.pending("simple.default"), 0, task_id)
    r.lpush(keys.active("simple.default"), task_id)
    r.hset(keys.task("simple.default", task_id), "state", "active")

    code, out, _ = cli(capsys, "task", "cancel", task_id)

    assert code == 0
    assert out.startswith("Task '%s' is running: " % task_id) and "cannot interrupt" in out
    assert r.lrange(keys.active("simple.default"), 0, -1) == [task_id.encode()]


def test_task_cancel_of_a_finished_task_exits_1(url, capsys):
    task_id = enqueue(capsys, "simple")
    cli(capsys, "task", "cancel", task_id)

    code, _, err = cli(capsys, "task", "cancel", task_id)

    assert code == 1
    assert err == "Error: task %s is already archived\n" % task_id


def test_task_delete_removes_every_trace_of_the_task(url, capsys, r):
    task_id = enqueue(capsys, "simple")

    code, out, _ = cli(capsys, "task", "delete", "simple", task_id)

    assert (code, out) == (0, "Task '%s' deleted from queue 'simple'.\n" % task_id)
    assert not r.exists(keys.task("simple.default", task_id), keys.task_queue(task_id))
    assert r.llen(keys.pending("simple.default")) == 0


def test_task_delete_of_an_unknown_task_exits_1(url, capsys):
    code, _, err = cli(capsys, "task", "delete", "simple", "nosuch")

    assert code == 1
    assert "task not found: nosuch" in err


# --- worker ----------------------------------------------------------------------------


def _beat(r, worker_id: str, seconds_ago: int) -> None:
    now = int(time.time())
    r.hset(keys.worker(worker_id), mapping={
        "worker_id": worker_id, "status": "running", "healthy": "1", "concurrency": "2",
        "queues": "map[inference.high:10 inference.low:2]", "started_at": now - 600, "last_beat": now - seconds_ago})


def test_worker_list_shows_each_heartbeat_hash_with_its_staleness(url, capsys, r):
    _beat(r, "gpu-1:101", 1)
    _beat(r, "gpu-2:202", 120)

    code, out, _ = cli(capsys, "worker", "list")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["WORKER_ID", "STATUS", "QUEUES", "CONCURRENCY", "LAST_BEAT", "STALE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["gpu-1:101"][:3] == ["running", "inference.high,inference.low", "2"]
    assert rows["gpu-1:101"][-1] == "no"
    assert rows["gpu-2:202"][-2].startswith("2m") and rows["gpu-2:202"][-1] == "yes"


def test_worker_info_shows_the_worker_and_its_recent_logs(url, capsys, r):
    _beat(r, "gpu-1:101", 1)
    r.rpush(keys.worker_logs("gpu-1:101"), json.dumps({"level": "info", "msg": "model loaded"}))

    code, out, _ = cli(capsys, "worker", "info", "gpu-1:101")

    assert code == 0
    assert "Worker ID:   gpu-1:101\nStatus:      running\n" in out
    assert "Queues:      inference.high (priority 10), inference.low (priority 2)" in out
    assert "Recent logs (1):" in out and "model loaded" in out


def test_worker_info_of_an_unknown_worker_exits_1(url, capsys):
    code, _, err = cli(capsys, "worker", "info", "nosuch:1")

    assert code == 1
    assert err == "Error: worker not found: nosuch:1\n"


def test_worker_list_without_workers_says_so(url, capsys):
    assert cli(capsys, "worker", "list") == (0, "No workers found.\n", "")


# --- config ----------------------------------------------------------------------------


def _configs(r) -> dict:
    return {k.decode(): json.loads(v) for k, v in r.hgetall(keys.CONFIGS).items()}


def test_config_list_shows_name_priority_mode_and_git_url(url, capsys):
    code, out, _ = cli(capsys, "config", "list")

    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "PRIORITY", "MODE", "GIT_URL"],
        ["inference", "5", "long_running", "https://github.com/example/inference-worker.git"],
        ["simple", "1", "one_shot", "https://github.com/example/simple-worker.git"]]


def test_config_create_from_flags_refuses_an_existing_one_unless_forced(url, capsys, r):
    code, out, _ = cli(capsys, "config", "create", "--name", "resize", "--priority", "4", "--git-url",
                       "https://example.com/r.git", "--startup-cmd", "python r.py", "--code-path", "svc")

    assert (code, out) == (0, "Created 1 queue configuration(s):\n  - resize\n")
    stored = _configs(r)["resize"]
    assert (stored["priority"], stored["mode"]) == (4, "long_running")
    assert stored["deployment"]["code_path"] == "svc"
    assert r.hget(keys.queue_config("resize.default"), "max_retry") == b"3"

    code, out, err = cli(capsys, "config", "create", "--name", "resize", "--git-url", "g", "--startup-cmd", "s")

    assert (code, out) == (1, "")
    assert err == "Error: queue config already exists: resize (use --force to replace it)\n"
    assert _configs(r)["resize"]["priority"] == 4

    code, out, _ = cli(capsys, "config", "create", "--name", "resize", "--git-url", "g", "--startup-cmd", "s",
                       "--mode", "one_shot", "--force")

    assert (code, out) == (0, "Updated 1 queue configuration(s):\n  - resize\n")
    assert (_configs(r)["resize"]["mode"], _configs(r)["resize"]["priority"]) == ("one_shot", 1)


def test_config_create_from_a_yaml_file_creates_each_of_its_queues(url, capsys, r, tmp_path):
    path = tmp_path / "more.yaml"
    path.write_text("queues:\n"
                    "  thumbs:\n    priority: 3\n    sub_queues: [{name: fast, priority: 9}, {name: slow}]\n"
                    "    deployment: {git_url: https://example.com/t.git, startup_cmd: python t.py}\n"
                    "  ocr:\n    mode: one_shot\n"
                    "    deployment: {git_url: https://example.com/o.git, startup_cmd: python o.py}\n")

    code, out, _ = cli(capsys, "config", "create", "-f", str(path))

    assert code == 0
    assert out == "Created 2 queue configuration(s):\n  - thumbs\n  - ocr\n"
    configs = _configs(r)
    assert [s["name"] for s in configs["thumbs"]["sub_queues"]] == ["fast", "slow"]
    assert configs["ocr"]["mode"] == "one_shot"
    assert r.exists(*map(keys.queue_config, ("thumbs.fast", "thumbs.slow", "ocr.default"))) == 3


def test_config_create_from_an_invalid_yaml_file_names_the_field_and_changes_nothing(url, capsys, r, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("queues:\n  good:\n    deployment: {git_url: g, startup_cmd: s}\n"
                    "  broken:\n    priority: 0\n    deployment: {git_url: g, startup_cmd: s}\n")
    before = r.hgetall(keys.CONFIGS)

    code, out, err = cli(capsys, "config", "create", "-f", str(path))

    assert (code, out) == (1, "")
    assert str(path) in err and "queue 'broken'" in err and "priority" in err
    assert r.hgetall(keys.CONFIGS) == before


def test_config_create_with_both_a_file_and_flags_is_a_usage_error(url, capsys, tmp_path):
    code, _, err = cli(capsys, "config", "create", "-f", str(tmp_path / "x.yaml"), "--name", "x")

    assert code == 2
    assert "either -f FILE or the flags --name" in err


def test_config_remove_deletes_the_config_and_keeps_the_tasks(url, capsys, r):
    task_id = enqueue(capsys, "simple")

    code, out, _ = cli(capsys, "config", "remove", "simple")

    assert code == 0 and "'simple' deleted" in out
    assert "simple" not in _configs(r)
    assert not r.exists(keys.queue_config("simple.default"))
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task_id.encode()]
    assert cli(capsys, "config", "remove", "simple")[0] == 1


def test_config_reload_puts_the_yaml_configs_back(url, capsys, r):
    r.delete(keys.CONFIGS)

    code, out, _ = cli(capsys, "config", "reload")

    assert (code, out) == (0, "Reloaded 2 queue configuration(s):\n  - inference\n  - simple\n")
    assert set(_configs(r)) == {"inference", "simple"}


# --- vault -----------------------------------------------------------------------------


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


# --- --json, auth, credentials -----------------------------------------------------------


@pytest.mark.parametrize("argv, key", [
    (("queue", "list"), "queues"), (("queue", "inspect", "simple"), "sub_queues"),
    (("task", "list", "simple"), "tasks"), (("worker", "list"), "workers"), (("config", "list"), "configs"),
    (("vault", "list"), "vaults"), (("queue", "pause", "simple"), "paused"), (("config", "reload"), "loaded"),
])
def test_json_flag_prints_the_servers_json(url, capsys, argv, key):
    code, out, _ = cli(capsys, *argv, "--json")

    assert code == 0
    assert key in json.loads(out)


def test_a_wrong_api_key_exits_1_with_the_servers_message_and_a_hint(url, capsys, r):
    code, out, err = cli(capsys, "-k", "not-the-key", "queue", "pause", "simple")

    assert (code, out) == (1, "")
    assert err.startswith("Error: invalid API key\n")
    assert "RUNQY_API_KEY" in err
    assert not r.exists(keys.paused("simple.default"))


def test_global_flags_may_follow_the_command(url, capsys, monkeypatch):
    monkeypatch.delenv("RUNQY_SERVER")
    monkeypatch.delenv("RUNQY_API_KEY")

    code, out, _ = cli(capsys, "config", "list", "-s", url, "-k", ADMIN_KEY)

    assert code == 0 and out.startswith("NAME")


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


# --- watch, bin/runqy, serve ------------------------------------------------------------


def test_queue_list_watch_clears_the_screen_and_redraws(url, capsys):
    code, out, _ = cli(capsys, "queue", "list", "--watch", "--interval", "0.01", "--count", "2")

    assert code == 0
    frames = out.split(CLEAR_SCREEN)
    assert frames[0] == "" and len(frames) == 3
    for frame in frames[1:]:
        assert frame.startswith("Every 0.01s: runqy queue list")
        assert "QUEUE  " in frame and "simple.default" in frame


def test_task_list_watch_redraws_each_frame_from_the_server(url, capsys):
    enqueue(capsys, "simple")

    code, out, _ = cli(capsys, "task", "list", "simple", "-w", "--interval", "0.01", "--count", "2")

    assert code == 0
    assert out.count("Showing 1 of 1 pending task(s) in simple.default.") == 2


def _bin_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNQY_")}
    return {**env, "PYTHON": sys.executable, **extra}


def test_bin_runqy_runs_a_real_command_from_any_directory(url, r, tmp_path):
    (tmp_path / "p.json").write_text('{"via": "bin/runqy"}')

    argv = [str(ROOT / "bin" / "runqy"), "-s", url, "-k", ADMIN_KEY, "task", "enqueue", "-q", "simple", "-p", "@p.json"]
    done = subprocess.run(argv, cwd=tmp_path, env=_bin_env(RUNQY_CONFIG_HOME=str(tmp_path)),
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


def test_watch_stops_on_ctrl_c_with_exit_0(url, tmp_path):
    process = subprocess.Popen([str(ROOT / "bin" / "runqy"), "-s", url, "-k", ADMIN_KEY, "queue", "list", "--watch",
                                "--interval", "0.2"], env=_bin_env(RUNQY_CONFIG_HOME=str(tmp_path)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        while "simple.default" not in seen:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            seen += line
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bin_runqy_server_is_runqy_serve_with_its_arguments_for_gunicorn(redis_server, r, tmp_path):
    port = free_port()
    env = _bin_env(RUNQY_API_KEY=ADMIN_KEY, REDIS_URL="redis://127.0.0.1:%d/0" % redis_server.port,
                   RUNQY_CONFIG_DIR=str(ROOT / "config"), WEB_CONCURRENCY="1")
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen([str(ROOT / "bin" / "runqy-server"), "--bind", "127.0.0.1:%d" % port], cwd=tmp_path,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: requests.get("http://127.0.0.1:%d/health" % port, timeout=1).ok, timeout=20,
                 what="runqy serve on port %d" % port)
        assert r.hexists(keys.CONFIGS, "inference")  # the gunicorn master loaded config/ at start-up
    finally:
        process.terminate()
        process.wait(15)
        log.close()
    assert "gunicorn" in Path(tmp_path / "serve.log").read_text().lower()


# --- retries -----------------------------------------------------------------------------


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
                 and _requests_logged(cli_server, since, "GET /api/cli/queues") >= 3,
                 what="the access log lines of the retried GET and of the pause")
        assert _requests_logged(cli_server, since, "GET /api/cli/queues") == 3  # 1 + 2 retries
        assert _requests_logged(cli_server, since, "POST /api/cli/queues/simple/pause") == 1
    finally:
        redis_server.start()
