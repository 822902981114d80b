"""Queues in the store (runqy/store/queues.py) against a real Redis: which queues a name stands
for, their statistics read from the raw keys a worker leaves, and pausing, with the lists and
the flag read back raw after every call."""

import pytest

from runqy import keys
from runqy.errors import ConfigsLost, QueueNotFound, ValidationError
from runqy.store import NewTask, QueueStats
from tests.conftest import snapshot
from tests.helpers import NOW, TODAY, YESTERDAY, ids_in, seed_task

#: A queue's statistics, all zero.
EMPTY = {"pending": 0, "held": 0, "active": 0, "scheduled": 0, "retry": 0, "archived": 0, "completed": 0,
         "paused": False, "processed": 0, "failed": 0, "processed_today": 0, "failed_today": 0,
         "latency_seconds": 0}


def stats(name: str, priority: int | None, **given) -> QueueStats:
    """The statistics a queue should have: zeros except what is ``given``; configured when it has a priority."""
    return QueueStats(name, priority, **{**EMPTY, "configured": priority is not None, **given})


# --- which queues a name stands for ----------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("inference", {"inference.high": 10, "inference.low": 2}),
    ("inference.low", {"inference.low": 2}),
    ("simple", {"simple.default": 1}),
    ("simple.default", {"simple.default": 1}),
    ("legacy", {"legacy.jobs": None}),
    ("legacy.jobs", {"legacy.jobs": None}),
])
def test_resolve_answers_the_sub_queues_a_name_stands_for_with_their_priorities(pinned, r, name, expected):
    r.sadd(keys.QUEUES, "legacy.jobs")  # known to asynq only: no config

    assert pinned.queues.resolve(name) == expected


@pytest.mark.parametrize("name", ["nosuch", "nosuch.default", "inference.nosuch", "simple.high", "inference.default"])
def test_resolve_of_a_queue_nobody_knows_raises_queue_not_found(pinned, r, name):
    with pytest.raises(QueueNotFound) as caught:
        pinned.queues.resolve(name)

    assert caught.value.queue == name


def test_resolve_while_redis_has_lost_the_configs_raises_configs_lost(pinned, r):
    r.delete(keys.CONFIGS_YAML)

    with pytest.raises(ConfigsLost):
        pinned.queues.resolve("nosuch")


def test_one_answers_the_single_sub_queue_a_name_stands_for(pinned):
    assert (pinned.queues.one("simple"), pinned.queues.one("inference.low")) == ("simple.default", "inference.low")


def test_one_of_a_parent_with_several_sub_queues_raises_a_validation_error_naming_them(pinned):
    with pytest.raises(ValidationError) as caught:
        pinned.queues.one("inference")

    assert caught.value.messages == ["queue: inference has sub-queues inference.high, inference.low; name one of them"]


# --- statistics -------------------------------------------------------------------------------------


def test_stats_count_every_list_and_counter_a_worker_leaves(pinned, r):
    seed_task(r, "inference.high", "pending", pending_since=NOW - 42)
    for state, n in (("active", 2), ("scheduled", 1), ("retry", 3), ("archived", 2), ("completed", 4)):
        for _ in range(n):
            seed_task(r, "inference.high", state)
    r.lpush(keys.held("inference.high"), "h-1")
    r.set(keys.processed("inference.high"), 10)
    r.set(keys.failed("inference.high"), 4)
    r.set(keys.processed("inference.high", TODAY), 7)
    r.set(keys.failed("inference.high", TODAY), 2)
    r.set(keys.processed("inference.high", YESTERDAY), 99)
    r.set(keys.paused("inference.high"), NOW)
    before = snapshot(r)

    (high,) = pinned.queues.stats({"inference.high": 10})

    # held first: the oldest held id has no hash, so no age is known
    assert high == stats("inference.high", 10, pending=1, held=1, active=2, scheduled=1, retry=3, archived=2,
                         completed=4, paused=True, processed=10, failed=4, processed_today=7, failed_today=2)
    assert snapshot(r) == before


