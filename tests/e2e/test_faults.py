"""Faults over a real gunicorn: Redis going away and coming back, bad start-up
settings, body limits enforced on the wire (Content-Length and chunked), and
bodies the server cannot read.
"""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from runqy import keys
from tests.conftest import ADMIN, ROOT, WORKER, Gunicorn, raw_post, served_env, snapshot, wait_for
from tests.helpers import add, assert_queue_not_found

pytestmark = pytest.mark.e2e

#: The bound within which a request must be answered while Redis is down.
UNAVAILABLE_WITHIN = 3
#: The YAML configs are back in Redis this long after Redis answers again without them.
CONFIGS_BACK_WITHIN = 2.0
#: While Redis is frozen, a request that needs it answers 503 within this time...
FROZEN_503_WITHIN = 2.5
#: ... and liveness, which does not need it, within this.
LIVENESS_WITHIN = 0.1


@pytest.fixture
def redis_restored(redis_server):
    """Yields the Redis server; whatever the test did, Redis is running afterwards."""
    try:
        yield redis_server
    finally:
        if redis_server.process is None:
            redis_server.start()


def assert_unavailable(answer: requests.Response) -> None:
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    assert body["errors"][0].startswith("redis unavailable: "), body


def core_calls(url: str, task_id: str) -> dict[str, requests.Response]:
    """One call to each core route that needs Redis, each bounded by UNAVAILABLE_WITHIN."""
    return {
        "add": requests.post(url + "/queue/add", json={"queue": "inference.high", "data": {"n": 2}},
                             headers=ADMIN, timeout=UNAVAILABLE_WITHIN),
        "batch": requests.post(url + "/queue/add-batch", json={"queue": "simple", "jobs": [1, 2]},
                               headers=ADMIN, timeout=UNAVAILABLE_WITHIN),
        "status": requests.get(url + "/queue/" + task_id, headers=ADMIN, timeout=UNAVAILABLE_WITHIN),
        "status_seed": requests.get(url + "/queue/%s/inference.high" % task_id, headers=ADMIN,
                                    timeout=UNAVAILABLE_WITHIN),
        "register": requests.post(url + "/worker/register",
                                  json={"queue": "inference", "hostname": "h", "os": "linux", "version": "dev"},
                                  headers=WORKER, timeout=UNAVAILABLE_WITHIN),
        "healthz": requests.get(url + "/healthz", timeout=UNAVAILABLE_WITHIN),
    }


#: The task most tests here enqueue.
TASK = {"queue": "inference.high", "data": {"n": 1}}


# --- Redis stops and comes back -------------------------------------------------------------


def test_redis_down_is_503_on_every_core_route_and_the_same_server_recovers(server, r, redis_restored):
    first = add(server.url, TASK)
    assert first.status_code == 200, first.text
    task_id = first.json()["info"]["id"]
    pid = server.process.pid

    redis_restored.stop()
    # several rounds, so that both gunicorn workers and several pooled connections see the outage
    for _ in range(3):
        answers = core_calls(server.url, task_id)
        for name in ("add", "batch", "status", "status_seed", "register"):
            assert_unavailable(answers[name])
        assert answers["healthz"].status_code == 503
        assert answers["healthz"].json() == {"status": "degraded", "redis": False}
    assert requests.get(server.url + "/health", timeout=UNAVAILABLE_WITHIN).json() == {"status": "ok"}

    redis_restored.start()  # empty: no persistence
    fresh = redis_restored.client()
    # nobody puts the configs back: the server does, and until then a request gets 503, never 404
    answer = wait_for(lambda: (lambda a: a if a.status_code != 503 else None)(add(server.url, TASK)),
                      timeout=CONFIGS_BACK_WITHIN, what="configs restored")
    assert answer.status_code == 200, answer.text
    # the same process serves again: every route, several times over both workers' pools
    for _ in range(5):
        assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok", "redis": True}
        answer = add(server.url, {**TASK, "data": {"after": "restart"}})
        assert answer.status_code == 200, answer.text
        new_id = answer.json()["info"]["id"]
        assert fresh.hget(keys.task_queue(new_id), "queue") == b"inference.high"
        status = requests.get(server.url + "/queue/" + new_id, headers=ADMIN, timeout=5)
        assert status.status_code == 200 and status.json()["info"]["payload"] == {"after": "restart"}
        reg = requests.post(server.url + "/worker/register", json={"queue": "inference"}, headers=WORKER,
                            timeout=5)
        assert reg.status_code == 200 and reg.json()["sub_queues"][0]["name"] == "inference.high"
    batch = requests.post(server.url + "/queue/add-batch", json={"queue": "simple", "jobs": [1, 2]},
                          headers=ADMIN, timeout=5)
    assert batch.status_code == 200, batch.text
    assert fresh.llen(keys.pending("inference.high")) == 6
    assert fresh.llen(keys.pending("simple.default")) == 2
    # the task written before the restart is gone with the data; that is a 404, not an error
    assert requests.get(server.url + "/queue/" + task_id, headers=ADMIN, timeout=5).status_code == 404
    assert server.process.poll() is None and server.process.pid == pid


