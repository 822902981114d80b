"""Queue statistics, pause and unpause under /api/cli/queues (docs/product.md §5, §6).

Redis is seeded by hand as runqy-worker leaves it, and read back raw after every
mutating call. The pause tests run a thread that polls like runqy-worker (BRPOP
on the pending lists): a paused queue must give it nothing and lose nothing.
"""

import threading
import time

import falcon.testing
import pytest
import redis
import requests

from runqy import defaults, keys
from runqy.app import create_app
from runqy.store import Store
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, WORKER, WORKER_KEY, wait_for
from tests.helpers import (
    NOW,
    TODAY,
    YESTERDAY,
    assert_json_405,
    assert_queue_not_found,
    enqueue,
    errors_of,
    ids_in,
    seed_task,
)

COUNTS = ("pending", "held", "active", "scheduled", "retry", "archived", "completed",
          "processed", "failed", "processed_today", "failed_today")


def stats(**given) -> dict:
    """A queue's expected statistics: zeros except what is ``given``; configured unless told."""
    return {**{field: 0 for field in COUNTS}, "paused": False, "latency_seconds": 0, "configured": True, **given}


# --- statistics -------------------------------------------------------------------------------


def test_queue_list_reports_every_statistic_of_configured_and_unconfigured_queues(admin, r):
    # inference.high: a task waiting for 42 s, two fresh ones, and the rest of the states by hand
    oldest = seed_task(r, "inference.high", "pending", pending_since=NOW - 42)
    enqueue(admin, "inference.high", 2)
    for state, n in (("active", 2), ("scheduled", 1), ("retry", 3), ("archived", 2), ("completed", 4)):
        for _ in range(n):
            seed_task(r, "inference.high", state)
    r.set(keys.processed("inference.high"), 10)
    r.set(keys.failed("inference.high"), 4)
    r.set(keys.processed("inference.high", TODAY), 7)
    r.set(keys.failed("inference.high", TODAY), 2)
    r.set(keys.processed("inference.high", YESTERDAY), 99)
    r.set(keys.failed("inference.high", YESTERDAY), 98)
    # an unconfigured queue that only asynq:queues names, with asynq's nanosecond pending_since
    r.sadd(keys.QUEUES, "legacy.jobs")
    seed_task(r, "legacy.jobs", "pending", pending_since=(NOW - 5) * 10**9)
    r.set(keys.processed("legacy.jobs"), 1)
    # simple.default paused, with one held task
    enqueue(admin, "simple", 1)
    assert admin.simulate_post("/api/cli/queues/simple/pause", headers=ADMIN).status_code == 200

    result = admin.simulate_get("/api/cli/queues", headers=ADMIN)

    assert result.status_code == 200, result.text
    assert {k: result.json[k] for k in ("count", "total", "limit", "offset")} == {
        "count": 4, "total": 4, "limit": defaults.MAX_PAGE, "offset": 0}
    by_name = {q.pop("name"): q for q in result.json["queues"]}
    assert by_name == {
        "inference.high": stats(pending=3, active=2, scheduled=1, retry=3, archived=2, completed=4,
                                processed=10, failed=4, processed_today=7, failed_today=2,
                                latency_seconds=42, priority=10),
        "inference.low": stats(priority=2),
        "simple.default": stats(held=1, paused=True, priority=1),
        "legacy.jobs": stats(pending=1, processed=1, latency_seconds=5, priority=None, configured=False),
    }
    assert ids_in(r, keys.pending("inference.high"))[0] == oldest


def test_queue_list_pages_by_name_with_limit_and_offset(admin, r):
    for n in range(5):
        seed_task(r, "extra.q%d" % n, "pending")
    names = sorted(["inference.high", "inference.low", "simple.default"] + ["extra.q%d" % n for n in range(5)])

    pages = [admin.simulate_get("/api/cli/queues", query_string="limit=3&offset=%d" % offset, headers=ADMIN).json
             for offset in (0, 3, 6, 9)]

    assert [[q["name"] for q in page["queues"]] for page in pages] == [names[0:3], names[3:6], names[6:], []]
    assert {page["total"] for page in pages} == {8}
    assert [page["count"] for page in pages] == [3, 3, 2, 0]
    for query in ("limit=0", "limit=%d" % (defaults.MAX_PAGE + 1), "limit=x", "offset=-1", "offset=%d" % 2**63):
        result = admin.simulate_get("/api/cli/queues", query_string=query, headers=ADMIN)
        assert result.status_code == 400, query
        assert query.split("=")[0] in errors_of(result)[0], query


