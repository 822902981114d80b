"""The store's plumbing (runqy/store/plumbing.py): Lua scripts called by SHA and loaded again
when Redis has forgotten them, refusals turned into errors, and pipelines whose errors are values."""

import pytest
import redis

from runqy import defaults, keys
from runqy.errors import VaultNotFound
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


def test_a_negative_return_code_becomes_the_error_its_refusal_makes_from_the_reply(pinned, r):
    refusals = {-1: lambda reply: VaultNotFound("prod (reply %r)" % reply)}
    args = [keys.VAULT_META, keys.vault_entry_field("K"), "{}"]

    with pytest.raises(VaultNotFound) as caught:
        pinned.db.script("vault_put_entry", [keys.vault("prod")], args, refusals)
    r.hset(keys.vault("prod"), keys.VAULT_META, "{}")
    created = pinned.db.script("vault_put_entry", [keys.vault("prod")], args, refusals)

    assert caught.value.name == "prod (reply -1)"
    assert created == 1


def test_a_pipeline_answers_redis_errors_as_values_and_runs_every_command(pinned, r):
    r.set("plain", "1")

    replies = pinned.db.pipeline(lambda pipe: (pipe.hget("plain", "f"), pipe.incr("plain"), pipe.get("plain")))

    assert isinstance(replies[0], redis.exceptions.ResponseError)
    assert replies[1:] == [2, b"2"]
    with pytest.raises(redis.exceptions.ResponseError):
        pinned.db.replies(lambda pipe: (pipe.incr("plain"), pipe.hget("plain", "f")))
    assert r.get("plain") == b"3"


def test_after_script_flush_only_the_script_calls_run_again(pinned, r):
    r.script_flush()

    def fill(pipe):
        pipe.incr("counter")
        pinned.db.queue_script(pipe, "vault_put_entry", [keys.vault("nosuch")], [keys.VAULT_META, "e:K", "{}"])

    assert pinned.db.pipeline(fill) == [1, -1]
    assert r.get("counter") == b"1"
