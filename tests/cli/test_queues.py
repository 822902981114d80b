"""runqy queue: what it prints, its exit code, what Redis holds after."""

import json

import requests

from runqy import keys
from tests.cli.helpers import cli, column_starts, enqueue
from tests.conftest import ADMIN_KEY


def test_queue_list_prints_an_aligned_row_per_sub_queue(url, capsys, r):
    enqueue(capsys, "inference.high")
    enqueue(capsys, "inference.high")

    code, out, err = cli(capsys, "queue", "list")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["QUEUE", "PENDING", "HELD", "ACTIVE", "SCHEDULED", "RETRY", "ARCHIVED", "COMPLETED",
                                "PAUSED"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["inference.high"] == ["2", "0", "0", "0", "0", "0", "0", "no"]
    assert rows["simple.default"] == ["0", "0", "0", "0", "0", "0", "0", "no"]
    assert r.llen(keys.pending("inference.high")) == 2
    assert {tuple(column_starts(line)) for line in lines} == {tuple(column_starts(lines[0]))}


def test_queue_list_shows_the_tasks_a_pause_holds_back_as_held_not_pending(url, capsys, r):
    enqueue(capsys, "simple")
    enqueue(capsys, "simple")
    assert cli(capsys, "queue", "pause", "simple")[0] == 0
    enqueue(capsys, "simple")  # enqueued while paused: held too

    _, out, _ = cli(capsys, "queue", "list")

    header, *rows = [line.split() for line in out.splitlines()]
    simple = dict(zip(header, next(row for row in rows if row[0] == "simple.default")))
    assert (simple["PENDING"], simple["HELD"], simple["PAUSED"]) == ("0", "3", "yes")
    assert (r.llen(keys.pending("simple.default")), r.llen(keys.held("simple.default"))) == (0, 3)


def test_after_config_remove_its_queue_is_marked_as_having_no_config(url, capsys, r):
    enqueue(capsys, "simple")
    assert cli(capsys, "config", "remove", "simple")[0] == 0

    code, out, _ = cli(capsys, "queue", "list")

    assert code == 0
    lines = out.splitlines()
    assert lines[3].split() == ["simple.default", "(no", "config)", "1", "0", "0", "0", "0", "0", "0", "no"]
    assert [line.split()[0:2] for line in lines[1:3]] == [["inference.high", "0"], ["inference.low", "0"]]
    assert {tuple(column_starts(line)) for line in lines[1:3]} == {tuple(column_starts(lines[0]))}
    assert lines[5].startswith("(no config): no queue config names the queue (removed, or never made), so no worker")
    assert r.llen(keys.pending("simple.default")) == 1

    _, out, _ = cli(capsys, "queue", "inspect", "simple")
    assert out.startswith("Queue:    simple (no config)\n")
    assert "\n(no config): " in out


def test_queue_list_of_configured_queues_has_no_note_about_configs(url, capsys):
    _, out, _ = cli(capsys, "queue", "list")

    assert "(no config)" not in out and len(out.splitlines()) == 4


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
    message, hint = err.splitlines()
    assert message.startswith("Error: queue not found: nosuch; known queues, closest first: ")
    assert hint == "'runqy queue list' lists the queues."
    assert not r.exists(keys.paused("nosuch.default"))


def archived(capsys, queue: str) -> str:
    """The id of a task enqueued on ``queue`` and canceled: archived."""
    task_id = enqueue(capsys, queue)
    assert cli(capsys, "task", "cancel", task_id)[0] == 0
    return task_id


def test_queue_run_moves_every_archived_task_of_each_sub_queue_to_pending(url, capsys, r):
    high = [archived(capsys, "inference.high") for _ in range(2)]
    low = archived(capsys, "inference.low")

    code, out, _ = cli(capsys, "queue", "run", "inference", "--state", "archived")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Moved 3 archived task(s) of queue 'inference' to pending."
    assert lines[1].split() == ["SUB-QUEUE", "MOVED"]
    assert {tuple(line.split()) for line in lines[2:]} == {("inference.high", "2"), ("inference.low", "1")}
    assert sorted(r.lrange(keys.pending("inference.high"), 0, -1)) == sorted(t.encode() for t in high)
    assert r.lrange(keys.pending("inference.low"), 0, -1) == [low.encode()]
    assert r.zcard(keys.archived("inference.high")) == r.zcard(keys.archived("inference.low")) == 0


def test_queue_run_of_scheduled_tasks_json_is_the_server_answer(url, capsys, r):
    for payload in ("[1]", "[2]"):
        assert cli(capsys, "task", "enqueue", "-q", "simple", "-p", payload, "--delay", "1h")[0] == 0

    code, out, _ = cli(capsys, "queue", "run", "simple", "--state", "scheduled", "--json")

    assert code == 0
    assert json.loads(out) == {"queue": "simple", "state": "scheduled", "moved": 2,
                               "sub_queues": [{"name": "simple.default", "moved": 2}]}
    assert (r.zcard(keys.scheduled("simple.default")), r.llen(keys.pending("simple.default"))) == (0, 2)


def test_queue_run_with_nothing_to_move_says_so(url, capsys):
    assert cli(capsys, "queue", "run", "simple", "--state", "retry") == \
        (0, "Moved 0 retry task(s) of queue 'simple' to pending.\n", "")