def test_latency_is_the_age_of_the_oldest_pending_task_in_seconds_or_nanoseconds(admin, r):
    seed_task(r, "inference.low", "pending", pending_since=(NOW - 3600) * 10**9 + 123456789)
    seed_task(r, "inference.low", "pending", pending_since=NOW - 10)
    seed_task(r, "inference.high", "pending", pending_since=NOW - 7)
    seed_task(r, "inference.high", "pending", pending_since=NOW - 1)

    by_name = {q["name"]: q for q in admin.simulate_get("/api/cli/queues", headers=ADMIN).json["queues"]}

    assert by_name["inference.low"]["latency_seconds"] == 3600
    assert by_name["inference.high"]["latency_seconds"] == 7
    assert by_name["simple.default"]["latency_seconds"] == 0


def test_latency_of_a_paused_queue_is_the_age_of_its_oldest_held_task(admin, r):
    seed_task(r, "inference.low", "pending", pending_since=NOW - 50)
    admin.simulate_post("/api/cli/queues/inference.low/pause", headers=ADMIN)
    enqueue(admin, "inference.low", 1)
    assert r.llen(keys.held("inference.low")) == 2

    low = admin.simulate_get("/api/cli/queues/inference.low", headers=ADMIN).json

    assert (low["pending"], low["held"], low["latency_seconds"], low["paused"]) == (0, 2, 50, True)


class CountingConnection(redis.Connection):
    """A real connection that counts its writes: one per command or pipeline, i.e. per round trip."""

    writes = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.writes += 1
        super().send_packed_command(command, check_health)


def test_queue_list_takes_the_same_few_redis_round_trips_for_3_or_30_queues(redis_server, settings, store, r):
    counting = redis.Redis(connection_pool=redis.ConnectionPool(port=redis_server.port,
                                                                connection_class=CountingConnection))
    client = falcon.testing.TestClient(create_app(settings, store=Store(counting, clock=lambda: NOW)))

    def round_trips() -> tuple[int, int]:
        assert client.simulate_get("/api/cli/queues", headers=ADMIN).status_code == 200  # loads the scripts
        CountingConnection.writes = 0
        result = client.simulate_get("/api/cli/queues", headers=ADMIN)
        assert result.status_code == 200
        return CountingConnection.writes, result.json["count"]

    few = round_trips()
    for n in range(27):
        seed_task(r, "extra.q%02d" % n, "pending")
    many = round_trips()

    assert (few[1], many[1]) == (3, 30)
    assert few[0] == many[0] <= 3, (few, many)


def test_parent_queue_detail_sums_its_sub_queues_and_shows_its_config(admin, r, queues):
    seed_task(r, "inference.high", "pending", pending_since=NOW - 30)
    seed_task(r, "inference.low", "pending", pending_since=NOW - 90)
    seed_task(r, "inference.low", "active")
    seed_task(r, "inference.high", "retry")
    r.set(keys.processed("inference.high"), 5)
    r.set(keys.processed("inference.low"), 6)
    r.set(keys.failed("inference.low", TODAY), 3)

    result = admin.simulate_get("/api/cli/queues/inference", headers=ADMIN)

    assert result.status_code == 200, result.text
    body = result.json
    assert {k: body[k] for k in (*COUNTS, "paused", "latency_seconds", "configured", "name")} == {
        **stats(pending=2, active=1, retry=1, processed=11, failed_today=3, latency_seconds=90), "name": "inference"}
    assert [(s["name"], s["priority"], s["pending"], s["processed"]) for s in body["sub_queues"]] == [
        ("inference.high", 10, 1, 5), ("inference.low", 2, 1, 6)]
    assert body["config"] == queues["inference"]


