"""Background loops (runqy.background): one per name and process, alive through failures,
stopped before a fork and started again after it."""

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from runqy import background, keys
from tests.conftest import free_port, serve, stop, wait_for

EVERY = 0.01


@pytest.fixture
def loops():
    yield
    background.stop_all()
    background._LOOPS.clear()


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "runqy-" + name and t.is_alive()]


def test_a_loop_steps_until_stopped(loops):
    steps = []
    loop = background.Loop("counting", EVERY, lambda: steps.append(1))
    loop.start()
    wait_for(lambda: len(steps) >= 3, timeout=5, what="three steps")
    loop.stop()
    assert not threads_named("counting")
    after = len(steps)
    time.sleep(10 * EVERY)
    assert len(steps) == after


def test_one_loop_of_a_name_runs_at_a_time(loops):
    first, second = [], []
    loop = background.Loop("once", EVERY, lambda: first.append(1))
    loop.start()
    loop.start()
    background.start_all()
    assert len(threads_named("once")) == 1
    background.Loop("once", EVERY, lambda: second.append(1)).start()  # a namesake takes over
    wait_for(lambda: not loop.running, timeout=5, what="the first loop to stop")
    assert len(threads_named("once")) == 1
    stopped_at = len(first)
    wait_for(lambda: len(second) >= 3, timeout=5, what="the namesake's steps")
    assert len(first) == stopped_at
    background.stop_all()
    assert not threads_named("once")


def test_a_step_that_raises_does_not_end_the_loop(loops):
    calls = []

    def step():
        calls.append(1)
        raise RuntimeError("boom")

    background.Loop("failing", EVERY, step).start()
    wait_for(lambda: len(calls) >= 3, timeout=5, what="steps after a failure")
    assert threads_named("failing")


def test_a_forked_process_starts_its_loops_at_its_first_request(loops):
    background.Loop("forked", EVERY, lambda: None).start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: threads did not come along
        try:
            before = len(threads_named("forked"))
            background.ensure_running()
            after = len(threads_named("forked"))
            os.write(write, b"%d %d" % (before, after))
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100)
    os.waitpid(pid, 0)
    assert answer == b"0 1"


@pytest.mark.e2e
def test_under_a_preloaded_gunicorn_the_workers_keep_the_configs_and_the_master_runs_no_loop(r, gunicorn_env):
    port = free_port()
    process = serve([sys.executable, "-m", "gunicorn", "-c", "python:runqy.gunicorn_conf", "--preload",
                     "--bind", "127.0.0.1:%d" % port, "--workers", "2", "runqy.wsgi:app"], gunicorn_env, port)
    try:
        assert len(list(Path("/proc/%d/task" % process.pid).iterdir())) == 1  # the master: one thread
        r.flushdb()  # as after a restart without persistence: a worker's keeper puts the configs back
        wait_for(lambda: r.exists(keys.CONFIGS_YAML) and r.hexists(keys.CONFIGS, "simple"), timeout=10,
                 what="the configs restored")
    finally:
        stop(process)
