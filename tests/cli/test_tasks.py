"""runqy task: enqueue, list, get, cancel and delete; payloads refused before anything is sent."""

import io
import json
import sys
import threading
import time
from datetime import datetime, timezone

import requests

from runqy import defaults, keys, protobuf
from runqy.store import NewTask
from tests.cli.helpers import cli, enqueue, nowhere
from tests.test_waiting import complete


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


def test_task_enqueue_to_a_paused_queue_says_the_task_is_held_until_it_is_unpaused(url, capsys, r):
    assert cli(capsys, "queue", "pause", "simple")[0] == 0

    code, out, _ = cli(capsys, "task", "enqueue", "-q", "simple")

    assert code == 0
    lines = out.splitlines()
    task_id = lines[1].split()[-1]
    assert lines[-1] == ("Queue 'simple.default' is paused: the task is held until the queue is unpaused "
                         "(runqy queue unpause simple.default).")
    assert r.lrange(keys.held("simple.default"), 0, -1) == [task_id.encode()]
    assert cli(capsys, "task", "enqueue", "-q", "simple", "--delay", "1h")[1].splitlines()[-1] == (
        "Queue 'simple.default' is paused: when due, the task is held until the queue is unpaused "
        "(runqy queue unpause simple.default).")
    assert cli(capsys, "task", "enqueue", "-q", "inference.high")[1].count("paused") == 0


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


def test_an_invalid_json_payload_is_refused_before_anything_is_sent(capsys):
    code, out, err = cli(capsys, "-s", nowhere(), "task", "enqueue", "-q", "simple", "-p", "[1, 2,, 3]")

    assert (code, out) == (2, "")
    assert err == ("Error: invalid JSON payload (--payload): Expecting value at line 1 column 7\n"
                   "-p takes JSON inline ('{\"n\": 1}', quoted for the shell), @file.json, or - for stdin.\n")


def test_an_invalid_json_payload_file_names_the_file(capsys, tmp_path):
    (tmp_path / "p.json").write_text('{\n  "a": 1\n  "b": 2\n}')

    code, _, err = cli(capsys, "-s", nowhere(), "task", "enqueue", "-q", "simple", "-p", "@%s" % (tmp_path / "p.json"))

    assert code == 2
    assert "invalid JSON payload (%s): Expecting ',' delimiter at line 3 column 3" % (tmp_path / "p.json") in err


def test_a_missing_payload_file_is_a_usage_error(capsys, tmp_path):
    code, _, err = cli(capsys, "-s", nowhere(), "task", "enqueue", "-q", "simple", "-p", "@%s" % (tmp_path / "no.json"))

    assert code == 2
    assert "cannot read payload file" in err and "No such file or directory" in err


