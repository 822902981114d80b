"""runqy status: the queues with their totals, the workers and Redis, on one screen."""

import json
import re
import time

import requests

from runqy import defaults, keys
from runqy.cli.output import CLEAR_SCREEN
from tests.cli.helpers import cli, enqueue
from tests.conftest import ADMIN_KEY


def _beat(r, worker_id: str, seconds_ago: int, healthy: bool = True) -> None:
    now = int(time.time())
    r.hset(keys.worker(worker_id), mapping={
        "worker_id": worker_id, "status": "running", "healthy": "1" if healthy else "0", "concurrency": "2",
        "queues": "map[simple.default:1]", "started_at": now - 600, "last_beat": now - seconds_ago})


def test_status_shows_the_queues_with_totals_the_workers_and_redis(url, capsys, r):
    for queue in ("inference.high", "inference.high", "simple", "simple"):
        enqueue(capsys, queue)
    assert cli(capsys, "queue", "pause", "simple")[0] == 0
    _beat(r, "gpu-1:1", 1)
    _beat(r, "gpu-2:2", 1, healthy=False)
    _beat(r, "gpu-3:3", 4 * defaults.WORKER_STALE_AFTER)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    r.set(keys.processed("inference.high", today), 5)
    r.set(keys.failed("simple.default", today), 2)

    code, out, err = cli(capsys, "status")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["QUEUE", "PENDING", "HELD", "ACTIVE", "SCHEDULED", "RETRY", "ARCHIVED", "COMPLETED",
                                "PAUSED"]
    assert [line.split() for line in lines[1:5]] == [
        ["inference.high", "2", "0", "0", "0", "0", "0", "0", "no"],
        ["inference.low", "0", "0", "0", "0", "0", "0", "0", "no"],
        ["simple.default", "0", "2", "0", "0", "0", "0", "0", "yes"],
        ["TOTAL", "2", "2", "0", "0", "0", "0", "0"]]
    assert lines[5:7] == ["", "Workers: 3 (1 healthy, 1 unhealthy, 1 stale)"]
    redis_line = re.fullmatch(r"Redis:   (\S+) \(standalone\), (\S+) used \(no maxmemory\), (\d+) clients, "
                              r"up (\d+[hms].*)", lines[7])
    assert redis_line, lines[7]
    assert redis_line[1] == r.info()["redis_version"]
    assert int(redis_line[3]) >= 1
    assert lines[8] == "Today:   5 processed, 2 failed (last 7 days: 5 processed, 2 failed)"
    assert len(lines) == 9


def test_status_shows_the_memory_limit_of_redis_when_it_has_one(url, capsys, r):
    before = r.config_get("maxmemory")["maxmemory"]
    r.config_set("maxmemory", 256 * 1024 * 1024)
    try:
        _, out, _ = cli(capsys, "status")
    finally:
        r.config_set("maxmemory", before)

    assert re.search(r"\nRedis:   \S+ \(standalone\), \S+ used \(of 256\.00M\), ", out), out


def test_status_without_workers_says_tasks_wait_for_one(url, capsys):
    _, out, _ = cli(capsys, "status")

    assert "Workers: none: tasks wait until a runqy-worker registers for their queue\n" in out


def test_status_json_holds_the_servers_answers_about_queues_workers_and_stats(url, capsys, r):
    enqueue(capsys, "simple")
    _beat(r, "gpu-1:1", 1)

    code, out, _ = cli(capsys, "status", "--json")

    assert code == 0
    answer = json.loads(out)
    assert set(answer) == {"queues", "workers", "stats"}
    headers = {"Authorization": "Bearer " + ADMIN_KEY}
    assert answer["queues"] == requests.get(url + "/api/cli/queues", headers=headers).json()
    assert [w["worker_id"] for w in answer["workers"]["workers"]] == ["gpu-1:1"]
    assert answer["stats"]["redis"]["version"] == r.info()["redis_version"]
    assert len(answer["stats"]["history"]) == 7


def test_status_watch_redraws_the_whole_screen(url, capsys):
    code, out, _ = cli(capsys, "status", "--watch", "--interval", "0.01", "--count", "2")

    assert code == 0
    frames = out.split(CLEAR_SCREEN)
    assert frames[0] == "" and len(frames) == 3
    for frame in frames[1:]:
        assert frame.startswith("Every 0.01s: runqy status")
        assert "\nTOTAL " in frame and "\nRedis: " in frame
