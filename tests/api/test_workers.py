"""Workers over HTTP (runqy/resources/workers.py): registration, POST /worker/register
(docs/worker-protocol.md §1), and the admin views of their heartbeats,
/api/cli/workers[/{worker_id}] (docs/product.md §6, docs/worker-protocol.md §2.14 and §3.3).

Heartbeats are written byte for byte as runqy-worker writes them: the registry
ZSET, the status hash with its Go-map ``queues`` and JSON ``metrics``, and the
log list of JSON lines.
"""

import dataclasses

import falcon.testing
import pytest

from runqy import defaults, keys
from runqy.app import create_app
from tests.conftest import ADMIN, CLIENT, WORKER, snapshot
from tests.helpers import (
    METRICS,
    NOW,
    RECOVERY,
    REGISTRY_AHEAD,
    assert_json_405,
    assert_queue_not_found,
    errors_of,
    heartbeat,
    log_lines,
    register,
    rfc3339,
)

# --- POST /worker/register ---------------------------------------------------------------------


def assert_registration_types(answer: dict, queue: str) -> None:
    """Every field the worker's Go decoder reads has the type it expects (docs/worker-protocol.md §1.4)."""
    redis_, q, dep = answer["redis"], answer["queue"], answer["deployment"]
    assert isinstance(redis_["addr"], str) and redis_["addr"]
    assert isinstance(redis_["password"], str)
    assert isinstance(redis_["db"], int) and not isinstance(redis_["db"], bool)
    assert isinstance(redis_["use_tls"], bool)
    assert q["name"] == queue
    assert isinstance(q["priority"], int) and not isinstance(q["priority"], bool) and q["priority"] >= 1
    subs = answer["sub_queues"]
    assert subs and all(set(s) == {"name", "priority"} for s in subs)
    assert all(isinstance(s["name"], str) and "." in s["name"] for s in subs)
    assert all(isinstance(s["priority"], int) and not isinstance(s["priority"], bool) and s["priority"] >= 1
               for s in subs)
    assert [s["priority"] for s in subs] == sorted((s["priority"] for s in subs), reverse=True)
    for name in ("git_url", "branch", "startup_cmd"):
        assert isinstance(dep[name], str) and dep[name], name
    for name in ("code_path", "requirements_file", "mode"):
        assert isinstance(dep[name], str), name
    assert isinstance(dep["startup_timeout_secs"], int) and not isinstance(dep["startup_timeout_secs"], bool)
    assert dep["redis_storage"] is True
    assert isinstance(dep["vaults"], list)
    assert isinstance(answer["vaults"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in answer["vaults"].items())
    assert isinstance(answer.get("git_token", ""), str)


def test_register_worker_body_for_a_parent_gets_all_its_sub_queues(client, r, settings):
    before = snapshot(r)
    res = register(client, {"queue": "inference", "hostname": "gpu-01", "os": "linux", "version": "1.4.0"})
    assert res.status_code == 200, res.text
    answer = res.json
    assert_registration_types(answer, "inference")
    assert answer["redis"] == {"addr": "127.0.0.1:%d" % settings.redis_port, "password": "", "db": 0,
                               "use_tls": False}
    assert answer["sub_queues"] == [{"name": "inference.high", "priority": 10},
                                    {"name": "inference.low", "priority": 2}]
    dep = answer["deployment"]
    assert (dep["git_url"], dep["branch"], dep["startup_cmd"], dep["startup_timeout_secs"],
            dep["requirements_file"], dep["mode"]) == (
        "https://github.com/example/inference-worker.git", "main", "python main.py", 300, "requirements.txt",
        "long_running")
    assert "git_token" not in answer
    assert snapshot(r) == before


def test_register_seed_body_with_worker_id_is_accepted(client, r):
    res = register(client, {"worker_id": "worker-abc123", "queue": "inference"})
    assert res.status_code == 200, res.text
    assert_registration_types(res.json, "inference")


def test_register_one_sub_queue_gets_only_that_one(client, r):
    res = register(client, {"queue": "inference.high", "hostname": "h", "os": "linux", "version": "dev"})
    assert res.status_code == 200, res.text
    assert_registration_types(res.json, "inference.high")
    assert res.json["sub_queues"] == [{"name": "inference.high", "priority": 10}]
    assert res.json["queue"]["priority"] == 10


def test_register_plain_queue_gets_its_default_sub_queue_and_redis_storage_true(client, r):
    res = register(client, {"queue": "simple", "hostname": "h", "os": "linux", "version": "dev"})
    assert res.status_code == 200, res.text
    assert_registration_types(res.json, "simple")
    assert res.json["sub_queues"] == [{"name": "simple.default", "priority": 1}]
    assert res.json["deployment"]["mode"] == "one_shot"
    assert res.json["deployment"]["redis_storage"] is True


def test_register_hands_out_the_public_redis_address_when_set(settings, store, r):
    public = falcon.testing.TestClient(create_app(
        dataclasses.replace(settings, redis_public_addr="redis.example.net:6380"), store=store))
    res = register(public, {"queue": "inference"})
    assert res.status_code == 200, res.text
    assert res.json["redis"]["addr"] == "redis.example.net:6380"


@pytest.mark.parametrize("queue", ["nope", "inference.medium", "nope.default"])
def test_register_unknown_queue_is_404(client, r, queue):
    res = register(client, {"queue": queue, "hostname": "h", "os": "linux", "version": "dev"})
    assert res.status_code == 404
    assert_queue_not_found(errors_of(res), queue)


@pytest.mark.parametrize("queue", ["", "-x", "a.b.c", "bad name", "x" * 65, 7, None])
def test_register_malformed_queue_name_is_400(client, r, queue):
    res = register(client, {"queue": queue, "hostname": "h"})
    assert res.status_code == 400
    assert any(m.startswith("$.queue") for m in errors_of(res))


def test_register_without_queue_is_400(client, r):
    res = register(client, {"hostname": "h", "os": "linux", "version": "dev"})
    assert res.status_code == 400
    assert any("queue" in m for m in errors_of(res))


def test_register_with_a_non_string_hostname_is_400(client, r):
    res = register(client, {"queue": "inference", "hostname": 12})
    assert res.status_code == 400
    assert any(m.startswith("$.hostname") for m in errors_of(res))


# --- the admin views of heartbeats ------------------------------------------------------------


def fleet(r) -> None:
    """One worker in every situation the server must tell apart."""
    heartbeat(r, "gpu-01:4123")
    log_lines(r, "gpu-01:4123", 5)
    heartbeat(r, "boot-01:77", status="bootstrapping", healthy="0", queues="map[inference:0]", recovery=None)
    heartbeat(r, "slow-01:9", last_beat=NOW - 60)
    heartbeat(r, "done-01:5", status="stopped", last_beat=NOW - 3)
    r.zrem(keys.WORKERS, "done-01:5")  # graceful stop: ZREM, then HSET status stopped
    # killed: the hash has expired, the registry entry stays with a score in the future
    r.zadd(keys.WORKERS, {"dead-01:1": NOW - 40 + REGISTRY_AHEAD})
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
    heartbeat(r, "edge-30:1", last_beat=NOW - defaults.WORKER_STALE_AFTER)
    heartbeat(r, "edge-31:1", last_beat=NOW - defaults.WORKER_STALE_AFTER - 1)

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
    shown = defaults.WORKER_LOG_LINES
    lines = log_lines(r, "gpu-01:4123", shown + 10)

    result = admin.simulate_get("/api/cli/workers/gpu-01:4123", headers=ADMIN)

    assert result.status_code == 200, result.text
    body = result.json
    assert body["logs"] == lines[10:]
    assert [line["seq"] for line in body["logs"]] == list(range(11, shown + 11))
    assert {k: v for k, v in body.items() if k != "logs"} == \
        admin.simulate_get("/api/cli/workers", headers=ADMIN).json["workers"][0]
    assert r.llen(keys.worker_logs("gpu-01:4123")) == shown + 10


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
    before = snapshot(r)

    admin.simulate_get("/api/cli/workers", headers=ADMIN)
    admin.simulate_get("/api/cli/workers/gpu-01:4123", headers=ADMIN)

    assert snapshot(r) == before


@pytest.mark.parametrize("path", ["/api/cli/workers", "/api/cli/workers/gpu-01:4123"])
def test_worker_routes_are_admin_only(admin, r, path):
    heartbeat(r, "gpu-01:4123")

    for headers, status in ((WORKER, 403), (CLIENT, 403), ({}, 401), ({"X-API-Key": "nope"}, 401)):
        result = admin.simulate_get(path, headers=headers)

        assert result.status_code == status, headers
        errors_of(result)


def test_wrong_method_on_worker_routes_is_json_405(admin):
    for method, path in (("POST", "/api/cli/workers"), ("DELETE", "/api/cli/workers/gpu-01:4123")):
        assert_json_405(admin, method, path)
