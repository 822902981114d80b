"""Queue configs in the store (runqy/store/configs.py) against a real Redis: the configs hash and
the enqueue defaults of every sub-queue, read back raw."""

import json

import pytest

from runqy import defaults, keys, protobuf
from runqy.config import digest, normalize_queue
from runqy.errors import ConfigExists, ConfigNotFound, ConfigsLost, QueueNotFound
from runqy.store import NewTask, Store, connect
from tests.conftest import snapshot

VISION = normalize_queue("vision", {
    "priority": 5, "max_retry": 2, "timeout": 120, "result_ttl": 3600, "failed_ttl": 7200,
    "sub_queues": [{"name": "fast", "priority": 8}, {"name": "bulk"}],
    "deployment": {"git_url": "https://example.com/vision.git", "startup_cmd": "python serve.py"}})


def stored_configs(r) -> dict:
    return {name.decode(): json.loads(raw) for name, raw in r.hgetall(keys.CONFIGS).items()}


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
    with pytest.raises(QueueNotFound):
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


def test_put_answers_the_names_it_created_and_writes_each_sub_queues_defaults(store, r, queues):
    assert store.configs.put({"vision": VISION, "simple": queues["simple"]}) == ["vision"]

    assert stored_configs(r)["vision"] == VISION
    for queue in ("vision.fast", "vision.bulk"):
        assert r.hgetall(keys.queue_config(queue)) == {b"max_retry": b"2", b"timeout": b"120", b"result_ttl": b"3600",
                                                       b"failed_ttl": b"7200", b"pending_timeout": b"0"}
        assert r.sismember(keys.QUEUES, queue)


def test_put_without_replace_of_an_existing_name_raises_config_exists_and_writes_nothing(store, r, queues):
    before = snapshot(r)

    with pytest.raises(ConfigExists) as caught:
        store.configs.put({"vision": VISION, "inference": queues["inference"], "simple": queues["simple"]},
                          replace=False)

    assert caught.value.names == ("inference", "simple")
    assert snapshot(r) == before


def test_put_yaml_records_the_digest_of_the_yaml_configs(store, r, queues):
    assert r.get(keys.CONFIGS_YAML) == digest(queues).encode()
    assert store.configs.yaml_digest() == digest(queues)

    store.configs.put({"vision": VISION})  # a config made through the API leaves the digest alone

    assert store.configs.yaml_digest() == digest(queues)


def test_yaml_digest_is_none_once_redis_has_lost_it(store, r):
    r.delete(keys.CONFIGS_YAML)

    assert store.configs.yaml_digest() is None


def test_unknown_queue_is_queue_not_found_unless_redis_has_lost_the_configs(store, r):
    found = store.configs.unknown_queue("nosuch.q")
    r.delete(keys.CONFIGS_YAML)
    lost = store.configs.unknown_queue("nosuch.q")

    assert (type(found), found.queue) == (QueueNotFound, "nosuch.q")
    assert type(lost) is ConfigsLost


@pytest.mark.parametrize("name", ["inference.high", "inference"])
def test_a_queue_whose_config_was_put_back_since_the_caller_looked_is_the_retryable_configs_lost(store, name):
    # the enqueue script found no config, then the keeper put the YAML configs back, then this
    assert type(store.configs.unknown_queue(name)) is ConfigsLost


def test_of_a_queue_answers_its_parents_config(store, queues):
    assert store.configs.of("inference.low") == store.configs.of("inference") == queues["inference"]


def test_of_a_queue_without_a_config_raises_queue_not_found_or_configs_lost(store, r):
    r.sadd(keys.QUEUES, "legacy.jobs")
    with pytest.raises(QueueNotFound):
        store.configs.of("legacy.jobs")
    r.delete(keys.CONFIGS_YAML)
    with pytest.raises(ConfigsLost):
        store.configs.of("legacy.jobs")


def test_delete_forgets_the_config_and_its_sub_queues_defaults_but_keeps_their_tasks(pinned, r, queues):
    pinned.configs.put({"vision": VISION})
    (task,) = pinned.tasks.enqueue("vision.fast", [NewTask(b"1")])
    task_hash = r.hgetall(keys.task("vision.fast", task.id))

    pinned.configs.delete("vision")

    assert stored_configs(r) == queues
    assert r.exists(keys.queue_config("vision.fast"), keys.queue_config("vision.bulk")) == 0
    assert r.exists(keys.queue_config("inference.high"), keys.queue_config("simple.default")) == 2
    assert r.hgetall(keys.task("vision.fast", task.id)) == task_hash
    assert r.lrange(keys.pending("vision.fast"), 0, -1) == [task.id.encode()]
    assert r.hget(keys.task_queue(task.id), "queue") == b"vision.fast"
    assert r.sismember(keys.QUEUES, "vision.fast")
    with pytest.raises(QueueNotFound):
        pinned.tasks.enqueue("vision.fast", [NewTask(b"2")])


def test_delete_of_an_unknown_config_raises_config_not_found_and_changes_nothing(store, r):
    before = snapshot(r)

    with pytest.raises(ConfigNotFound) as caught:
        store.configs.delete("nosuch")

    assert caught.value.name == "nosuch"
    assert snapshot(r) == before
