"""Workers in the store (runqy/store/workers.py) against a real Redis: read from the registry, the
heartbeat hashes and the log lists exactly as runqy-worker writes them (docs/worker-protocol.md
§2.14, §3.3); reading them writes nothing."""

import pytest

from runqy import defaults, keys
from runqy.errors import WorkerNotFound
from runqy.store import Worker
from tests.conftest import snapshot
from tests.helpers import METRICS, NOW, RECOVERY, REGISTRY_AHEAD, heartbeat, log_lines, rfc3339


def fleet(r) -> None:
    """One worker in every situation the store must tell apart."""
    heartbeat(r, "gpu-01:4123")
    log_lines(r, "gpu-01:4123", 5)
    heartbeat(r, "slow-01:9", last_beat=NOW - defaults.WORKER_STALE_AFTER - 1)
    heartbeat(r, "done-01:5", status="stopped", registered=False)  # graceful stop: ZREM, then the last HSET
    r.zadd(keys.WORKERS, {"dead-01:1": NOW - 40 + REGISTRY_AHEAD})  # killed: the hash expired, the entry not yet
    log_lines(r, "dead-01:1", 2)
    r.zadd(keys.WORKERS, {"gone-01:1": NOW - 1})  # killed long ago: its registry entry has passed
    log_lines(r, "orphan-01:1", 1)  # logs that outlived both


def test_all_reads_every_worker_with_a_heartbeat_or_a_live_registry_entry_by_id(pinned, r):
    fleet(r)
    before = snapshot(r)

    workers = pinned.workers.all()

    assert [w.worker_id for w in workers] == ["dead-01:1", "done-01:5", "gpu-01:4123", "slow-01:9"]
    dead, done, gpu, slow = workers
    assert gpu == Worker(worker_id="gpu-01:4123", status="running", healthy=True,
                         queues=[{"name": "inference.high", "priority": 10}, {"name": "inference.low", "priority": 2}],
                         concurrency=4, started_at=rfc3339(NOW - 600), last_beat=rfc3339(NOW), is_stale=False,
                         metrics=METRICS, recovery=RECOVERY)
    assert (slow.status, slow.is_stale) == ("running", True)
    assert (done.status, done.is_stale) == ("stopped", False)
    assert dead == Worker(worker_id="dead-01:1", status="offline", healthy=False, queues=[], concurrency=0,
                          started_at=None, last_beat=None, is_stale=True, metrics=None, recovery=None)
    assert snapshot(r) == before


def test_a_worker_is_stale_only_after_worker_stale_after_seconds_without_a_beat(pinned, r):
    heartbeat(r, "edge-30:1", last_beat=NOW - defaults.WORKER_STALE_AFTER)
    heartbeat(r, "edge-31:1", last_beat=NOW - defaults.WORKER_STALE_AFTER - 1)

    assert {w.worker_id: w.is_stale for w in pinned.workers.all()} == {"edge-30:1": False, "edge-31:1": True}


def test_all_is_empty_without_heartbeats(pinned, r):
    log_lines(r, "orphan-01:1", 3)

    assert pinned.workers.all() == []


def test_get_answers_the_worker_and_its_last_log_lines_in_order(pinned, r):
    heartbeat(r, "gpu-01:4123")
    lines = log_lines(r, "gpu-01:4123", defaults.WORKER_LOG_LINES + 10)
    r.rpush(keys.worker_logs("gpu-01:4123"), b"plain text \xff line")
    before = snapshot(r)

    worker, logs = pinned.workers.get("gpu-01:4123", defaults.WORKER_LOG_LINES)

    assert worker == pinned.workers.all()[0]
    assert logs == lines[-defaults.WORKER_LOG_LINES + 1:] + ["plain text \ufffd line"]
    assert snapshot(r) == before


def test_get_of_a_killed_worker_is_offline_with_its_last_logs(pinned, r):
    r.zadd(keys.WORKERS, {"dead-01:1": NOW + 1})
    lines = log_lines(r, "dead-01:1", 3)

    worker, logs = pinned.workers.get("dead-01:1", defaults.WORKER_LOG_LINES)

    assert (worker.status, worker.is_stale, logs) == ("offline", True, lines)


def test_get_of_a_stopped_worker_off_the_registry_reads_its_last_heartbeat(pinned, r):
    heartbeat(r, "done-01:5", status="stopped", registered=False)

    worker, logs = pinned.workers.get("done-01:5", defaults.WORKER_LOG_LINES)

    assert (worker.status, worker.is_stale, logs) == ("stopped", False, [])


@pytest.mark.parametrize("worker_id", ["nosuch:1", "gone-01:1", "gpu-01", "gpu-01:4123:logs", "*"])
def test_get_of_a_worker_without_a_heartbeat_or_a_live_registry_entry_raises_worker_not_found(pinned, r,
                                                                                              worker_id):
    fleet(r)
    before = snapshot(r)

    with pytest.raises(WorkerNotFound) as caught:
        pinned.workers.get(worker_id, defaults.WORKER_LOG_LINES)

    assert caught.value.worker_id == worker_id
    assert snapshot(r) == before
