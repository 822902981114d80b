"""runqy worker: the workers from their heartbeat hashes."""

import json
import time

from runqy import defaults, keys
from runqy.cli.output import duration
from tests.cli.helpers import cli


def _beat(r, worker_id: str, seconds_ago: int) -> None:
    now = int(time.time())
    r.hset(keys.worker(worker_id), mapping={
        "worker_id": worker_id, "status": "running", "healthy": "1", "concurrency": "2",
        "queues": "map[inference.high:10 inference.low:2]", "started_at": now - 600, "last_beat": now - seconds_ago})


def test_worker_list_shows_each_heartbeat_hash_with_its_staleness(url, capsys, r):
    _beat(r, "gpu-1:101", 1)
    silent = 4 * defaults.WORKER_STALE_AFTER
    _beat(r, "gpu-2:202", silent)

    code, out, _ = cli(capsys, "worker", "list")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["WORKER_ID", "STATUS", "QUEUES", "CONCURRENCY", "LAST_BEAT", "STALE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["gpu-1:101"][:3] == ["running", "inference.high,inference.low", "2"]
    assert rows["gpu-1:101"][-1] == "no"
    assert rows["gpu-2:202"][-2] in {duration(silent + late) for late in range(3)}
    assert rows["gpu-2:202"][-1] == "yes"


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
    assert err == "Error: worker not found: nosuch:1\n'runqy worker list' lists the workers.\n"


def test_worker_list_without_workers_says_so(url, capsys):
    assert cli(capsys, "worker", "list") == (0, "No workers found.\n", "")
