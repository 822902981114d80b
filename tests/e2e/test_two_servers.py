"""Two runqy servers on one Redis behave as one: two gunicorn masters on their own ports, each with
its own worker processes, sharing a Redis and a YAML config directory, as two hosts behind a load
balancer would (README "Several servers", docs/product.md §8).

Whatever one server is told (a config, a pause, an idempotent or unique enqueue) the other acts on
at once, one housekeeper works for both and the other takes its lease over when its whole server
is killed, and /metrics of either reports the same queues. Every wait is bounded.
"""

import concurrent.futures
import os
import re
import signal
import textwrap
import time
from pathlib import Path

import pytest
import requests

from runqy import defaults, keys
from tests.conftest import ADMIN, CONFIG_DIR, WORKER_KEY, Gunicorn, served_env, wait_for
from tests.helpers import add, assert_queue_not_found, enqueue, errors_of, ids_in, post, register
from tests.worker_sim import SimWorker
from tests.worker_sim import register as register_worker

pytestmark = pytest.mark.e2e

Q = "simple.default"
#: A queue config made through the API, with one sub-queue of its own.
FRESH = {"name": "fresh", "max_retry": 2, "sub_queues": [{"name": "fast", "priority": 8}],
         "deployment": {"git_url": "https://example.com/fresh.git", "startup_cmd": "python main.py"}}
#: Requests sent where one would do, so that each server's worker processes are likely all asked.
TRIES = 6


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    """The YAML directory both servers read: a copy of the test configs, which a test may edit."""
    directory = tmp_path_factory.mktemp("configs")
    (directory / "queues.yaml").write_text((CONFIG_DIR / "queues.yaml").read_text())
    return directory


def start_server(redis_server, config_dir: Path) -> Gunicorn:
    return Gunicorn(served_env(redis_server, RUNQY_CONFIG_DIR=str(config_dir)), workers=2)


@pytest.fixture(scope="module")
def pair(redis_server, config_dir):
    """Two servers for the whole module; a test that kills one puts a new one in its place."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushdb()
    servers: list[Gunicorn] = []
    try:
        servers += [start_server(redis_server, config_dir), start_server(redis_server, config_dir)]
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def servers(pair, store) -> list[Gunicorn]:
    """The two servers over an emptied Redis with the test configs back in it (as a fresh start leaves
    it: the servers keep no state of their own)."""
    return pair


def worker_pids(master: int) -> set[int]:
    """The processes whose parent is ``master``: a gunicorn master's workers."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == master:
            found.add(int(stat.parent.name))
    return found


def lease_holder_pid(r) -> int:
    """The process the housekeeper's lease names (its value is ``<host>:<pid>:<random>``); 0 for none."""
    holder = r.get(keys.HOUSEKEEPER)
    return int(holder.decode().split(":")[1]) if holder else 0


def kill_hard(server: Gunicorn) -> None:
    """SIGKILL a gunicorn master and every worker of it: none gives anything up on its way out."""
    master = server.process.pid
    os.kill(master, signal.SIGSTOP)  # so that it starts no worker in place of those killed
    for pid in worker_pids(master):
        os.kill(pid, signal.SIGKILL)
    os.kill(master, signal.SIGKILL)
    server.process.wait(10)


def queue_metrics(url: str, queues: set[str]) -> dict[tuple, float]:
    """The asynq queue series of one scrape (and runqy's held gauge) for ``queues``: labels -> value."""
    text = requests.get(url + "/metrics", timeout=5).text
    series = {}
    for name, labels, value in re.findall(r"^(asynq_\w+|runqy_queue_held_tasks)\{(.*)\} (\S+)$", text, re.M):
        labels = tuple(re.findall(r'(\w+)="([^"]*)"', labels))
        if dict(labels).get("queue") in queues:
            series[(name, *labels)] = float(value)
    return series


# --- 1. queue configs ------------------------------------------------------------------------