@pytest.mark.parametrize("fields, latency", [
    ({"pending_since": NOW - 42}, 42),
    ({"pending_since": (NOW - 3600) * 10**9 + 123456789}, 3600),  # asynq writes nanoseconds
    ({"pending_since": None, "enqueued_at": NOW - 7}, 7),
    ({"pending_since": NOW + 5}, 0),  # a clock ahead of the server's is no negative age
])
def test_latency_is_the_age_of_the_oldest_pending_task(pinned, r, fields, latency):
    seed_task(r, "inference.low", "pending", **fields)
    seed_task(r, "inference.low", "pending", pending_since=NOW - 1)

    (low,) = pinned.queues.stats({"inference.low": 2})

    assert (low.pending, low.latency_seconds) == (2, latency)


def test_latency_of_a_paused_queue_is_the_age_of_its_oldest_held_task(pinned, r):
    seed_task(r, "inference.low", "pending", pending_since=NOW - 50)
    pinned.queues.pause("inference.low", True)
    seed_task(r, "inference.low", "pending", pending_since=NOW - 5)  # forwarded onto pending meanwhile

    (low,) = pinned.queues.stats({"inference.low": 2})

    assert (low.pending, low.held, low.latency_seconds, low.paused) == (1, 1, 50, True)


def test_stats_of_queues_redis_knows_nothing_about_are_zero(pinned, r):
    assert pinned.queues.stats({"ghost.a": None, "ghost.b": 3}) == [stats("ghost.a", None), stats("ghost.b", 3)]
    assert r.keys("asynq:{ghost*") == []


def test_page_lists_configured_and_asynq_known_queues_by_name_with_the_total(pinned, r):
    for n in range(3):
        seed_task(r, "extra.q%d" % n, "pending", pending_since=NOW - n)
    names = ["extra.q0", "extra.q1", "extra.q2", "inference.high", "inference.low", "simple.default"]

    pages = [pinned.queues.page(4, offset) for offset in (0, 4, 8)]

    assert [total for total, _ in pages] == [6, 6, 6]
    assert [[q.name for q in page] for _, page in pages] == [names[:4], names[4:], []]
    assert pages[0][1][1] == stats("extra.q1", None, pending=1, latency_seconds=1)
    assert [q.priority for _, page in pages for q in page] == [None, None, None, 10, 2, 1]
    assert [q.configured for _, page in pages for q in page] == [False, False, False, True, True, True]


def test_a_queue_whose_config_is_deleted_is_listed_unconfigured_while_asynq_queues_names_it(pinned, r):
    task_id = pinned.tasks.enqueue("simple.default", [NewTask(b"{}")])[0].id  # enqueue adds it to asynq:queues
    pinned.configs.delete("simple")

    _, page = pinned.queues.page(10)

    assert [(q.name, q.priority, q.configured) for q in page] == [
        ("inference.high", 10, True), ("inference.low", 2, True), ("simple.default", None, False)]
    assert page[2].pending == 1
    assert ids_in(r, keys.pending("simple.default")) == [task_id]
    assert r.sismember(keys.QUEUES, "simple.default")


# --- pause and unpause ---------------------------------------------------------------------------------


def test_pause_moves_the_pending_ids_to_held_in_order_and_sets_the_flag_to_now(pinned, r):
    ids = [t.id for t in pinned.tasks.enqueue("inference.high", [NewTask(b"%d" % n) for n in range(4)])]
    other = [t.id for t in pinned.tasks.enqueue("inference.low", [NewTask(b"x")])]

    assert pinned.queues.pause("inference.high", True) == {"inference.high": 4}

    assert r.exists(keys.pending("inference.high")) == 0
    assert ids_in(r, keys.held("inference.high")) == ids
    assert r.get(keys.paused("inference.high")) == str(NOW).encode()
    assert {r.hget(keys.task("inference.high", i), "state") for i in ids} == {b"pending"}
    assert ids_in(r, keys.pending("inference.low")) == other
    assert r.exists(keys.paused("inference.low"), keys.held("inference.low")) == 0