def test_sub_queue_detail_has_only_its_own_statistics(admin, r, queues):
    seed_task(r, "inference.high", "pending")
    seed_task(r, "inference.low", "completed")

    body = admin.simulate_get("/api/cli/queues/inference.low", headers=ADMIN).json

    assert (body["name"], body["pending"], body["completed"], body["priority"]) == ("inference.low", 0, 1, 2)
    assert [s["name"] for s in body["sub_queues"]] == ["inference.low"]
    assert body["config"] == queues["inference"]


def test_plain_queue_name_means_its_default_sub_queue(admin, r):
    enqueue(admin, "simple", 2)

    body = admin.simulate_get("/api/cli/queues/simple", headers=ADMIN).json

    assert (body["pending"], [s["name"] for s in body["sub_queues"]]) == (2, ["simple.default"])
    assert body["config"]["name"] == "simple"


def test_unconfigured_queue_detail_has_no_config(admin, r):
    seed_task(r, "legacy.jobs", "archived")

    body = admin.simulate_get("/api/cli/queues/legacy.jobs", headers=ADMIN).json

    assert (body["archived"], body["priority"], body["config"], body["configured"]) == (1, None, None, False)


def test_after_its_config_is_deleted_a_queue_with_tasks_is_listed_as_unconfigured(admin, r):
    enqueue(admin, "simple", 1)
    assert admin.simulate_delete("/api/cli/configs/simple", headers=ADMIN).status_code == 200

    listed = {q["name"]: q for q in admin.simulate_get("/api/cli/queues", headers=ADMIN).json["queues"]}
    detail = admin.simulate_get("/api/cli/queues/simple", headers=ADMIN).json

    assert {name: q["configured"] for name, q in listed.items()} == {
        "inference.high": True, "inference.low": True, "simple.default": False}
    assert (listed["simple.default"]["pending"], listed["simple.default"]["priority"]) == (1, None)
    assert (detail["configured"], detail["config"], detail["sub_queues"][0]["configured"]) == (False, None, False)
    assert r.llen(keys.pending("simple.default")) == 1


def test_a_parent_is_configured_while_a_stray_sub_queue_of_it_is_not(admin, r):
    seed_task(r, "inference.default", "pending")  # only asynq:queues names it

    body = admin.simulate_get("/api/cli/queues/inference", headers=ADMIN).json

    assert body["configured"] is True
    assert [(s["name"], s["configured"]) for s in body["sub_queues"]] == [
        ("inference.default", False), ("inference.high", True), ("inference.low", True)]


def test_an_unknown_queue_is_answered_with_the_known_names_closest_first(admin, r):
    for n in range(12):
        seed_task(r, "extra%02d.default" % n, "pending")

    refused = admin.simulate_get("/api/cli/queues/inferenc", headers=ADMIN)
    (message,) = errors_of(refused)

    assert refused.status_code == 404
    known = message.split("known queues, closest first: ")[1]
    names, _, more = known.partition(" and ")
    assert names.split(", ")[:3] == ["inference", "inference.low", "inference.high"]
    assert len(names.split(", ")) == 10
    # 12 extra queues with their parents, 2 configured parents with 3 sub-queues: 29 names
    assert more == "19 more"


@pytest.mark.parametrize("name", ["nosuch", "inference.nosuch", "nosuch.default", "simple.high"])
def test_unknown_queue_detail_is_404(admin, name):
    result = admin.simulate_get("/api/cli/queues/" + name, headers=ADMIN)

    assert result.status_code == 404
    assert_queue_not_found(errors_of(result), name)


BAD_NAMES = ["inference..high", ".inference", "inference.", "a.b.c", "-dash", "_under", "x" * 65,
             "inference." + "y" * 65, "x" * 5000, "caf%C3%A9", "%E2%9C%93.high", "%00", "in%00ference",
             "in%20ference", "inference%2Ehigh%2E", "*", "inference:high", "%FF"]


@pytest.mark.parametrize("suffix, method", [("", "GET"), ("/pause", "POST"), ("/unpause", "POST")])
def test_malformed_queue_name_is_400_and_changes_nothing(admin, r, suffix, method):
    enqueue(admin, "inference.high", 1)
    before = sorted(r.keys("*"))

    for name in BAD_NAMES:
        result = admin.simulate_request(method, "/api/cli/queues/%s%s" % (name, suffix), headers=ADMIN)

        assert result.status_code == 400, (name, result.text)
        assert errors_of(result)[0].startswith("queue: "), name
    assert sorted(r.keys("*")) == before


