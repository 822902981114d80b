"""The store's plumbing (runqy/store/plumbing.py): Lua scripts called by SHA and loaded again
when Redis has forgotten them."""

from runqy import defaults, keys
from runqy.store import NewTask


def test_enqueue_after_script_flush_reloads_the_script(pinned, r):
    pinned.tasks.enqueue("simple.default", [NewTask(b"1")])
    sha = pinned.db.scripts["enqueue"].sha
    r.script_flush()
    assert r.script_exists(sha) == [False]
    pinned.tasks.enqueue("simple.default", [NewTask(b"2")])
    assert r.script_exists(sha) == [True]
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [b"id-2", b"id-1"]
    assert r.hget(keys.task("simple.default", "id-2"), "state") == b"pending"


def test_enqueue_with_a_client_id_after_script_flush_is_not_a_conflict_with_itself(pinned, r):
    r.script_flush()
    (task,) = pinned.tasks.enqueue("simple.default", [NewTask(b"1", task_id="once")])
    assert task.id == "once"
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [b"once"]
    assert r.hget(keys.task_queue("once"), "queue") == b"simple.default"
    assert defaults.TASK_QUEUE_TTL - 60 <= r.ttl(keys.task_queue("once")) <= defaults.TASK_QUEUE_TTL


def test_script_sha_matches_what_redis_computes(store, r):
    script = store.db.scripts["enqueue"]
    assert r.script_load(script.source) == script.sha
