"""GET /metrics: asynq-compatible queue metrics read from Redis, HTTP counters
and latency histograms by route template, added up across gunicorn workers.

Queues are filled through the API and then moved through their states by hand,
key by key, the way runqy-worker does it (docs/worker-protocol.md §2.9); every number
the scrape shows is checked against what Redis holds.
"""

import concurrent.futures
import socket
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from runqy import keys
from tests.conftest import ADMIN, CLIENT, Gunicorn, wait_for
from tests.helpers import enqueue

#: The states asynq's own exporter reports in asynq_tasks_enqueued_total (hibiken/asynq x/metrics).
ASYNQ_STATES = {"pending", "active", "scheduled", "retry", "archived", "completed"}
CONFIGURED_QUEUES = {"inference.high", "inference.low", "simple.default"}
TASK_ROUTE = "/queue/{task_id}"


class Scrape:
    """The samples of one /metrics answer, by sample name and label set."""

    def __init__(self, text: str):
        self.types: dict[str, str] = {}
        self.samples: dict[str, dict[frozenset, float]] = defaultdict(dict)
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                labels = frozenset(sample.labels.items())
                assert labels not in self.samples[sample.name], "duplicate sample %s %s" % (sample.name, labels)
                self.samples[sample.name][labels] = sample.value

    def value(self, name: str, **labels: str) -> float:
        found = self.samples[name].get(frozenset(labels.items()))
        assert found is not None, "no sample %s%s in %s" % (name, labels, sorted(self.samples[name]))
        return found

    def get(self, name: str, default: float = 0.0, **labels: str) -> float:
        return self.samples[name].get(frozenset(labels.items()), default)

    def by(self, name: str, label: str) -> dict[str, float]:
        """``name``'s samples keyed by one label (the metric must have no other labels)."""
        out = {}
        for labels, value in self.samples[name].items():
            assert {k for k, _ in labels} == {label}, labels
            out[dict(labels)[label]] = value
        return out

    def states(self, queue: str) -> dict[str, float]:
        """asynq_tasks_enqueued_total of ``queue`` for the states asynq knows."""
        return {dict(labels)["state"]: value for labels, value in self.samples["asynq_tasks_enqueued_total"].items()
                if dict(labels)["queue"] == queue and dict(labels)["state"] in ASYNQ_STATES}

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for labels in self.samples[name]}


def scrape(client) -> Scrape:
    """An in-process scrape, without any key: /metrics is public."""
    result = client.simulate_get("/metrics")
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("text/plain"), result.headers
    return Scrape(result.text)


def scrape_http(url: str) -> Scrape:
    """A scrape of a real server over a connection of its own."""
    result = requests.get(url + "/metrics", headers={"Connection": "close"}, timeout=10)
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("text/plain"), result.headers
    return Scrape(result.text)


# --- runqy-worker's own writes (docs/worker-protocol.md §2.7-§2.9) ---------------------------

def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def activate(r, queue: str) -> str:
    """BRPOP-like: the oldest pending id moves to active, with a lease."""
    task_id = r.lmove(keys.pending(queue), keys.active(queue), "RIGHT", "LEFT").decode()
    r.zadd(keys.lease(queue), {task_id: int(time.time()) + 120})
    r.hset(keys.task(queue, task_id), "state", "active")
    return task_id


def finish(r, queue: str, task_id: str, state: str) -> None:
    """Moves an active task to completed, retry or archived, with the counters the worker bumps."""
    now = int(time.time())
    pipe = r.pipeline()
    pipe.lrem(keys.active(queue), 0, task_id)
    pipe.zrem(keys.lease(queue), task_id)
    target = {"completed": keys.completed, "retry": keys.retry, "archived": keys.archived}[state]
    pipe.zadd(target(queue), {task_id: now + 600})
    pipe.hset(keys.task(queue, task_id), "state", state)
    if state == "completed":
        pipe.incr(keys.processed(queue))
        pipe.incr(keys.processed(queue, today()))
    elif state == "archived":
        pipe.incr(keys.failed(queue))
        pipe.incr(keys.failed(queue, today()))
    else:
        pipe.hincrby(keys.task(queue, task_id), "retried", 1)
    pipe.execute()


# --- queue metrics --------------------------------------------------------------------------