def test_a_config_created_reloaded_or_deleted_through_one_server_is_served_so_by_the_other_at_once(
        servers, r, config_dir):
    a, b = servers
    created = post(a.url, "/api/cli/configs", FRESH)
    assert created.status_code == 201, created.text
    for _ in range(TRIES):  # no wait: the other server reads the config from Redis
        enqueued = add(b.url, {"queue": "fresh.fast", "data": 1})
        assert enqueued.status_code == 200, enqueued.text
        assert enqueued.json()["info"]["max_retry"] == 2
        registered = register(b.url, {"queue": "fresh"})
        assert registered.status_code == 200, registered.text
        assert registered.json()["sub_queues"] == [{"name": "fresh.fast", "priority": 8}]
    assert r.llen(keys.pending("fresh.fast")) == TRIES

    original = (config_dir / "queues.yaml").read_text()
    try:
        (config_dir / "queues.yaml").write_text(original.replace("max_retry: 1", "max_retry: 4"))
        (config_dir / "more.yaml").write_text(textwrap.dedent("""\
            queues:
              added:
                deployment: {git_url: https://example.com/added.git, startup_cmd: python added.py}
            """))
        reloaded = post(a.url, "/api/cli/configs/reload", None)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["loaded"] == ["added", "inference", "simple"]

        def b_serves_the_reloaded_configs() -> None:
            for _ in range(TRIES):
                assert add(b.url, {"queue": "simple", "data": 0}).json()["info"]["max_retry"] == 4
                assert register(b.url, {"queue": "added"}).status_code == 200
            listed = requests.get(b.url + "/api/cli/configs", headers=ADMIN, timeout=5).json()["configs"]
            assert [(c["name"], c["source"]) for c in listed] == [
                ("added", "yaml"), ("fresh", "api"), ("inference", "yaml"), ("simple", "yaml")]

        b_serves_the_reloaded_configs()
        # the other server's keepers, which loaded the old files at start-up, leave the reload alone
        time.sleep(defaults.CONFIG_CHECK_EVERY + 0.5)
        b_serves_the_reloaded_configs()
    finally:
        (config_dir / "queues.yaml").write_text(original)
        (config_dir / "more.yaml").unlink(missing_ok=True)

    for deleting, other, name, queue in ((a, b, "fresh", "fresh.fast"), (b, a, "added", "added.default")):
        deleted = requests.delete(deleting.url + "/api/cli/configs/" + name, headers=ADMIN, timeout=5)
        assert deleted.status_code == 200, deleted.text
        for _ in range(TRIES):
            refused = add(other.url, {"queue": queue, "data": 1})
            assert refused.status_code == 404, refused.text
            assert_queue_not_found(errors_of(refused), queue)
            assert register(other.url, {"queue": name}).status_code == 404
    assert sorted(r.hkeys(keys.CONFIGS)) == [b"inference", b"simple"]
    assert r.llen(keys.pending("fresh.fast")) == TRIES  # the tasks stay


# --- 2. pause and unpause ---------------------------------------------------------------------


def test_a_pause_through_one_server_holds_what_the_other_enqueues_and_an_unpause_there_releases_it_in_order(
        servers, r):
    a, b = servers
    assert post(a.url, "/api/cli/queues/simple/pause", None).status_code == 200
    held = enqueue(b.url, "simple", 5)
    scheduled = add(b.url, {"queue": "simple", "data": "due soon", "delay": 1})
    assert scheduled.status_code == 200, scheduled.text
    due = scheduled.json()["info"]["id"]
    assert ids_in(r, keys.held(Q)) == held and r.llen(keys.pending(Q)) == 0

    worker = SimWorker(register_worker(b.url, WORKER_KEY, "simple"), lambda payload: payload)
    try:
        # the due task goes to the held list too, whichever server's housekeeper moves it
        wait_for(lambda: ids_in(r, keys.held(Q)) == held + [due], timeout=5, what="the due task to be held")
        deadline = time.monotonic() + 4 * defaults.HOUSEKEEPING_EVERY
        while time.monotonic() < deadline:
            assert worker.take() is None
        stats = requests.get(b.url + "/api/cli/queues/" + Q, headers=ADMIN, timeout=5).json()
        assert (stats["paused"], stats["held"], stats["pending"]) == (True, 6, 0)

        unpaused = post(b.url, "/api/cli/queues/simple/unpause", None)
        assert unpaused.status_code == 200, unpaused.text
        assert unpaused.json()["sub_queues"] == [{"name": Q, "moved": 6}]
        taken = [worker.take() for _ in range(7)]
    finally:
        worker.stop()
    assert taken == held + [due, None]  # oldest first
    assert not r.exists(keys.held(Q)) and not r.exists(keys.paused(Q))