# --- pause and unpause -----------------------------------------------------------------------


def test_pause_moves_pending_ids_to_held_in_order_and_sets_the_paused_flag(admin, r):
    ids = enqueue(admin, "inference.high", 4)
    other = enqueue(admin, "inference.low", 1)

    result = admin.simulate_post("/api/cli/queues/inference.high/pause", headers=ADMIN)

    assert result.status_code == 200, result.text
    assert result.json == {"queue": "inference.high", "paused": True,
                           "sub_queues": [{"name": "inference.high", "moved": 4}]}
    assert r.exists(keys.pending("inference.high")) == 0
    assert ids_in(r, keys.held("inference.high")) == ids
    assert r.get(keys.paused("inference.high")) == str(NOW).encode()
    # the hashes are untouched and the other sub-queue runs on
    assert {r.hget(keys.task("inference.high", i), "state") for i in ids} == {b"pending"}
    assert ids_in(r, keys.pending("inference.low")) == other
    assert r.exists(keys.paused("inference.low")) == 0


def test_enqueue_to_a_paused_queue_goes_to_held_after_the_older_tasks(admin, r):
    before = enqueue(admin, "inference.high", 2)
    admin.simulate_post("/api/cli/queues/inference.high/pause", headers=ADMIN)

    during = enqueue(admin, "inference.high", 1) + enqueue(admin, "inference.high", 1, path="/api/cli/tasks")
    batch = admin.simulate_post("/queue/add-batch", json={"queue": "inference.high", "jobs": [1, 2]}, headers=ADMIN)

    assert batch.status_code == 200, batch.text
    assert r.exists(keys.pending("inference.high")) == 0
    assert ids_in(r, keys.held("inference.high")) == before + during + batch.json["task_ids"]
    stats_ = admin.simulate_get("/api/cli/queues/inference.high", headers=ADMIN).json
    assert (stats_["pending"], stats_["held"], stats_["paused"]) == (0, 6, True)


def test_pausing_a_parent_pauses_every_sub_queue(admin, r):
    high, low = enqueue(admin, "inference.high", 2), enqueue(admin, "inference.low", 3)

    result = admin.simulate_post("/api/cli/queues/inference/pause", headers=ADMIN)

    assert result.status_code == 200, result.text
    assert result.json["sub_queues"] == [{"name": "inference.high", "moved": 2}, {"name": "inference.low", "moved": 3}]
    for queue, ids in (("inference.high", high), ("inference.low", low)):
        assert (r.exists(keys.pending(queue)), r.exists(keys.paused(queue))) == (0, 1)
        assert ids_in(r, keys.held(queue)) == ids
    assert r.exists(keys.paused("simple.default")) == 0
    assert admin.simulate_get("/api/cli/queues/inference", headers=ADMIN).json["paused"] is True


def test_pause_twice_and_unpause_twice_answer_200_and_change_nothing_more(admin, r):
    ids = enqueue(admin, "simple", 3)

    first = admin.simulate_post("/api/cli/queues/simple/pause", headers=ADMIN)
    second = admin.simulate_post("/api/cli/queues/simple/pause", headers=ADMIN)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json["sub_queues"] == [{"name": "simple.default", "moved": 0}]
    assert ids_in(r, keys.held("simple.default")) == ids
    assert r.exists(keys.paused("simple.default")) == 1

    first = admin.simulate_post("/api/cli/queues/simple/unpause", headers=ADMIN)
    second = admin.simulate_post("/api/cli/queues/simple/unpause", headers=ADMIN)

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json["sub_queues"] == [{"name": "simple.default", "moved": 3}]
    assert second.json == {"queue": "simple", "paused": False, "sub_queues": [{"name": "simple.default", "moved": 0}]}
    assert ids_in(r, keys.pending("simple.default")) == ids
    assert r.exists(keys.held("simple.default"), keys.paused("simple.default")) == 0