def test_metrics_is_public_prometheus_text_with_asynq_metric_types(client, r):
    result = client.simulate_get("/metrics")

    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/plain; version=")
    scraped = Scrape(result.text)
    assert scraped.value("runqy_redis_up") == 1
    # the types asynq's exporter gives them; counters are exposed with their _total suffix
    assert {name: scraped.types[name] for name in (
        "asynq_queue_size", "asynq_queue_latency_seconds", "asynq_queue_paused_total",
        "asynq_tasks_enqueued_total", "asynq_tasks_processed", "asynq_tasks_failed")} == {
        "asynq_queue_size": "gauge", "asynq_queue_latency_seconds": "gauge", "asynq_queue_paused_total": "gauge",
        "asynq_tasks_enqueued_total": "gauge", "asynq_tasks_processed": "counter", "asynq_tasks_failed": "counter"}
    assert set(scraped.by("asynq_tasks_processed_total", "queue")) == CONFIGURED_QUEUES
    assert set(scraped.by("asynq_tasks_failed_total", "queue")) == CONFIGURED_QUEUES


def test_queue_metrics_report_the_tasks_and_counters_redis_holds(client, r):
    high = enqueue(client, "inference.high", 6)
    enqueue(client, "inference.low", 1)
    enqueue(client, "simple", 2)
    # the worker takes four tasks of inference.high and ends three of them
    for state in ("completed", "archived", "retry"):
        finish(r, "inference.high", activate(r, "inference.high"), state)
    still_active = activate(r, "inference.high")
    # counters from earlier days of work, as the worker left them
    r.incrby(keys.processed("inference.high"), 41)
    r.incrby(keys.failed("inference.high"), 6)
    r.set(keys.processed("inference.low"), 5)
    # the oldest waiting task of inference.high has waited 100 s (asynq writes nanoseconds),
    # the one of inference.low 30 s (runqy writes seconds)
    oldest_high = r.lindex(keys.pending("inference.high"), -1).decode()
    assert oldest_high == high[4]
    since = int(time.time())
    r.hset(keys.task("inference.high", oldest_high), "pending_since", (since - 100) * 10**9)
    oldest_low = r.lindex(keys.pending("inference.low"), -1).decode()
    r.hset(keys.task("inference.low", oldest_low), "pending_since", since - 30)
    assert r.llen(keys.pending("inference.high")) == 2 and r.llen(keys.active("inference.high")) == 1
    assert r.lrange(keys.active("inference.high"), 0, -1) == [still_active.encode()]

    scraped = scrape(client)
    waited = int(time.time()) - since

    assert scraped.value("runqy_redis_up") == 1
    assert scraped.by("asynq_queue_size", "queue") == {"inference.high": 6, "inference.low": 1, "simple.default": 2}
    assert scraped.states("inference.high") == {"pending": 2, "active": 1, "scheduled": 0, "retry": 1,
                                                "archived": 1, "completed": 1}
    assert scraped.states("inference.low") == {"pending": 1, "active": 0, "scheduled": 0, "retry": 0,
                                               "archived": 0, "completed": 0}
    assert scraped.states("simple.default")["pending"] == 2
    assert scraped.by("asynq_tasks_processed_total", "queue") == {"inference.high": 42, "inference.low": 5,
                                                                  "simple.default": 0}
    assert scraped.by("asynq_tasks_failed_total", "queue") == {"inference.high": 7, "inference.low": 0,
                                                               "simple.default": 0}
    assert scraped.by("asynq_queue_paused_total", "queue") == {q: 0 for q in CONFIGURED_QUEUES}
    latency = scraped.by("asynq_queue_latency_seconds", "queue")
    assert 100 <= latency["inference.high"] <= 100 + waited
    assert 30 <= latency["inference.low"] <= 30 + waited
    assert 0 <= latency["simple.default"] <= 1 + waited


def test_queue_metrics_agree_with_the_admin_queue_statistics(client, r):
    enqueue(client, "inference.low", 3)
    finish(r, "inference.low", activate(r, "inference.low"), "completed")
    activate(r, "inference.low")

    stats = {q["name"]: q for q in client.simulate_get("/api/cli/queues", headers=ADMIN).json["queues"]}
    scraped = scrape(client)

    for name, q in stats.items():
        assert scraped.value("asynq_queue_size", queue=name) == sum(q[s] for s in ASYNQ_STATES | {"held"})
        assert scraped.value("asynq_tasks_processed_total", queue=name) == q["processed"]
        assert scraped.value("asynq_tasks_failed_total", queue=name) == q["failed"]
        assert scraped.value("asynq_queue_paused_total", queue=name) == int(q["paused"])
        for state in ASYNQ_STATES - {"pending"}:
            assert scraped.value("asynq_tasks_enqueued_total", queue=name, state=state) == q[state]
        assert scraped.value("asynq_tasks_enqueued_total", queue=name, state="pending") == q["pending"] + q["held"]
    assert stats["inference.low"]["pending"] == 1 and stats["inference.low"]["active"] == 1


