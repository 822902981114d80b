"""Workers from their heartbeats: /api/cli/workers[/{worker_id}] (docs/product.md §6,
docs/worker-protocol.md §2.14 and §3.3).

Heartbeats are written byte for byte as runqy-worker writes them: the registry
ZSET, the status hash with its Go-map ``queues`` and JSON ``metrics``, and the
log list of JSON lines.
"""

import json

import pytest

from runqy import keys
from tests.admin_helpers import NOW, errors_of, pinned_client, rfc3339
from tests.conftest import ADMIN, CLIENT, WORKER

METRICS = {"cpu_percent": 12.5, "memory_used_bytes": 2147483648, "memory_total_bytes": 17179869184,
           "gpus": [{"index": 0, "name": "NVIDIA A10G", "utilization_percent": 87, "memory_used_mb": 20110,
                     "memory_total_mb": 23028, "temperature_c": 61}],
           "collected_at": "2025-06-15T15:06:38Z"}
RECOVERY = {"inference": {"state": "idle", "consecutive_fails": 0, "total_restarts": 1}}
RUNNING_QUEUES = "map[inference.high:10 inference.low:2]"


@pytest.fixture
def admin(settings, store):
    return pinned_client(settings)


def heartbeat(r, wid: str, *, status: str = "running", healthy: str = "1", queues: str = RUNNING_QUEUES,
              last_beat: int = NOW, started_at: int = NOW - 600, concurrency: int = 4,
              recovery: dict | None = RECOVERY, registered: bool = True) -> None:
    """One heartbeat of runqy-worker ``wid``: ZADD now+1800, HSET the status hash, EXPIRE 30."""
    fields = {"worker_id": wid, "started_at": str(started_at), "last_beat": str(last_beat),
              "concurrency": str(concurrency), "queues": queues, "status": status, "healthy": healthy,
              "metrics": json.dumps(METRICS)}
    if recovery is not None:
        fields["recovery"] = json.dumps(recovery)
    if registered:
        r.zadd(keys.WORKERS, {wid: last_beat + 1800})
    r.hset(keys.worker(wid), mapping=fields)
    r.expire(keys.worker(wid), 30)


def log_lines(r, wid: str, n: int, start_ms: int = NOW * 1000) -> list[dict]:
    """``n`` log lines as the worker pushes them: RPUSH, LTRIM -500 -1, EXPIRE 30."""
    lines = [{"ts": start_ms + i, "src": "stderr" if i % 3 else "stdout", "text": "line %d: ünïcode ok" % i,
              "seq": i + 1} for i in range(n)]
    r.rpush(keys.worker_logs(wid), *(json.dumps(line) for line in lines))
    r.ltrim(keys.worker_logs(wid), -500, -1)
    r.expire(keys.worker_logs(wid), 30)
    return lines


def fleet(r) -> None:
    """One worker in every situation the server must tell apart."""
    heartbeat(r, "gpu-01:4123")
    log_lines(r, "gpu-01:4123", 5)
    heartbeat(r, "boot-01:77", status="bootstrapping", healthy="0", queues="map[inference:0]", recovery=None)
    heartbeat(r, "slow-01:9", last_beat=NOW - 60)
    heartbeat(r, "done-01:5", status="stopped", last_beat=NOW - 3)
    r.zrem(keys.WORKERS, "done-01:5")  # graceful stop: ZREM, then HSET status stopped
    # killed: the hash has expired, the registry entry stays with a score in the future
    r.zadd(keys.WORKERS, {"dead-01:1": NOW - 40 + 1800})
    log_lines(r, "dead-01:1", 2)
    # killed long ago: its registry score has passed
    r.zadd(keys.WORKERS, {"gone-01:1": NOW - 3600})