def test_flushed_redis_gets_the_yaml_configs_back_by_itself_and_meanwhile_answers_503_not_404(server, r):
    created = requests.post(server.url + "/api/cli/configs", headers=ADMIN, timeout=5, json={
        "name": "byapi", "deployment": {"git_url": "https://example.com/a.git", "startup_cmd": "python a.py"}})
    assert created.status_code == 201, created.text
    sources = {c["name"]: c["source"] for c in
               requests.get(server.url + "/api/cli/configs", headers=ADMIN, timeout=5).json()["configs"]}
    assert sources == {"inference": "yaml", "simple": "yaml", "byapi": "api"}

    r.flushall()
    flushed = time.monotonic()
    statuses = []
    while True:
        answer = add(server.url, TASK)
        statuses.append(answer.status_code)
        if answer.status_code != 503:
            break
        assert "retry" in answer.json()["errors"][0] and answer.headers["Retry-After"] == "1", answer.text
        assert time.monotonic() - flushed < CONFIGS_BACK_WITHIN + 1, statuses
        time.sleep(0.02)
    wait_for(lambda: r.hexists(keys.CONFIGS, "simple"), timeout=CONFIGS_BACK_WITHIN, what="configs back")
    assert time.monotonic() - flushed <= CONFIGS_BACK_WITHIN + 0.5
    assert answer.status_code == 200, (statuses, answer.text)
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [answer.json()["info"]["id"].encode()]
    reg = requests.post(server.url + "/worker/register", json={"queue": "inference"}, headers=WORKER, timeout=5)
    assert reg.status_code == 200, reg.text
    # a config made through the API lived only in Redis: it is gone, and that is a 404 now
    assert set(r.hkeys(keys.CONFIGS)) == {b"inference", b"simple"}
    assert add(server.url, {**TASK, "queue": "byapi"}).status_code == 404


def test_a_yaml_config_deleted_through_the_api_stays_deleted_and_is_404(server, r):
    deleted = requests.delete(server.url + "/api/cli/configs/simple", headers=ADMIN, timeout=5)
    assert deleted.status_code == 200, deleted.text
    time.sleep(CONFIGS_BACK_WITHIN + 0.5)  # a keeper's check or two
    assert not r.hexists(keys.CONFIGS, "simple")
    answer = add(server.url, {**TASK, "queue": "simple"})
    assert answer.status_code == 404
    assert_queue_not_found(answer.json()["errors"], "simple.default")
    assert "simple" not in answer.json()["errors"][0].split("closest first: ")[1].split(", ")


def timed(call):
    started = time.monotonic()
    try:
        answer = call()
        return answer.status_code, answer.text, time.monotonic() - started
    except requests.RequestException as exc:
        return None, repr(exc), time.monotonic() - started