def test_unpause_of_a_running_queue_leaves_its_pending_tasks_alone(admin, r):
    ids = enqueue(admin, "inference.low", 2)

    result = admin.simulate_post("/api/cli/queues/inference.low/unpause", headers=ADMIN)

    assert result.status_code == 200
    assert ids_in(r, keys.pending("inference.low")) == ids
    assert r.exists(keys.held("inference.low"), keys.paused("inference.low")) == 0


def test_unpause_puts_held_tasks_back_before_tasks_pushed_meanwhile_and_deletes_the_flag(admin, r):
    ids = enqueue(admin, "inference.high", 3)
    admin.simulate_post("/api/cli/queues/inference.high/pause", headers=ADMIN)
    held_later = enqueue(admin, "inference.high", 2)
    # while paused, a worker's retry forwarder pushes a task onto pending (it ignores the flag)
    forwarded = seed_task(r, "inference.high", "pending")

    result = admin.simulate_post("/api/cli/queues/inference.high/unpause", headers=ADMIN)

    assert result.status_code == 200
    assert result.json["sub_queues"] == [{"name": "inference.high", "moved": 5}]
    assert ids_in(r, keys.pending("inference.high")) == ids + held_later + [forwarded]
    assert r.exists(keys.held("inference.high"), keys.paused("inference.high")) == 0


def test_pausing_again_folds_tasks_pushed_onto_pending_into_held(admin, r):
    ids = enqueue(admin, "inference.high", 2)
    admin.simulate_post("/api/cli/queues/inference.high/pause", headers=ADMIN)
    forwarded = seed_task(r, "inference.high", "pending")

    result = admin.simulate_post("/api/cli/queues/inference.high/pause", headers=ADMIN)

    assert result.json["sub_queues"] == [{"name": "inference.high", "moved": 1}]
    assert r.exists(keys.pending("inference.high")) == 0
    assert sorted(ids_in(r, keys.held("inference.high"))) == sorted(ids + [forwarded])


def test_pause_of_an_unknown_queue_is_404_and_writes_nothing(admin, r):
    before = sorted(r.keys("*"))

    for path in ("/api/cli/queues/nosuch/pause", "/api/cli/queues/inference.nosuch/unpause"):
        result = admin.simulate_post(path, headers=ADMIN)
        assert result.status_code == 404
        assert errors_of(result)[0].startswith("queue not found: ")
    assert sorted(r.keys("*")) == before


class BrpopWorker(threading.Thread):
    """Polls like runqy-worker: ``BRPOP <every sub-queue's pending> 1`` in a loop."""

    def __init__(self, port: int, queues: list[str]):
        super().__init__(daemon=True)
        self._redis = redis.Redis(port=port, socket_timeout=5)
        self._keys = [keys.pending(q) for q in queues]
        self.taken: list[tuple[str, str]] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            popped = self._redis.brpop(self._keys, timeout=1)
            if popped:
                self.taken.append((popped[0].decode(), popped[1].decode()))

    def taken_from(self, queue: str) -> list[str]:
        return [task_id for key, task_id in self.taken if key == keys.pending(queue)]

    def stop(self) -> None:
        self._done.set()
        self.join(5)


def blocked_in_brpop(r: redis.Redis) -> bool:
    return any(c["cmd"] == "brpop" for c in r.client_list())


def test_a_paused_queue_gives_a_polling_worker_nothing_and_after_unpause_everything_in_order(
        admin, r, redis_server):
    before_high = enqueue(admin, "inference.high", 3)
    before_low = enqueue(admin, "inference.low", 2)
    admin.simulate_post("/api/cli/queues/inference/pause", headers=ADMIN)
    worker = BrpopWorker(redis_server.port, ["inference.high", "inference.low"])
    worker.start()
    try:
        wait_for(lambda: blocked_in_brpop(r), what="the worker to poll")
        during_high, during_low = [], []
        for _ in range(3):  # about 1.5 s of polling while tasks keep coming
            during_high += enqueue(admin, "inference.high", 1, path="/api/cli/tasks")
            during_low += enqueue(admin, "inference.low", 1)
            time.sleep(0.5)
        assert worker.taken == []
        assert len(ids_in(r, keys.held("inference.high"))) == 6
        assert len(ids_in(r, keys.held("inference.low"))) == 5

        assert admin.simulate_post("/api/cli/queues/inference/unpause", headers=ADMIN).status_code == 200
        wait_for(lambda: len(worker.taken) == 11, timeout=10, what="the worker to take all 11 tasks")
    finally:
        worker.stop()

    assert worker.taken_from("inference.high") == before_high + during_high
    assert worker.taken_from("inference.low") == before_low + during_low
    assert r.exists(keys.pending("inference.high"), keys.held("inference.high"), keys.paused("inference.high"),
                    keys.pending("inference.low"), keys.held("inference.low"), keys.paused("inference.low")) == 0


