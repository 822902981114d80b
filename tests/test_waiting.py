"""Waiting for a result: GET /queue/{id}?wait= (runqy/waiting.py, runqy/lua/finished.lua)."""

import socket
import threading
import time

import falcon.testing
import pytest
import requests

from runqy import defaults, keys
from runqy.app import create_app
from runqy.store import NewTask
from tests.conftest import ADMIN, ADMIN_KEY
from tests.worker_sim import COMPLETE, write_success

Q = "simple.default"


@pytest.fixture
def api(settings, store):
    return falcon.testing.TestClient(create_app(settings, store=store))


def complete(r, task_id: str, result: dict) -> None:
    """Finish the task as runqy-worker finishes a success."""
    scripts = {"complete": r.register_script(COMPLETE)}
    r.lrem(keys.pending(Q), 0, task_id)
    r.lpush(keys.active(Q), task_id)
    write_success(r, scripts, Q, task_id, r.hgetall(keys.task(Q, task_id)), result, int(time.time()))


def test_a_wait_answers_soon_after_the_task_completes(api, store, r):
    (task,) = store.tasks.enqueue(Q, [NewTask(b'{"n":1}')])
    done_at = []

    def finish() -> None:
        time.sleep(0.5)
        complete(r, task.id, {"ok": True})
        done_at.append(time.monotonic())

    threading.Thread(target=finish).start()
    res = api.simulate_get("/queue/" + task.id, params={"wait": "10"}, headers=ADMIN)
    answered = time.monotonic()

    assert res.status_code == 200
    assert (res.json["info"]["state"], res.json["info"]["result"]) == ("completed", {"ok": True})
    assert answered - done_at[0] < 0.1 + defaults.WAIT_POLL_EVERY


def test_a_wait_that_runs_out_answers_200_with_the_task_as_it_is(api, store):
    (task,) = store.tasks.enqueue(Q, [NewTask(b"{}")])
    started = time.monotonic()
    res = api.simulate_get("/queue/%s/simple" % task.id, params={"wait": "1"}, headers=ADMIN)
    assert 1.0 <= time.monotonic() - started < 2.0
    assert (res.status_code, res.json["info"]["state"]) == (200, "pending")


def test_a_finished_task_answers_at_once(api, store, r):
    (task,) = store.tasks.enqueue(Q, [NewTask(b"{}")])
    complete(r, task.id, [1])
    started = time.monotonic()
    res = api.simulate_get("/queue/" + task.id, params={"wait": "true"}, headers=ADMIN)
    assert time.monotonic() - started < 0.5
    assert res.json["info"]["result"] == [1]


def test_a_task_deleted_while_waited_for_ends_the_wait_with_404(api, store):
    (task,) = store.tasks.enqueue(Q, [NewTask(b"{}")])
    threading.Timer(0.3, store.tasks.delete, (Q, task.id)).start()
    started = time.monotonic()
    res = api.simulate_get("/queue/" + task.id, params={"wait": "10"}, headers=ADMIN)
    assert time.monotonic() - started < 1.0
    assert res.status_code == 404


@pytest.mark.parametrize("value", ["0", "61", "-1", "1.5", "yes", "false", ""])
def test_a_bad_wait_is_400(api, store, value):
    (task,) = store.tasks.enqueue(Q, [NewTask(b"{}")])
    res = api.simulate_get("/queue/" + task.id, query_string="wait=" + value, headers=ADMIN)
    assert res.status_code == 400, res.text
    assert res.json["errors"][0].startswith("wait: ")


@pytest.mark.e2e
def test_hundreds_of_waiters_cost_redis_one_call_per_process_per_tick_and_all_wake(server, r):
    task_id = requests.post(server.url + "/queue/add", json={"queue": "simple", "data": 1}, headers=ADMIN,
                            timeout=5).json()["info"]["id"]
    waiters = []
    request = ("GET /queue/%s?wait=30 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n"
               % (task_id, ADMIN_KEY)).encode()
    for _ in range(500):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        sock.sendall(request)
        waiters.append(sock)
    time.sleep(1.0)  # all parked

    r.config_resetstat()
    time.sleep(2.0)
    calls = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    # 500 waiters polled one by one every 100 ms would be 10,000 calls; one script call per process per
    # tick (2 processes, 20 ticks a second) plus the housekeeper's rounds is about a hundred
    assert calls < 300, calls

    # the server still answers other requests at once
    started = time.monotonic()
    for n in range(50):
        answer = requests.post(server.url + "/queue/add", json={"queue": "simple", "data": n}, headers=ADMIN,
                               timeout=5)
        assert answer.status_code == 200
    assert time.monotonic() - started < 5

    complete(r, task_id, {"done": 1})
    answers = []
    for sock in waiters:
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        answers.append(data)
    assert all(a.startswith(b"HTTP/1.1 200") and b'"state":"completed"' in a for a in answers)