def test_a_queue_known_only_from_asynq_queues_is_exported(client, r):
    # an asynq client of another language enqueued onto a queue runqy has no config for
    r.sadd(keys.QUEUES, "legacy.jobs")
    r.lpush(keys.pending("legacy.jobs"), "t-1", "t-2")
    r.set(keys.processed("legacy.jobs"), 3)

    scraped = scrape(client)

    assert set(scraped.by("asynq_queue_size", "queue")) == CONFIGURED_QUEUES | {"legacy.jobs"}
    assert scraped.value("asynq_queue_size", queue="legacy.jobs") == 2
    assert scraped.value("asynq_tasks_enqueued_total", queue="legacy.jobs", state="pending") == 2
    assert scraped.value("asynq_tasks_processed_total", queue="legacy.jobs") == 3


def test_pausing_a_queue_through_the_admin_api_sets_its_paused_gauge(client, r):
    enqueue(client, "simple", 2)

    paused = client.simulate_post("/api/cli/queues/simple/pause", headers=ADMIN)
    assert paused.status_code == 200, paused.text
    assert r.exists(keys.paused("simple.default")) and r.llen(keys.held("simple.default")) == 2
    during = scrape(client)
    assert client.simulate_post("/api/cli/queues/simple/unpause", headers=ADMIN).status_code == 200
    assert not r.exists(keys.paused("simple.default")) and r.llen(keys.pending("simple.default")) == 2
    after = scrape(client)

    assert during.by("asynq_queue_paused_total", "queue") == {"inference.high": 0, "inference.low": 0,
                                                              "simple.default": 1}
    assert during.value("asynq_queue_size", queue="simple.default") == 2
    assert after.by("asynq_queue_paused_total", "queue") == {q: 0 for q in CONFIGURED_QUEUES}
    assert after.states("simple.default")["pending"] == 2


def test_held_tasks_of_a_paused_queue_are_pending_in_the_asynq_state_label(client, r):
    # asynq keeps a paused queue's tasks pending; the task API says "pending" for them as well
    ids = enqueue(client, "simple", 2)
    assert client.simulate_post("/api/cli/queues/simple/pause", headers=ADMIN).status_code == 200
    assert r.llen(keys.held("simple.default")) == 2
    task = client.simulate_get("/queue/%s" % ids[0], headers=CLIENT).json["info"]
    assert task["state"] == "pending"

    scraped = scrape(client)

    assert scraped.label_values("asynq_tasks_enqueued_total", "state") == ASYNQ_STATES
    assert scraped.states("simple.default") == {"pending": 2, "active": 0, "scheduled": 0, "retry": 0,
                                                "archived": 0, "completed": 0}


# --- HTTP metrics ---------------------------------------------------------------------------

