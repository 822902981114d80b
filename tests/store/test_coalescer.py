"""Group commit (runqy.store.coalescer) against the private Redis, with real threads as the callers."""

import threading

import pytest
import redis

from runqy.store.coalescer import Coalescer


class CountingPool(redis.ConnectionPool):
    """A pool that counts the round trips: one connection taken per batch."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.taken = 0

    def get_connection(self, *args, **kwargs):
        self.taken += 1
        return super().get_connection(*args, **kwargs)


@pytest.fixture
def pool(r, redis_server) -> CountingPool:
    return CountingPool(host="127.0.0.1", port=redis_server.port, socket_timeout=5)


def test_a_lone_call_is_sent_at_once_and_gets_its_replies(pool, r):
    coalescer = Coalescer(pool)

    replies = coalescer.execute([("SET", "a", "1"), ("INCR", "a"), ("GET", "a")])

    assert replies == [b"OK", 2, b"2"] and pool.taken == 1


def test_an_error_reply_is_a_value_for_its_own_command_only(pool, r):
    coalescer = Coalescer(pool)
    r.set("text", "x")

    replies = coalescer.execute([("INCR", "text"), ("SET", "after", "ok"), ("EVALSHA", "0" * 40, 0)])

    assert isinstance(replies[0], redis.exceptions.ResponseError) and replies[1] == b"OK"
    assert isinstance(replies[2], redis.exceptions.ResponseError) and r.get("after") == b"ok"


def test_calls_in_flight_together_share_round_trips_and_each_gets_its_own_replies(pool, r):
    coalescer = Coalescer(pool)
    callers, results = 40, {}
    start = threading.Barrier(callers)

    def caller(n: int) -> None:
        start.wait()
        for round_ in range(25):
            results[n, round_] = coalescer.execute([("INCR", "counter"), ("SET", "k%d" % n, round_),
                                                    ("GET", "k%d" % n)])

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(results) == callers * 25
    assert all(replies[1:] == [b"OK", str(round_).encode()] for (n, round_), replies in results.items())
    assert sorted(replies[0] for replies in results.values()) == list(range(1, callers * 25 + 1))
    assert int(r.get("counter")) == callers * 25
    assert pool.taken < callers * 25  # fewer round trips than calls: they were grouped


def test_when_redis_does_not_answer_every_caller_of_the_batch_gets_the_error_and_the_next_call_works(
        pool, r, redis_server):
    coalescer = Coalescer(pool)
    coalescer.execute([("PING",)])
    redis_server.stop()
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            coalescer.execute([("PING",)])
    finally:
        redis_server.start()
    assert coalescer.execute([("PING",)]) == [b"PONG"]
