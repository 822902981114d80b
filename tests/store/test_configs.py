"""Queue configs in the store (runqy/store/configs.py) against a real Redis: the configs hash and
the enqueue defaults of every sub-queue, read back raw."""

import json

import pytest

from runqy import defaults, keys, protobuf
from runqy.errors import NotFound
from runqy.store import NewTask, Store, connect


def test_put_configs_writes_the_configs_hash_and_one_config_hash_per_sub_queue(store, r, queues):
    stored = {k.decode(): json.loads(v) for k, v in r.hgetall(keys.CONFIGS).items()}
    assert stored == queues
    lifecycle = {b"result_ttl": str(defaults.RESULT_TTL).encode(), b"failed_ttl": str(defaults.FAILED_TTL).encode(),
                 b"pending_timeout": str(defaults.PENDING_TIMEOUT).encode()}
    assert r.hgetall(keys.queue_config("inference.high")) == {b"max_retry": b"3", b"timeout": b"300", **lifecycle}
    assert r.hgetall(keys.queue_config("simple.default")) == {
        b"max_retry": b"1", b"timeout": str(defaults.TIMEOUT).encode(), **lifecycle}
    assert r.exists(keys.queue_config("inference.low"))
    assert not r.exists(keys.queue_config("inference.default"))
    assert not r.exists(keys.queue_config("simple"))
    assert r.smembers(keys.QUEUES) == {b"inference.high", b"inference.low", b"simple.default"}


def test_get_and_list_configs_read_back_what_was_put(store, queues):
    assert store.configs.get("inference") == queues["inference"]
    assert store.configs.get("nope") is None
    assert store.configs.all() == [queues["inference"], queues["simple"]]


def test_new_config_version_drops_a_sub_queue_but_keeps_its_tasks(pinned, r, queues):
    pinned.tasks.enqueue("inference.low", [NewTask(b'{"keep":1}')])
    task_hash = r.hgetall(keys.task("inference.low", "id-1"))
    new = dict(queues["inference"], sub_queues=[{"name": "high", "priority": 10}, {"name": "bulk", "priority": 1}])
    pinned.configs.put({"inference": new})
    assert not r.exists(keys.queue_config("inference.low"))
    assert r.hget(keys.queue_config("inference.bulk"), "timeout") == b"300"
    assert r.exists(keys.queue_config("inference.high"))
    assert json.loads(r.hget(keys.CONFIGS, "inference"))["sub_queues"] == new["sub_queues"]
    assert r.exists(keys.queue_config("simple.default"))
    with pytest.raises(NotFound):
        pinned.tasks.enqueue("inference.low", [NewTask(b"{}")])
    assert r.hgetall(keys.task("inference.low", "id-1")) == task_hash
    assert r.lrange(keys.pending("inference.low"), 0, -1) == [b"id-1"]
    assert pinned.tasks.get("id-1").payload == {"keep": 1}


def test_changed_queue_defaults_apply_to_the_next_enqueue(pinned, r, queues):
    pinned.configs.put({"simple": dict(queues["simple"], max_retry=6, timeout=77, result_ttl=5)})
    (task,) = pinned.tasks.enqueue("simple.default", [NewTask(b"{}")])
    stored = r.hgetall(keys.task("simple.default", task.id))
    assert (stored[b"active_timeout"], stored[b"ttl_completed"]) == (b"77", b"5")
    assert protobuf.decode(stored[b"msg"]).retry == 6


def test_put_configs_with_nothing_writes_nothing(r, settings):
    Store(connect(settings)).configs.put({})
    assert r.keys("*") == []