@pytest.mark.e2e
def test_pause_over_gunicorn_holds_tasks_back_from_a_polling_worker_and_odd_paths_are_json_4xx(
        server, r, redis_server):
    def post(path: str, **kwargs) -> requests.Response:
        answer = requests.post(server.url + path, headers=ADMIN, timeout=5, **kwargs)
        assert answer.status_code == 200, answer.text
        return answer

    first = post("/queue/add", json={"queue": "simple", "data": 1}).json()["info"]["id"]
    post("/api/cli/queues/simple/pause")
    worker = BrpopWorker(redis_server.port, ["simple.default"])
    worker.start()
    try:
        wait_for(lambda: blocked_in_brpop(r), what="the worker to poll")
        later = [post("/api/cli/tasks", json={"queue": "simple", "data": n}).json()["info"]["id"] for n in range(3)]
        time.sleep(1.5)
        assert worker.taken == []
        assert ids_in(r, keys.held("simple.default")) == [first] + later
        listed = requests.get(server.url + "/api/cli/queues/simple.default", headers=ADMIN, timeout=5).json()
        assert (listed["held"], listed["paused"]) == (4, True)

        post("/api/cli/queues/simple/unpause")
        wait_for(lambda: len(worker.taken) == 4, timeout=10, what="the worker to take all 4 tasks")
    finally:
        worker.stop()

    assert worker.taken_from("simple.default") == [first] + later
    assert r.exists(keys.held("simple.default"), keys.paused("simple.default")) == 0

    for path in ("/api/cli/queues/%00", "/api/cli/queues/caf%C3%A9/pause", "/api/cli/queues/" + "q" * 4000,
                 "/api/cli/queues/a.b.c/tasks", "/api/cli/queues/%FF%FE/unpause", "/api/cli/queues/..",
                 "/api/cli/queues/inference/tasks/%00", "/api/cli/queues/inference.high/tasks?limit=%00"):
        answer = requests.request("POST" if path.endswith("pause") else "GET", server.url + path, headers=ADMIN,
                                  timeout=5)
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
        assert answer.headers["Content-Type"].startswith("application/json"), path
        assert answer.json()["errors"], path


# --- auth --------------------------------------------------------------------------------------

ROUTES = [("GET", "/api/cli/queues"), ("GET", "/api/cli/queues/inference"),
          ("POST", "/api/cli/queues/inference/pause"), ("POST", "/api/cli/queues/inference/unpause")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_queue_routes_refuse_worker_and_client_keys_with_403_and_no_key_with_401(admin, r, method, path):
    ids = enqueue(admin, "inference.high", 1)

    for headers, status in ((WORKER, 403), (CLIENT, 403), ({"X-API-Key": WORKER_KEY}, 403), ({}, 401),
                            ({"Authorization": "Bearer wrong"}, 401), ({"X-API-Key": ""}, 401)):
        result = admin.simulate_request(method, path, headers=headers)

        assert result.status_code == status, headers
        errors_of(result)
        if status == 401:
            assert result.headers["WWW-Authenticate"] == "Bearer"
        else:
            assert "may not call" in errors_of(result)[0]
    assert ids_in(r, keys.pending("inference.high")) == ids
    assert r.exists(keys.paused("inference.high"), keys.held("inference.high")) == 0


def test_admin_key_also_works_as_x_api_key(admin):
    assert admin.simulate_get("/api/cli/queues", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_wrong_method_on_queue_routes_is_json_405(admin):
    result = assert_json_405(admin, "DELETE", "/api/cli/queues/inference")

    assert "GET" in result.headers["Allow"]