def test_http_requests_are_counted_by_route_template_method_and_status(client, r):
    task_id = enqueue(client, "simple", 1)[0]
    for _ in range(3):
        assert client.simulate_get("/queue/%s" % task_id, headers=CLIENT).status_code == 200
    assert client.simulate_get("/queue/%s/simple" % task_id, headers=CLIENT).status_code == 200
    for _ in range(2):
        assert client.simulate_get("/queue/%s" % uuid.uuid4(), headers=CLIENT).status_code == 404
    assert client.simulate_get("/queue/%s" % task_id).status_code == 401
    assert client.simulate_get("/queue/%s" % task_id, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.simulate_delete("/queue/add", headers=CLIENT).status_code == 405

    scraped = scrape(client)

    requests_by_label = {tuple(sorted(labels)): value for labels, value in
                         scraped.samples["runqy_http_requests_total"].items()}
    assert requests_by_label == {
        (("method", "POST"), ("route", "/queue/add"), ("status", "200")): 1,
        (("method", "GET"), ("route", TASK_ROUTE), ("status", "200")): 3,
        (("method", "GET"), ("route", TASK_ROUTE), ("status", "404")): 2,
        (("method", "GET"), ("route", TASK_ROUTE), ("status", "401")): 2,
        (("method", "GET"), ("route", "/queue/{task_id}/{queue_name}"), ("status", "200")): 1,
        (("method", "DELETE"), ("route", "/queue/add"), ("status", "405")): 1,
    }
    for status, count in (("200", 3), ("404", 2), ("401", 2)):
        assert scraped.value("runqy_http_request_duration_seconds_count",
                             route=TASK_ROUTE, method="GET", status=status) == count
    assert scraped.value("runqy_http_request_duration_seconds_count",
                         route="/queue/add", method="POST", status="200") == 1
    assert scraped.value("runqy_http_request_duration_seconds_count",
                         route="/queue/{task_id}/{queue_name}", method="GET", status="200") == 1
    assert scraped.value("runqy_http_request_duration_seconds_sum", route=TASK_ROUTE, method="GET", status="200") > 0
    # the scrape counts itself once it has answered
    assert scrape(client).value("runqy_http_requests_total", route="/metrics", method="GET", status="200") == 1


def test_request_duration_histogram_has_cumulative_buckets_ending_in_the_count(client, r):
    for _ in range(5):
        assert client.simulate_get("/health").status_code == 200

    scraped = scrape(client)

    buckets = sorted((float(dict(labels)["le"]), value)
                     for labels, value in scraped.samples["runqy_http_request_duration_seconds_bucket"].items()
                     if dict(labels)["route"] == "/health")
    assert len(buckets) > 5 and buckets[-1] == (float("inf"), 5)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert scraped.value("runqy_http_request_duration_seconds_count", route="/health", method="GET", status="200") == 5


def test_paths_that_match_no_route_share_one_route_label(client, r):
    unknown = [str(uuid.uuid4()) for _ in range(3)]
    for name in unknown:
        assert client.simulate_get("/no/such/%s" % name).status_code == 404

    scraped = scrape(client)

    routes = scraped.label_values("runqy_http_requests_total", "route")
    assert routes == {"unmatched"}
    assert scraped.value("runqy_http_requests_total", route="unmatched", method="GET", status="404") == 3
    assert not [route for route in routes if any(name in route for name in unknown)]


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")  # the test client's WSGI validator says so
def test_methods_outside_the_standard_ones_share_one_method_label(client, r):
    made_up = ["M%06dXQ" % i for i in range(20)]
    for method in made_up:
        assert client.simulate_request(method, "/no/such/%s" % method).status_code == 404
        assert client.simulate_request(method, "/queue/add", headers=CLIENT).status_code == 400
    assert client.simulate_request("PATCH", "/queue/add", headers=CLIENT).status_code == 405

    scraped = scrape(client)

    assert scraped.label_values("runqy_http_requests_total", "method") == {"other", "PATCH"}
    assert scraped.value("runqy_http_requests_total", route="unmatched", method="other", status="404") == 20
    assert scraped.value("runqy_http_requests_total", route="/queue/add", method="other", status="400") == 20
    assert scraped.value("runqy_http_request_duration_seconds_count",
                         route="unmatched", method="other", status="404") == 20
    assert scraped.label_values("runqy_http_request_duration_seconds_count", "method") == {"other", "PATCH"}


def test_scrape_answers_with_redis_up_0_while_redis_is_down(client, r, redis_server):
    assert client.simulate_get("/health").status_code == 200
    redis_server.stop()
    try:
        down = scrape(client)
    finally:
        redis_server.start()

    assert down.value("runqy_redis_up") == 0
    assert not [name for name in down.samples if name.startswith("asynq_")]
    assert down.value("runqy_http_requests_total", route="/health", method="GET", status="200") == 1
    # the store reconnects by itself once Redis is back
    assert wait_for(lambda: scrape(client).value("runqy_redis_up") == 1, what="runqy_redis_up 1")


# --- a real gunicorn with several worker processes -------------------------------------------

def worker_pids_with_counters(directory: Path, master: int) -> set[int]:
    """The processes that have written HTTP counters into the multiprocess directory."""
    return {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("counter_*.db")} - {master}


@pytest.mark.e2e
def test_http_counters_add_up_across_three_gunicorn_workers(r, gunicorn_env, tmp_path):
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    server = Gunicorn({**gunicorn_env, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}, workers=3)
    try:
        added = requests.post(server.url + "/queue/add", json={"queue": "simple", "data": {}}, headers=CLIENT,
                              timeout=10)
        assert added.status_code == 200, added.text
        url = "%s/queue/%s" % (server.url, added.json()["info"]["id"])

        def keep_alive_session(n: int) -> int:
            with requests.Session() as session:
                for _ in range(n):
                    assert session.get(url, headers=CLIENT, timeout=10).status_code == 200
            return n

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            made = sum(pool.map(keep_alive_session, [10] * 6))
        # more requests on fresh connections until a second worker has served some (bounded)
        for _ in range(200):
            if len(worker_pids_with_counters(multiproc, server.process.pid)) >= 2:
                break
            assert requests.get(url, headers={**CLIENT, "Connection": "close"}, timeout=10).status_code == 200
            made += 1
        assert len(worker_pids_with_counters(multiproc, server.process.pid)) >= 2, "one worker served everything"

        scrapes = [scrape_http(server.url) for _ in range(6)]
    finally:
        server.stop()

    for scraped in scrapes:
        assert scraped.value("runqy_http_requests_total", route=TASK_ROUTE, method="GET", status="200") == made
        assert scraped.value("runqy_http_request_duration_seconds_count",
                             route=TASK_ROUTE, method="GET", status="200") == made
        assert scraped.value("runqy_http_requests_total", route="/queue/add", method="POST", status="200") == 1
        # queue metrics come once from Redis, not once per worker process
        assert scraped.samples["runqy_redis_up"] == {frozenset(): 1}
        assert scraped.by("asynq_queue_size", "queue") == {"inference.high": 0, "inference.low": 0,
                                                           "simple.default": 1}
    assert r.llen(keys.pending("simple.default")) == 1


@pytest.mark.e2e
def test_gunicorn_scrape_answers_with_redis_up_0_while_redis_is_down(server, redis_server):
    assert requests.get(server.url + "/health", timeout=5).status_code == 200
    redis_server.stop()
    try:
        down = requests.get(server.url + "/metrics", timeout=10)
    finally:
        redis_server.start()

    assert down.status_code == 200, down.text
    scraped = Scrape(down.text)
    assert scraped.value("runqy_redis_up") == 0
    assert not [name for name in scraped.samples if name.startswith("asynq_")]
    assert scraped.get("runqy_http_requests_total", route="/health", method="GET", status="200") >= 2


def made_up_requests(port: int, numbers: range) -> Counter:
    """One request per number, each on a connection of its own (so both workers get some), with a
    method and a path no client of runqy sends: ``M000123XQ /no/such/123``. The statuses answered."""
    statuses: Counter = Counter()
    for n in numbers:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"M%06dXQ /no/such/%d HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % (n, n))
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        statuses[int(answer.split(b" ", 2)[1])] += 1
    return statuses


def http_series(scraped: Scrape) -> set[frozenset]:
    """The label sets of runqy_http_requests_total, leaving out the scrapes' own."""
    return {labels for labels in scraped.samples["runqy_http_requests_total"]
            if ("route", "/metrics") not in labels}


def files_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


@pytest.mark.e2e
def test_made_up_methods_on_unknown_paths_add_no_series_and_no_metric_file_space(r, gunicorn_env, tmp_path):
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    server = Gunicorn({**gunicorn_env, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)})
    try:
        before = scrape_http(server.url)
        statuses = made_up_requests(server.port, range(300))
        first = scrape_http(server.url)
        first_size = files_size(multiproc)
        statuses += made_up_requests(server.port, range(300, 600))
        second = scrape_http(server.url)
        second_size = files_size(multiproc)
    finally:
        server.stop()

    assert statuses == {404: 600}, statuses  # the app answered every one of them: none was refused before it
    assert http_series(first) - http_series(before) == {
        frozenset({("route", "unmatched"), ("method", "other"), ("status", "404")})}
    assert http_series(second) == http_series(first)
    assert second.value("runqy_http_requests_total", route="unmatched", method="other", status="404") == 600
    assert set(second.samples["runqy_http_request_duration_seconds_count"]) - set(
        first.samples["runqy_http_request_duration_seconds_count"]) <= {
        frozenset({("route", "/metrics"), ("method", "GET"), ("status", "200")})}
    # 300 more distinct methods took no more room in the workers' metric files
    assert second_size == first_size


@pytest.mark.e2e
def test_a_scrape_over_gunicorn_reports_every_one_of_1000_queues(server, r):
    names = {"load%04d.default" % i for i in range(1000)}
    r.sadd(keys.QUEUES, *names)
    r.lpush(keys.pending("load0999.default"), "t-1", "t-2", "t-3")
    r.set(keys.processed("load0500.default"), 7)

    # the timeout is a guard against a hang, not a speed goal
    answer = requests.get(server.url + "/metrics", headers={"Connection": "close"}, timeout=10)

    assert answer.status_code == 200, answer.text
    scraped = Scrape(answer.text)
    assert scraped.value("runqy_redis_up") == 1
    sizes = scraped.by("asynq_queue_size", "queue")
    assert set(sizes) == names | CONFIGURED_QUEUES
    assert sizes["load0999.default"] == 3 and sum(sizes.values()) == 3
    assert set(scraped.by("asynq_tasks_processed_total", "queue")) == names | CONFIGURED_QUEUES
    assert scraped.value("asynq_tasks_processed_total", queue="load0500.default") == 7
    assert {dict(labels)["queue"] for labels in scraped.samples["asynq_tasks_enqueued_total"]} == (
        names | CONFIGURED_QUEUES)