def test_worker_list_reports_each_worker_from_its_heartbeat(admin, r):
    fleet(r)

    result = admin.simulate_get("/api/cli/workers", headers=ADMIN)

    assert result.status_code == 200, result.text
    workers = {w["worker_id"]: w for w in result.json["workers"]}
    assert result.json["count"] == len(workers) == 5
    assert set(workers) == {"gpu-01:4123", "boot-01:77", "slow-01:9", "done-01:5", "dead-01:1"}
    assert workers["gpu-01:4123"] == {
        "worker_id": "gpu-01:4123", "status": "running", "healthy": True,
        "queues": [{"name": "inference.high", "priority": 10}, {"name": "inference.low", "priority": 2}],
        "concurrency": 4, "started_at": rfc3339(NOW - 600), "last_beat": rfc3339(NOW), "is_stale": False,
        "metrics": METRICS, "recovery": RECOVERY}
    boot = workers["boot-01:77"]
    assert (boot["status"], boot["healthy"], boot["queues"], boot["is_stale"], boot["recovery"]) == (
        "bootstrapping", False, [{"name": "inference", "priority": 0}], False, None)
    slow = workers["slow-01:9"]
    assert (slow["status"], slow["is_stale"], slow["last_beat"]) == ("running", True, rfc3339(NOW - 60))
    done = workers["done-01:5"]
    assert (done["status"], done["is_stale"]) == ("stopped", False)
    dead = workers["dead-01:1"]
    assert (dead["status"], dead["is_stale"], dead["healthy"], dead["queues"], dead["last_beat"]) == (
        "offline", True, False, [], None)


def test_worker_list_never_lists_log_keys_as_workers(admin, r):
    heartbeat(r, "gpu-01:4123")
    log_lines(r, "gpu-01:4123", 3)
    log_lines(r, "dead-01:1", 3)  # the logs of a worker whose hash expired first

    workers = admin.simulate_get("/api/cli/workers", headers=ADMIN).json["workers"]

    assert [w["worker_id"] for w in workers] == ["gpu-01:4123"]
    assert r.exists(keys.worker_logs("gpu-01:4123"), keys.worker_logs("dead-01:1")) == 2


def test_a_worker_is_stale_only_after_30_seconds_without_a_beat(admin, r):
    heartbeat(r, "edge-30:1", last_beat=NOW - 30)
    heartbeat(r, "edge-31:1", last_beat=NOW - 31)

    listed = admin.simulate_get("/api/cli/workers", headers=ADMIN).json["workers"]

    assert {w["worker_id"]: w["is_stale"] for w in listed} == {"edge-30:1": False, "edge-31:1": True}


def test_worker_list_is_empty_without_heartbeats(admin, r):
    result = admin.simulate_get("/api/cli/workers", headers=ADMIN)

    assert result.json == {"workers": [], "count": 0}


def test_worker_list_reads_a_container_worker_id_and_a_single_queue_map(admin, r):
    heartbeat(r, "3f2a9c1b7d44:1", queues="map[simple.default:1]", concurrency=1)

    (worker,) = admin.simulate_get("/api/cli/workers", headers=ADMIN).json["workers"]

    assert (worker["worker_id"], worker["queues"], worker["concurrency"]) == (
        "3f2a9c1b7d44:1", [{"name": "simple.default", "priority": 1}], 1)


def test_worker_list_lists_a_restarted_worker_once(admin, r):
    heartbeat(r, "gpu-01:4123", started_at=NOW - 600, last_beat=NOW - 10)
    heartbeat(r, "gpu-01:4123", started_at=NOW - 5, last_beat=NOW)  # re-registration rewrites started_at

    workers = admin.simulate_get("/api/cli/workers", headers=ADMIN).json["workers"]

    assert [(w["worker_id"], w["started_at"]) for w in workers] == [("gpu-01:4123", rfc3339(NOW - 5))]


def test_worker_detail_adds_the_last_50_log_lines_in_order(admin, r):
    heartbeat(r, "gpu-01:4123")
    lines = log_lines(r, "gpu-01:4123", 60)

    result = admin.simulate_get("/api/cli/workers/gpu-01:4123", headers=ADMIN)

    assert result.status_code == 200, result.text
    body = result.json
    assert body["logs"] == lines[10:]
    assert [line["seq"] for line in body["logs"]] == list(range(11, 61))
    assert {k: v for k, v in body.items() if k != "logs"} == \
        admin.simulate_get("/api/cli/workers", headers=ADMIN).json["workers"][0]
    assert r.llen(keys.worker_logs("gpu-01:4123")) == 60