def test_task_list_reads_page_after_page_past_the_servers_page_limit(url, capsys, store):
    total, limit = defaults.MAX_PAGE + 200, defaults.MAX_PAGE + 100
    ids = []
    for half in (range(total // 2), range(total // 2, total)):
        ids += [t.id for t in store.tasks.enqueue("simple.default", [NewTask(b'{"n":%d}' % i) for i in half])]

    code, out, _ = cli(capsys, "task", "list", "simple", "-l", str(limit), "--json")

    assert code == 0
    answer = json.loads(out)
    assert answer["total"] == total
    assert [t["id"] for t in answer["tasks"]] == ids[:limit]  # oldest first, none twice, none skipped

    code, out, _ = cli(capsys, "task", "list", "simple", "--limit", str(limit))

    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "PAYLOAD", "ENQUEUED_AT"]
    assert len(lines) == 1 + limit + 2
    assert lines[-1] == "Showing %d of %d pending task(s) in simple.default." % (limit, total)


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


def test_task_list_watch_redraws_each_frame_from_the_server(url, capsys):
    enqueue(capsys, "simple")

    code, out, _ = cli(capsys, "task", "list", "simple", "-w", "--interval", "0.01", "--count", "2")

    assert code == 0
    assert out.count("Showing 1 of 1 pending task(s) in simple.default.") == 2


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
    assert err == "Error: task %s is already archived\n'runqy task get QUEUE ID' shows the task as it is.\n" % task_id


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


# --- later, unique, once ---------------------------------------------------------------------


def scheduled(capsys, *flags: str) -> str:
    """The id of a task enqueued with ``runqy task enqueue -q simple FLAGS``, which must be scheduled."""
    code, out, err = cli(capsys, "task", "enqueue", "-q", "simple", *flags, "--json")
    assert code == 0, err
    assert json.loads(out)["info"]["state"] == "scheduled"
    return json.loads(out)["info"]["id"]


def test_task_enqueue_with_delay_writes_a_scheduled_task_due_after_the_delay(url, capsys, r):
    code, out, _ = cli(capsys, "task", "enqueue", "-q", "simple", "--delay", "5m")
    now = time.time()

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Task scheduled successfully!"
    task_id = lines[1].split()[-1]
    assert lines[3] == "  State:      scheduled"
    due = datetime.strptime(lines[4].split()[-1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    assert abs(due - (now + 300)) <= 2
    assert abs(r.zscore(keys.scheduled("simple.default"), task_id) - (now + 300)) <= 2
    assert r.llen(keys.pending("simple.default")) == 0


def test_task_enqueue_at_a_time_or_a_unix_second_schedules_it_then(url, capsys, r):
    at = int(time.time()) + 3600
    stamp = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    by_text, by_number = scheduled(capsys, "--at", stamp), scheduled(capsys, "-p", "[1]", "--at", str(at + 60))

    assert r.zscore(keys.scheduled("simple.default"), by_text) == at
    assert r.zscore(keys.scheduled("simple.default"), by_number) == at + 60


def test_task_enqueue_unique_for_refuses_the_same_payload_the_second_time(url, capsys, r):
    first = cli(capsys, "task", "enqueue", "-q", "simple", "-p", '{"n": 1}', "--unique-for", "10m")
    code, out, err = cli(capsys, "task", "enqueue", "-q", "simple", "-p", '{"n": 1}', "--unique-for", "10m")

    assert first[0] == 0
    assert (code, out) == (1, "")
    assert err.startswith("Error: duplicate task: task %s with the same payload" % first[1].splitlines()[1].split()[-1])
    assert r.llen(keys.pending("simple.default")) == 1


def test_task_enqueue_sends_the_idempotency_key_header(url, capsys, monkeypatch):
    sent = []
    send = requests.Session.send
    monkeypatch.setattr(requests.Session, "send", lambda self, request, **kw: sent.append(request) or
                        send(self, request, **kw))

    assert cli(capsys, "task", "enqueue", "-q", "simple", "--idempotency-key", "order-42")[0] == 0
    assert cli(capsys, "task", "enqueue", "-q", "simple")[0] == 0

    assert [request.headers.get("Idempotency-Key") for request in sent if request.method == "POST"] == [
        "order-42", None]


def test_task_list_of_scheduled_tasks_shows_when_each_is_due(url, capsys, r):
    task_id = scheduled(capsys, "--delay", "1h")
    due = r.zscore(keys.scheduled("simple.default"), task_id)

    code, out, _ = cli(capsys, "task", "list", "simple", "--state", "scheduled")

    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "TYPE", "PROCESS_AT"]
    assert out.splitlines()[1].split() == [
        task_id, "simple.default", datetime.fromtimestamp(due, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")]


def test_task_run_moves_a_scheduled_task_to_pending(url, capsys, r):
    task_id = scheduled(capsys, "--delay", "3600")

    code, out, _ = cli(capsys, "task", "run", "simple", task_id)

    assert (code, out) == (0, "Task '%s' moved from scheduled to pending in queue 'simple.default'.\n" % task_id)
    assert r.zscore(keys.scheduled("simple.default"), task_id) is None
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task_id.encode()]


def test_task_run_json_is_the_server_answer(url, capsys):
    task_id = enqueue(capsys, "simple")
    cli(capsys, "task", "cancel", task_id)

    code, out, _ = cli(capsys, "task", "run", "simple", task_id, "--json")

    assert code == 0
    assert json.loads(out) == {"id": task_id, "queue": "simple.default", "state": "pending", "was": "archived"}


def test_task_run_of_a_pending_task_prints_the_servers_409_message_and_exits_1(url, capsys, r):
    task_id = enqueue(capsys, "simple")

    code, out, err = cli(capsys, "task", "run", "simple", task_id)

    assert (code, out) == (1, "")
    assert err == ("Error: task %s is pending; only scheduled, retry and archived tasks can be run again\n"
                   "'runqy task get QUEUE ID' shows the task as it is.\n" % task_id)
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task_id.encode()]


def test_task_get_wait_answers_once_the_task_completes(url, capsys, r):
    task_id = enqueue(capsys, "simple")
    threading.Timer(0.5, complete, (r, task_id, {"ok": True})).start()
    started = time.monotonic()

    code, out, _ = cli(capsys, "task", "get", "simple", task_id, "--wait", "30")

    assert code == 0
    assert time.monotonic() - started < 5
    assert ["State:", "completed"] in [line.split() for line in out.splitlines()]
    assert out.endswith('\nResult:\n  {\n    "ok": true\n  }\n')


def test_task_get_wait_on_a_pending_task_answers_pending_when_the_time_is_up(url, capsys):
    task_id = enqueue(capsys, "simple")
    started = time.monotonic()

    code, out, _ = cli(capsys, "task", "get", "simple", task_id, "--wait", "1", "--json")

    assert code == 0
    assert 0.9 <= time.monotonic() - started < 4
    assert json.loads(out)["task"]["state"] == "pending"