def test_pausing_a_parent_pauses_every_sub_queue(pinned, r):
    high = [t.id for t in pinned.tasks.enqueue("inference.high", [NewTask(b"1"), NewTask(b"2")])]
    low = [t.id for t in pinned.tasks.enqueue("inference.low", [NewTask(b"3")])]

    assert pinned.queues.pause("inference", True) == {"inference.high": 2, "inference.low": 1}

    for queue, ids in (("inference.high", high), ("inference.low", low)):
        assert (r.exists(keys.pending(queue)), r.exists(keys.paused(queue))) == (0, 1)
        assert ids_in(r, keys.held(queue)) == ids
    assert r.exists(keys.paused("simple.default")) == 0


def test_unpause_puts_the_held_ids_back_ahead_of_those_pushed_meanwhile_and_deletes_the_flag(pinned, r):
    ids = [t.id for t in pinned.tasks.enqueue("simple.default", [NewTask(b"1"), NewTask(b"2")])]
    pinned.queues.pause("simple", True)
    held_later = [t.id for t in pinned.tasks.enqueue("simple.default", [NewTask(b"3")])]
    forwarded = seed_task(r, "simple.default", "pending")  # a worker's forwarder ignores the flag

    assert pinned.queues.pause("simple", False) == {"simple.default": 3}

    assert ids_in(r, keys.pending("simple.default")) == ids + held_later + [forwarded]
    assert r.exists(keys.held("simple.default"), keys.paused("simple.default")) == 0


def test_pause_and_unpause_twice_move_nothing_more(pinned, r):
    ids = [t.id for t in pinned.tasks.enqueue("simple.default", [NewTask(b"1"), NewTask(b"2")])]

    assert [pinned.queues.pause("simple", True) for _ in range(2)] == [{"simple.default": 2}, {"simple.default": 0}]
    assert ids_in(r, keys.held("simple.default")) == ids and r.exists(keys.paused("simple.default"))
    assert [pinned.queues.pause("simple", False) for _ in range(2)] == [{"simple.default": 2}, {"simple.default": 0}]
    assert ids_in(r, keys.pending("simple.default")) == ids
    assert r.exists(keys.held("simple.default"), keys.paused("simple.default")) == 0


def test_pausing_again_folds_the_ids_pushed_onto_pending_into_held(pinned, r):
    ids = [t.id for t in pinned.tasks.enqueue("simple.default", [NewTask(b"1"), NewTask(b"2")])]
    pinned.queues.pause("simple", True)
    forwarded = seed_task(r, "simple.default", "pending")

    assert pinned.queues.pause("simple", True) == {"simple.default": 1}

    assert r.exists(keys.pending("simple.default")) == 0
    assert sorted(ids_in(r, keys.held("simple.default"))) == sorted(ids + [forwarded])


@pytest.mark.parametrize("paused", [True, False])
def test_pause_of_an_unknown_queue_raises_queue_not_found_and_writes_nothing(pinned, r, paused):
    before = snapshot(r)

    with pytest.raises(QueueNotFound):
        pinned.queues.pause("nosuch", paused)

    assert snapshot(r) == before


# --- daily history ---------------------------------------------------------------------------------


def test_history_sums_the_daily_counters_of_every_queue_oldest_first(pinned, r):
    r.set(keys.processed("simple.default", TODAY), 5)
    r.set(keys.processed("inference.high", TODAY), 2)
    r.set(keys.failed("inference.low", TODAY), 1)
    r.set(keys.processed("simple.default", YESTERDAY), 7)
    r.set(keys.processed("simple.default", "2025-06-08"), 100)  # eight days ago: out of the window
    r.set(keys.processed("gone.default"), 9)  # a total, not a day

    history = pinned.queues.history(7)

    assert [day["date"] for day in history] == ["2025-06-%02d" % d for d in range(9, 16)]
    assert history[-1] == {"date": TODAY, "processed": 7, "failed": 1}
    assert history[-2] == {"date": YESTERDAY, "processed": 7, "failed": 0}
    assert all(day["processed"] == day["failed"] == 0 for day in history[:-2])