# --- 3. one housekeeper -----------------------------------------------------------------------


def test_one_housekeeper_works_for_both_and_the_other_server_takes_over_when_its_whole_server_is_killed(
        servers, r, redis_server, config_dir):
    pids = [worker_pids(s.process.pid) for s in servers]
    assert [len(p) for p in pids] == [2, 2]
    holder = wait_for(lambda: lease_holder_pid(r), timeout=5, what="a housekeeper")
    seen = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        seen.add(r.get(keys.HOUSEKEEPER))
        time.sleep(0.05)
    assert len(seen) == 1 and None not in seen, seen  # one holder, renewing its lease
    (holding,) = [i for i, p in enumerate(pids) if holder in p]

    # delayed tasks enqueued through both are each moved to pending once
    ids = [add(servers[i % 2].url, {"queue": "simple", "data": i, "delay": 1}).json()["info"]["id"]
           for i in range(20)]
    wait_for(lambda: r.llen(keys.pending(Q)) == 20, timeout=5, what="the delayed tasks to be pending")
    time.sleep(4 * defaults.HOUSEKEEPING_EVERY)  # rounds enough for a second mover to show itself
    assert sorted(ids_in(r, keys.pending(Q))) == sorted(ids)
    assert r.hget(keys.HOUSEKEEPING, "scheduled") == b"20"
    r.delete(keys.pending(Q))

    survivor = servers[1 - holding]
    # due after the kill and before the dead holder's lease runs out
    before = add(survivor.url, {"queue": "simple", "data": "due while nobody works", "delay": 2}).json()["info"]["id"]
    killed_at = time.monotonic()
    kill_hard(servers[holding])
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(servers[holding].url + "/health", timeout=1)
        assert r.zscore(keys.scheduled(Q), before) is not None
        deadline = killed_at + defaults.HOUSEKEEPER_LEASE + 3
        while True:  # until the survivor holds the lease, nothing is moved
            moved = r.llen(keys.pending(Q))
            new = lease_holder_pid(r)
            if new in pids[1 - holding]:
                break
            assert not moved, "a task was moved while no live process held the lease"
            assert time.monotonic() < deadline, "the other server did not take the lease over"
            time.sleep(0.02)
        took = time.monotonic() - killed_at
        print("\nthe lease went from pid %d to pid %d %.2f s after its server was killed" % (holder, new, took))
        # the lease was not given up (SIGKILL) but ran out, and was taken over at once
        assert defaults.HOUSEKEEPER_LEASE / 2 < took
        assert took < defaults.HOUSEKEEPER_LEASE + 1

        wait_for(lambda: ids_in(r, keys.pending(Q)) == [before], timeout=2,
                 what="the new housekeeper to move the task that fell due meanwhile")
        after = add(survivor.url, {"queue": "simple", "data": "due after the takeover", "delay": 1})
        wait_for(lambda: ids_in(r, keys.pending(Q)) == [before, after.json()["info"]["id"]],
                 timeout=1 + 1 + defaults.HOUSEKEEPING_EVERY, what="the next due task to be moved")
        assert r.hget(keys.HOUSEKEEPING, "scheduled") == b"22"
        assert lease_holder_pid(r) == new
    finally:
        servers[holding].stop()
        servers[holding] = start_server(redis_server, config_dir)


