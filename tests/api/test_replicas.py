"""RUNQY_REDIS_WAIT_REPLICAS (runqy/app.py ``Replicated``, docs/product.md §8): a change is
answered 2xx only once that many replicas of the private Redis have it, else 503; reads and
registrations never wait."""

import dataclasses
import shutil

import falcon.testing
import pytest

from runqy import defaults, keys
from runqy.app import create_app
from tests.conftest import ADMIN, RedisServer, wait_for
from tests.helpers import add, errors_of, register


@pytest.fixture
def replica(redis_server):
    """A replica of the private Redis, in sync with it."""
    server = RedisServer("--replicaof", "127.0.0.1", str(redis_server.port))
    server.start()
    wait_for(lambda: server.client().info("replication")["master_link_status"] == "up", what="the replica in sync")
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


def waiting_client(settings, store, replicas: int) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(dataclasses.replace(settings, redis_wait_replicas=replicas),
                                                store=store))


def test_with_a_replica_in_sync_a_change_is_answered_once_the_replica_has_it(settings, store, replica):
    client = waiting_client(settings, store, 1)

    answer = add(client, {"queue": "simple", "data": {"n": 1}})

    assert answer.status_code == 200, answer.text
    task_id = answer.json["info"]["id"]
    # the replica had it when the answer came: no waiting here
    assert replica.client().exists(keys.task("simple.default", task_id))


def test_without_enough_replicas_a_change_is_503_saying_it_was_made_and_a_retry_is_safe(settings, store, r, replica):
    client = waiting_client(settings, store, 2)

    answer = add(client, {"queue": "simple", "data": {"n": 1}, "task_id": "t-1"})

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    (message,) = errors_of(answer)
    assert message.startswith("redis replicas: 1 of 2 confirmed the change within %g s" % defaults.REDIS_WAIT_TIMEOUT)
    assert "retry with the same task_id" in message
    assert r.exists(keys.task("simple.default", "t-1"))  # made on the primary all the same
    again = add(client, {"queue": "simple", "data": {"n": 1}, "task_id": "t-1"})
    assert again.status_code == 409  # the retry finds it: no duplicate


def test_reads_and_registrations_never_wait_for_replicas(settings, store, r):
    client = waiting_client(settings, store, 1)  # and there is no replica at all

    assert client.simulate_get("/api/cli/queues", headers=ADMIN).status_code == 200
    assert register(client, {"queue": "simple"}).status_code == 200
    assert not r.exists(keys.REPLICATED)


def test_a_refused_change_does_not_wait(settings, store, r):
    client = waiting_client(settings, store, 1)

    assert add(client, {"queue": "nope", "data": 1}).status_code == 404
    assert not r.exists(keys.REPLICATED)


def test_without_the_setting_nothing_waits_or_marks(client, r):
    assert add(client, {"queue": "simple", "data": 1}).status_code == 200
    assert not r.exists(keys.REPLICATED)