def test_frozen_redis_makes_every_route_that_needs_it_503_in_time_while_liveness_stays_fast(server, r,
                                                                                           redis_server):
    task_id = add(server.url, TASK).json()["info"]["id"]
    calls = [
        lambda: add(server.url, TASK),
        lambda: requests.get(server.url + "/queue/" + task_id, headers=ADMIN, timeout=10),
        lambda: requests.post(server.url + "/worker/register", json={"queue": "inference"}, headers=WORKER,
                              timeout=10),
        lambda: requests.get(server.url + "/api/cli/queues", headers=ADMIN, timeout=10),
        lambda: requests.get(server.url + "/healthz", timeout=10),
    ]
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            # 60 requests at once need Redis; liveness is asked all along
            needing = [pool.submit(timed, calls[i % len(calls)]) for i in range(60)]
            liveness = [timed(lambda: requests.get(server.url + "/health", timeout=5)) for _ in range(20)]
            results = [f.result() for f in needing]
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    for status, text, took in results:
        assert status == 503 and took <= FROZEN_503_WITHIN, (status, text, took)
    assert any("may have been written: retry with the same task_id" in text for _, text, _ in results)
    for status, text, took in liveness:
        assert status == 200 and took <= LIVENESS_WITHIN, (status, text, took)
    # thawed, the same server serves at once
    assert add(server.url, TASK).status_code == 200
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok", "redis": True}


# --- start-up -------------------------------------------------------------------------------------


def run_gunicorn_expecting_exit(env: dict, timeout: float = 30) -> subprocess.CompletedProcess:
    """gunicorn that must refuse to start: its exit status and its output."""
    full_env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": "0", "WEB_CONCURRENCY": "1"}
    try:
        return subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:runqy.gunicorn_conf", "runqy.wsgi:app"],
                              cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("gunicorn did not exit: %s %s" % (exc.stdout, exc.stderr)) from None