# --- 4. idempotency keys and unique locks -----------------------------------------------------


def test_an_idempotency_key_used_on_one_server_is_honoured_by_the_other(servers, r):
    a, b = servers
    body = {"queue": "simple", "data": {"order": 42}}
    first = add(a.url, body, {**ADMIN, "Idempotency-Key": "order-42"})
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = add(b.url, body, {**ADMIN, "Idempotency-Key": "order-42"})
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = add(b.url, {**body, "data": {"order": 43}}, {**ADMIN, "Idempotency-Key": "order-42"})
    assert other.status_code == 422
    assert "Idempotency-Key" in errors_of(other)[0]
    assert ids_in(r, keys.pending(Q)) == [first.json()["info"]["id"]]

    # 32 identical requests at once, half on each server: one task, one answer
    def send(i: int) -> requests.Response:
        return add(servers[i % 2].url, {**body, "data": {"order": 44}}, {**ADMIN, "Idempotency-Key": "order-44"})

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(send, range(32)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    assert ids_in(r, keys.pending(Q)) == [first.json()["info"]["id"], answers[0].json()["info"]["id"]]


def test_a_unique_task_enqueued_on_one_server_locks_its_payload_on_the_other(servers, r):
    a, b = servers
    body = {"queue": "simple", "data": {"report": "daily"}, "unique_for": 60}
    first = add(a.url, body)
    assert first.status_code == 200, first.text
    task_id = first.json()["info"]["id"]
    for _ in range(TRIES):
        refused = add(b.url, body)
        assert refused.status_code == 409, refused.text
        assert task_id in errors_of(refused)[0]
    assert ids_in(r, keys.pending(Q)) == [task_id]
    assert r.keys(keys.task(Q, "*")) == [keys.task(Q, task_id).encode()]
    (lock,) = r.keys(keys.unique(Q, "*"))
    assert r.get(lock) == task_id.encode() and 0 < r.ttl(lock) <= 60


# --- 5. metrics -------------------------------------------------------------------------------


def test_either_servers_metrics_report_the_same_queue_figures(servers, r):
    a, b = servers
    enqueue(a.url, "inference.high", 3)
    enqueue(b.url, "inference.low", 2)
    enqueue(a.url, "simple", 4)
    assert add(b.url, {"queue": "simple", "data": "later", "delay": 3600}).status_code == 200
    worker = SimWorker(register_worker(a.url, WORKER_KEY, "simple"), lambda payload: payload)
    try:
        assert worker.run_once()  # one completed, processed
    finally:
        worker.stop()
    assert post(b.url, "/api/cli/queues/inference.low/pause", None).status_code == 200

    queues = {"inference.high", "inference.low", Q}
    scrapes = [queue_metrics(server.url, queues) for server in (a, b) for _ in range(3)]
    latency = "asynq_queue_latency_seconds"
    exact = [{k: v for k, v in s.items() if k[0] != latency} for s in scrapes]
    assert all(e == exact[0] for e in exact), exact
    for s in scrapes:  # whole seconds, read a moment apart
        assert all(abs(v - scrapes[0][k]) <= 1 for k, v in s.items() if k[0] == latency)

    figures = exact[0]
    for name, queue, value in (("asynq_queue_size", "inference.high", 3), ("asynq_queue_size", "inference.low", 2),
                               ("asynq_queue_size", Q, 5), ("asynq_queue_paused_total", "inference.low", 1),
                               ("asynq_queue_paused_total", Q, 0), ("runqy_queue_held_tasks", "inference.low", 2),
                               ("asynq_tasks_processed_total", Q, 1)):
        assert figures[(name, ("queue", queue))] == value, (name, queue)
    for state, value in (("pending", 3), ("scheduled", 1), ("completed", 1), ("active", 0)):
        assert figures[("asynq_tasks_enqueued_total", ("queue", Q), ("state", state))] == value, state
    assert figures[("asynq_tasks_enqueued_total", ("queue", "inference.low"), ("state", "pending"))] == 2