def test_worker_detail_with_an_encoded_colon_finds_the_worker(admin, r):
    heartbeat(r, "gpu-01:4123")
    log_lines(r, "gpu-01:4123", 2)

    body = admin.simulate_get("/api/cli/workers/gpu-01%3A4123", headers=ADMIN).json

    assert (body["worker_id"], len(body["logs"])) == ("gpu-01:4123", 2)


def test_worker_detail_of_a_killed_worker_is_offline_with_its_last_logs(admin, r):
    r.zadd(keys.WORKERS, {"dead-01:1": NOW + 1700})
    lines = log_lines(r, "dead-01:1", 3)

    body = admin.simulate_get("/api/cli/workers/dead-01:1", headers=ADMIN).json

    assert (body["status"], body["is_stale"], body["logs"]) == ("offline", True, lines)


def test_worker_detail_of_a_stopped_worker_shows_it_stopped(admin, r):
    heartbeat(r, "done-01:5", status="stopped", registered=False)

    body = admin.simulate_get("/api/cli/workers/done-01:5", headers=ADMIN).json

    assert (body["status"], body["logs"]) == ("stopped", [])


def test_worker_detail_keeps_a_log_line_that_is_not_json_as_text(admin, r):
    heartbeat(r, "gpu-01:4123")
    r.rpush(keys.worker_logs("gpu-01:4123"), b"plain text \xff line")

    body = admin.simulate_get("/api/cli/workers/gpu-01:4123", headers=ADMIN).json

    assert body["logs"] == ["plain text \ufffd line"]


def test_worker_detail_of_an_unknown_worker_is_404(admin, r):
    heartbeat(r, "gpu-01:4123")
    log_lines(r, "gpu-01:4123", 1)

    for worker_id in ("nosuch:1", "gpu-01", "nosuch:1:logs", "%00", "w" * 5000, "%E2%9C%93:1", "*", "gpu-01:*",
                      "..", "%FF"):
        result = admin.simulate_get("/api/cli/workers/" + worker_id, headers=ADMIN)

        assert result.status_code == 404, (worker_id, result.text)
        assert errors_of(result)[0].startswith("worker not found: "), worker_id


def test_worker_detail_of_a_log_key_name_is_404_not_a_redis_error(admin, r):
    heartbeat(r, "gpu-01:4123")
    log_lines(r, "gpu-01:4123", 1)

    result = admin.simulate_get("/api/cli/workers/gpu-01:4123:logs", headers=ADMIN)

    assert result.status_code == 404, result.text
    assert errors_of(result) == ["worker not found: gpu-01:4123:logs"]


def test_worker_long_gone_from_the_registry_is_not_found(admin, r):
    r.zadd(keys.WORKERS, {"gone-01:1": NOW - 3600})

    listed = admin.simulate_get("/api/cli/workers", headers=ADMIN).json
    detail = admin.simulate_get("/api/cli/workers/gone-01:1", headers=ADMIN)

    assert listed["count"] == 0
    assert detail.status_code == 404


def test_worker_views_write_nothing_to_redis(admin, r):
    fleet(r)
    before = {key: (r.type(key), r.ttl(key)) for key in r.keys("*")}
    snapshot = {key: r.dump(key) for key in before}

    admin.simulate_get("/api/cli/workers", headers=ADMIN)
    admin.simulate_get("/api/cli/workers/gpu-01:4123", headers=ADMIN)

    assert {key: r.dump(key) for key in r.keys("*")} == snapshot


@pytest.mark.parametrize("path", ["/api/cli/workers", "/api/cli/workers/gpu-01:4123"])
def test_worker_routes_are_admin_only(admin, r, path):
    heartbeat(r, "gpu-01:4123")

    for headers, status in ((WORKER, 403), (CLIENT, 403), ({}, 401), ({"X-API-Key": "nope"}, 401)):
        result = admin.simulate_get(path, headers=headers)

        assert result.status_code == status, headers
        errors_of(result)


def test_wrong_method_on_worker_routes_is_json_405(admin):
    for method, path in (("POST", "/api/cli/workers"), ("DELETE", "/api/cli/workers/gpu-01:4123")):
        result = admin.simulate_request(method, path, headers=ADMIN)
        assert result.status_code == 405
        errors_of(result)