def test_start_with_a_bad_queue_config_exits_naming_file_queue_and_field(r, gunicorn_env, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text(textwrap.dedent("""\
        queues:
          fine:
            deployment: {git_url: https://example.com/a.git, startup_cmd: python a.py}
          gpu:
            sub_queues:
              - name: fast
                priority: 0
            deployment: {git_url: https://example.com/b.git, startup_cmd: python b.py}
        """))
    done = run_gunicorn_expecting_exit({**gunicorn_env, "RUNQY_CONFIG_DIR": str(tmp_path)})
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert str(bad) in output
    assert "gpu" in output and "sub_queues.0.priority" in output, output
    assert r.hlen(keys.CONFIGS) == 0


def test_start_without_an_admin_key_exits_with_a_clear_message(r, gunicorn_env):
    env = {k: v for k, v in gunicorn_env.items() if k != "RUNQY_API_KEY"}
    env["RUNQY_API_KEY"] = ""
    done = run_gunicorn_expecting_exit(env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "RUNQY_API_KEY is not set" in output, output
    assert "Traceback" not in output, output
    assert r.hlen(keys.CONFIGS) == 0


def test_start_with_redis_down_answers_503_then_loads_configs_when_redis_comes_up(r, gunicorn_env,
                                                                                 redis_restored):
    redis_restored.stop()
    process = Gunicorn(gunicorn_env)
    try:
        assert_unavailable(requests.post(process.url + "/queue/add", json={"queue": "simple", "data": 1},
                                         headers=ADMIN, timeout=UNAVAILABLE_WITHIN))
        health = requests.get(process.url + "/healthz", timeout=UNAVAILABLE_WITHIN)
        assert (health.status_code, health.json()) == (503, {"status": "degraded", "redis": False})

        redis_restored.start()
        fresh = redis_restored.client()
        # nobody puts the configs: the server loads them itself once Redis answers
        answer = wait_for(lambda: (lambda a: a if a.status_code == 200 else None)(
            add(process.url, {"queue": "simple", "data": {"late": True}})), timeout=15, what="configs loaded")
        task_id = answer.json()["info"]["id"]
        assert fresh.lrange(keys.pending("simple.default"), 0, -1) == [task_id.encode()]
        assert set(fresh.hkeys(keys.CONFIGS)) == {b"inference", b"simple"}
        assert requests.get(process.url + "/healthz", timeout=5).json() == {"status": "ok", "redis": True}
        assert process.process.poll() is None
    finally:
        process.stop()


# --- body limits on the wire -------------------------------------------------------------------------

LIMIT = 2048


@pytest.fixture(scope="module")
def small_server(redis_server):
    """One gunicorn with a small RUNQY_MAX_BODY_SIZE for the tests below (configs loaded per test)."""
    process = Gunicorn(served_env(redis_server, RUNQY_MAX_BODY_SIZE=str(LIMIT)))
    yield process
    process.stop()


@pytest.fixture
def small(small_server, store):
    """The small-limit server, on a database emptied and given the example configs for this test."""
    return small_server


def chunks(body: bytes, size: int = 512):
    for start in range(0, len(body), size):
        yield body[start:start + size]


def over_limit_body(size: int = 3 * LIMIT) -> bytes:
    return ('{"queue": "simple", "data": "%s"}' % ("x" * size)).encode()


@pytest.mark.parametrize("size", [LIMIT, 1_000_000])
def test_body_over_the_limit_is_413_over_gunicorn(small, r, size):
    answer = requests.post(small.url + "/queue/add", data=over_limit_body(size),
                           headers={**ADMIN, "Content-Type": "application/json"}, timeout=5)
    assert answer.status_code == 413, answer.text
    assert str(LIMIT) in answer.json()["errors"][0]
    assert r.llen(keys.pending("simple.default")) == 0


def test_chunked_body_over_the_limit_is_413_over_gunicorn(small, r):
    answer = requests.post(small.url + "/queue/add", data=chunks(over_limit_body()),
                           headers={**ADMIN, "Content-Type": "application/json"}, timeout=5)
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in answer.request.headers
    assert answer.status_code == 413, answer.text
    assert str(LIMIT) in answer.json()["errors"][0]
    assert r.llen(keys.pending("simple.default")) == 0


def test_chunked_body_under_the_limit_is_enqueued_over_gunicorn(small, r):
    body = b'{"queue": "simple", "data": {"chunked": true}}'
    answer = requests.post(small.url + "/queue/add", data=chunks(body, 8),
                           headers={**ADMIN, "Content-Type": "application/json"}, timeout=5)
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["info"]["id"]
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task_id.encode()]


# --- bodies the server cannot read -------------------------------------------------------------------

#: Chunked bodies that break the chunked coding in a different place each.
BROKEN_CHUNKED = {
    "chunk size not hex": b"zz\r\n{}\r\n0\r\n\r\n",
    "negative chunk size": b"-1\r\n{}\r\n0\r\n\r\n",
    "chunk without its CRLF": b'13\r\n{"queue": "simple"}XY0\r\n\r\n',
    "malformed trailer": b'13\r\n{"queue": "simple"}\r\n0\r\nnot a header\r\n\r\n',
    "chunk shorter than its size": b'ff\r\n{"queue": "simple"}',
}


@pytest.mark.parametrize("body", BROKEN_CHUNKED.values(), ids=BROKEN_CHUNKED)
@pytest.mark.parametrize("path", ["/queue/add", "/api/cli/tasks", "/queue/add-batch", "/worker/register",
                                  "/api/cli/configs"])
def test_a_broken_chunked_body_is_a_json_400_over_gunicorn_and_writes_nothing(small, r, path, body):
    before = snapshot(r)
    status, content_type, answer = raw_post(small.port, path, "Transfer-Encoding: chunked\r\n", body)
    assert (status, content_type.split(";")[0]) == (400, "application/json"), answer
    errors = json.loads(answer)
    assert list(errors) == ["errors"] and errors["errors"], errors
    assert all(isinstance(m, str) and m for m in errors["errors"]), errors
    assert snapshot(r) == before

