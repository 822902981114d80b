"""Throughput and latency of runqy's hot paths, each against a ceiling measured in the same run.

Not a test (pytest collects only ``test_*.py``). ``bin/bench`` runs it:

    bin/bench                               # the settings of runqy/gunicorn_conf.py (about 5 minutes)
    bin/bench --seconds 2 --rounds 1        # a quick look (about a minute)
    bin/bench --workers 3                   # WEB_CONCURRENCY
    bin/bench --sweep 1,2,4                 # several worker counts, one summary at the end
    bin/bench --gunicorn-args=--reuse-port  # more gunicorn options, for every server
    bin/bench --profile                     # the falcon apps in-process, step by step and under cProfile
    bin/bench --costs                       # per process rates, Redis's work and memory per task (scaling.py)
    bin/bench --replica                     # enqueue without and with RUNQY_REDIS_WAIT_REPLICAS=1 (scaling.py)

One run starts a private redis-server (never 6379), runqy, and the bare app
(``tests/bench/bare_app.py``: falcon routes on runqy's paths that answer at once),
all on loopback, and measures with ``wrk`` (a Python asyncio client where wrk is
missing) the figures of the goals table it prints:

====================================================  ===============================================
figure                                                goal
====================================================  ===============================================
``POST /queue/add``, 32 keep-alive connections        >= 0.75 x the bare route's requests/s
``GET /queue/{id}`` of a completed task, 32 conns     >= 0.85 x the bare route's requests/s
``POST /queue/add-batch``, 100 jobs, 8 connections    tasks/s >= 10 x the bare POST route's requests/s
``POST /queue/add-batch``, 1000 jobs, 8 connections   tasks/s >= 15 x the bare POST route's requests/s
``POST /queue/add`` at a fixed rate of half the       p99 <= 10 ms, p99.9 <= 25 ms
32-connection rate, open loop
RSS of each runqy worker process after 100k tasks     <= 80 MB
``POST /queue/add``, 256 connections                  no errors, >= 0.9 x the 32-connection rate
====================================================  ===============================================

The bare route's ceiling is the best that the same gunicorn (the same settings
module, the same number of processes) does for the bare app under each worker
class runqy ships or that is commonly used: runqy's gevent class (the settings
module's), ``sync``, and ``gthread`` with 4 threads. At the start of the run the
three servers take turns, POST then GET, for min(3, --rounds) rounds; each class's
factor is the median over those rounds of its rate over gevent's, two numbers taken
seconds apart, so that load from other programs that comes and goes hardly moves
it. The gevent server then stays up and takes its turn between runqy's phases in
every round, so that a ratio compares numbers taken seconds apart. The ceiling is
that in-run gevent median times the largest factor: exactly the in-run figure when
gevent is the best class, else the best class's advantage carried over to the
conditions of the rounds. Every class's absolute figures are printed.

The rounds: runqy's phases and the bare ones alternate for --rounds rounds, and
values are the medians of the rounds: enqueue at 32 and at 256 connections, the
bare POST, the bare POST plus one Redis PING (the least a Redis-backed request
costs), GET of completed tasks, the bare GET, batches of 100 and of 1000 jobs, and
direct redis-py writes of the same records (shown beside the batches, no goal).
Before each GET phase the oldest tasks of the round's enqueue phase are finished as
runqy-worker finishes a success with redis_storage on (tests/worker_sim.py, the same
scripts): state ``completed``, a JSON ``result``, ``completed_at``, the id in
``asynq:{Q}:completed``. The GETs cycle over them.

The fixed-rate latency: after the rounds, an open-loop client (Python asyncio, a
process of its own) sends ``POST /queue/add`` on a fixed schedule, at half the
median 32-connection rate, over a pool of 32 keep-alive connections, whether or not
earlier requests have been answered. Each latency runs from the request's scheduled
send time, so a stall counts against every request due during it; closed-loop tools
(wrk, or hey with -q) wait for an answer before the next send and so hide stalls
(coordinated omission). How late the client itself was is printed beside it.

Memory: the run counts the tasks runqy answered as enqueued (warm-ups included);
when they are fewer than --enqueues, batches top them up. Then VmRSS (and the peak,
VmHWM) of each of runqy's gunicorn workers, the children of the master, is read from
/proc.

Also printed: the machine's cores and load average at the start and end of each
run, and the CPU each phase used (server, Redis, load generator, and everything else
on the machine): CPU per request hardly moves when other programs share the cores,
rates do. Every phase is bounded in time; every process the script starts is stopped
when it ends, on errors and on Ctrl-C too."""

import argparse
import concurrent.futures
import cProfile
import http.client
import io
import json
import math
import multiprocessing
import os
import pstats
import resource
import runpy
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from runqy import config, defaults, keys, protobuf, queue_names  # noqa: E402
from runqy.store import Store  # noqa: E402
from tests import worker_sim  # noqa: E402

API_KEY = "bench-admin-key"
GUNICORN_CONF = "python:runqy.gunicorn_conf"
RUNQY_APP, BARE_APP = "runqy.wsgi:app", "tests.bench.bare_app:app"
#: the worker classes the bare app is served with, as gunicorn options after the settings module's
BARE_CLASSES = {"gevent": (), "sync": ("-k", "sync"), "gthread": ("-k", "gthread", "--threads", "4")}
BARE_CLASS_TITLES = {"gevent": "runqy's gevent class", "sync": "sync", "gthread": "gthread, 4 threads"}
BATCH, BIG_BATCH = 100, 1000
MAX_GET_IDS = 10000
#: the issue's goals: ratios to the bare route (batches: tasks/s over its requests/s), latencies, memory
GOALS = {"enqueue": 0.75, "get": 0.85, "batch": 10.0, "big_batch": 15.0, "p99_ms": 10.0, "p999_ms": 25.0,
         "rss_mb": 80.0, "wide": 0.9}
#: seconds a request may take before a load generator counts it as an error
REQUEST_TIMEOUT = 5.0
ENQUEUE_BODY = json.dumps({"queue": "simple", "data": {"prompt": "hello world", "n": 1}})
BATCH_BODY = json.dumps({"queue": "simple", "jobs": [{"prompt": "hello world", "n": i} for i in range(BATCH)]})
BIG_BATCH_BODY = json.dumps({"queue": "simple",
                             "jobs": [{"prompt": "hello world", "n": i} for i in range(BIG_BATCH)]})
PAYLOAD = json.dumps({"prompt": "hello world", "n": 1}, separators=(",", ":")).encode()
#: what the simulated worker's handler returned for each task the GET phase reads
TASK_RESULT = {"text": "hello world, answered", "tokens": 4, "finish_reason": "stop"}
QUEUE = queue_names.full_queue_name("simple")


class Interrupted(Exception):
    """Raised in the main process on SIGTERM or SIGHUP, so that cleanup runs."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, redis.exceptions.RedisError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.05)


# --- processes ------------------------------------------------------------------------------


class Processes:
    """Every long-running process this script starts; ``stop_all`` ends each one by its id."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict | None = None) -> tuple[subprocess.Popen, Path]:
        log = self.workdir / (name + ".log")
        with open(log, "ab") as out:
            # a session of its own: Ctrl-C reaches only this script, which then stops it
            process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.running.append(process)
        return process, log

    def stop(self, process: subprocess.Popen, grace: float = 15.0) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self.running)):
            self.stop(process)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far, from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def connections_per_worker(workers: list[int], port: int) -> list[int]:
    """Established connections to ``port`` that each worker holds, busiest first (IPv4, from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            inodes.add("socket:[%s]" % fields[9])
    counts = []
    for pid in workers:
        held = 0
        try:
            for fd in os.scandir("/proc/%d/fd" % pid):
                try:
                    held += os.readlink(fd.path) in inodes
                except OSError:
                    continue
        except OSError:
            pass
        counts.append(held)
    return sorted(counts, reverse=True)


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot, from /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class RedisServer:
    """A private redis-server without persistence; ``options`` are more of its command-line options."""

    def __init__(self, procs: Processes, *options: str, name: str = "redis"):
        self.port = free_port()
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed (bin/test installs it)")
        self.process, self.log = procs.start(name, [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(procs.workdir), "--dbfilename", name + ".rdb", "--appendfilename", name + ".aof", *options])
        self.workdir = procs.workdir
        self.client = redis.Redis(port=self.port)
        wait_for(self.client.ping, 10, "redis-server on port %d" % self.port)
        self.url = "redis://127.0.0.1:%d/0" % self.port

    def reset(self) -> None:
        """An empty database with the example queue configs, as runqy's start-up leaves it."""
        self.client.flushdb()
        queues, failures = config.load_dir(ROOT / "config")
        if failures:
            raise RuntimeError("config/ does not load: %s" % failures)
        Store(self.client).configs.put(queues)


@dataclass
class ServerSettings:
    workers: int | None
    extra: tuple[str, ...] = ()  # more gunicorn options, for both servers

    def env(self) -> dict[str, str]:
        env = {}
        if self.workers:
            env["WEB_CONCURRENCY"] = str(self.workers)
        return env

    def resolved(self, base_env: dict[str, str]) -> dict[str, Any]:
        """What runqy/gunicorn_conf.py makes of this environment."""
        saved = dict(os.environ)
        os.environ.update(base_env)
        os.environ.update(self.env())
        try:
            conf = runpy.run_path(str(ROOT / "runqy" / "gunicorn_conf.py"))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        names = ("bind", "worker_class", "workers", "worker_connections", "keepalive", "timeout", "accesslog",
                 "loglevel")
        resolved = {name: conf.get(name) for name in names}
        if self.extra:
            resolved["command line"] = " ".join(self.extra)
        return resolved

    def label(self, base_env: dict[str, str]) -> str:
        conf = self.resolved(base_env)
        return "%d workers" % conf["workers"]


class Gunicorn:
    """``target`` served by gunicorn with runqy/gunicorn_conf.py, on a free loopback port.

    ``options`` go after the settings module and the run's own (``-k sync``, say), so they win."""

    def __init__(self, procs: Processes, target: str, env: dict[str, str], settings: ServerSettings,
                 options: tuple[str, ...] = (), name: str = ""):
        self.procs = procs
        self.port = free_port()
        self.env = {**os.environ, **env, **settings.env(), "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.workers = settings.resolved(self.env)["workers"]
        log_name = "gunicorn-" + (name or target.split(".")[-1].replace(":", "-"))
        self.process, self.log = procs.start(log_name, [
            sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, *settings.extra, *options, target], env=self.env)
        wait_for(self._booted, 30, "gunicorn (%s %s) to boot %d workers" % (target, name, self.workers))

    def _booted(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("gunicorn exited:\n" + self.log.read_text()[-3000:])
        if len(children(self.process.pid)) < self.workers:
            return False
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")

    def pids(self) -> list[int]:
        return [self.process.pid, *children(self.process.pid)]

    def memory(self) -> list[tuple[int, int]]:
        """(VmRSS, VmHWM) in KiB of each worker process (the master's children), from /proc."""
        found = []
        for pid in children(self.process.pid):
            status = dict(line.split(":", 1) for line in Path("/proc/%d/status" % pid).read_text().splitlines()
                          if ":" in line)
            found.append((int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])))
        return found

    def stop(self) -> None:
        self.procs.stop(self.process)


# --- load generation --------------------------------------------------------------------------


@dataclass
class Load:
    """One kind of request, sent for a fixed time over keep-alive connections."""

    method: str
    path: str = ""
    body: str = ""
    paths: list[str] = field(default_factory=list)  # cycled through instead of ``path``
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": "Bearer " + API_KEY})
    tasks: int = 0  # tasks each answered request enqueues, when sent to runqy

    def requests(self, host: str, port: int) -> list[bytes]:
        """The raw HTTP/1.1 requests, one per path, for the Python clients."""
        headers = "".join("%s: %s\r\n" % item for item in self.headers.items())
        if self.body:
            headers += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(self.body.encode())
        return [("%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n%s" % (self.method, path, host, port, headers, self.body)
                 ).encode() for path in (self.paths or [self.path])]


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int  # connect/read/write/timeout errors and non-2xx answers
    p50_ms: float
    p99_ms: float
    p999_ms: float = math.nan
    cpu: dict[str, float] = field(default_factory=dict)  # cores used, by process kind
    spread: list[int] = field(default_factory=list)  # client connections held by each worker, busiest first
    offered: float = 0.0  # requests/s sent on schedule (open loop); 0 for closed loop
    max_ms: float = math.nan
    late_p99_ms: float = math.nan  # open loop: how late the client started a request, p99

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def wrk_script(load: Load, workdir: Path) -> Path:
    lines = ["wrk.method = %s" % lua_string(load.method)]
    for name, value in {**load.headers, **({"Content-Type": "application/json"} if load.body else {})}.items():
        lines.append("wrk.headers[ %s ] = %s" % (lua_string(name), lua_string(value)))
    if load.body:
        lines.append("wrk.body = %s" % lua_string(load.body))
    if load.paths:
        paths = workdir / "paths.txt"
        paths.write_text("\n".join(load.paths) + "\n")
        lines += [
            "local paths = {}",
            "for line in io.lines(%s) do paths[#paths + 1] = line end" % lua_string(str(paths)),
            "local i = 0",
            "request = function()",
            "  i = i % #paths + 1",
            "  return wrk.format(nil, paths[i])",
            "end",
        ]
    lines += [
        "done = function(summary, latency, requests)",
        "  local e = summary.errors",
        "  io.write(string.format('BENCH {\"requests\": %d, \"duration_us\": %d, \"errors\": %d, '",
        "    .. '\"p50_us\": %d, \"p99_us\": %d, \"p999_us\": %d, \"max_us\": %d}\\n', summary.requests,",
        "    summary.duration, e.connect + e.read + e.write + e.status + e.timeout,",
        "    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))",
        "end",
    ]
    script = workdir / "load.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def run_wrk(url: str, load: Load, seconds: float, connections: int, threads: int, workdir: Path) -> Result:
    script = wrk_script(load, workdir)
    argv = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", "%ds" % max(1, round(seconds)),
            "--timeout", "%ds" % REQUEST_TIMEOUT, "--latency", "-s", str(script), url + (load.path or "/")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    report = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode or not report:
        raise RuntimeError("wrk failed (%d):\n%s%s" % (done.returncode, done.stdout, done.stderr))
    data = json.loads(report[-1][len("BENCH "):])
    return Result(data["requests"], data["duration_us"] / 1e6, data["errors"], data["p50_us"] / 1000,
                  data["p99_us"] / 1000, data["p999_us"] / 1000, max_ms=data["max_us"] / 1000)


def run_python_client(url: str, load: Load, seconds: float, connections: int, workdir: Path,
                      rate: float = 0.0) -> Result:
    """tests/bench/http_load.py: closed loop, or open loop at ``rate`` requests/s."""
    host, port = url.split("//")[1].split(":")
    spec = workdir / "client.json"
    spec.write_text(json.dumps({"host": host, "port": int(port), "seconds": seconds, "connections": connections,
                                "rate": rate, "timeout": REQUEST_TIMEOUT, "requests": [
                                    r.decode("latin-1") for r in load.requests(host, int(port))]}))
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("http_load.py")), str(spec)],
                          capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode:
        raise RuntimeError("load client failed:\n" + done.stderr)
    data = json.loads(done.stdout.splitlines()[-1])
    return Result(data["requests"], data["seconds"], data["errors"], data["p50_ms"], data["p99_ms"],
                  data["p999_ms"], offered=data.get("offered", 0.0), max_ms=data["max_ms"],
                  late_p99_ms=data.get("late_p99_ms", math.nan))


class Loader:
    """Runs a :class:`Load` with wrk, or with the Python client, and notes the CPU each side used."""

    def __init__(self, args: argparse.Namespace, workdir: Path, redis_server: RedisServer):
        self.args = args
        self.workdir = workdir
        self.redis_pid = redis_server.process.pid
        self.wrk = shutil.which("wrk") if not args.python_client else None
        self.name = "wrk %s, %d thread(s)" % (self.wrk, args.wrk_threads) if self.wrk else "python asyncio client"

    @staticmethod
    def settle(pids: list[int], timeout: float = 10.0) -> None:
        """Wait for the requests still in the server when the client stopped (up to one per connection)."""
        deadline = time.monotonic() + timeout
        used = cpu_seconds(pids)
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = cpu_seconds(pids)
            if now - used < 0.005:
                return
            used = now

    def run(self, server: Gunicorn, load: Load, seconds: float, connections: int = 0, rate: float = 0.0) -> Result:
        """``load`` for ``seconds`` over ``connections`` (default --connections); at ``rate`` requests/s
        on a fixed schedule (the open-loop Python client) when given, else as fast as answered."""
        connections = connections or self.args.connections
        url = "http://127.0.0.1:%d" % server.port
        pids = server.pids()
        before = (time.monotonic(), cpu_seconds(pids), cpu_seconds([self.redis_pid]),
                  resource.getrusage(resource.RUSAGE_CHILDREN), machine_busy())
        # keep-alive connections stay with the worker that accepted them: note how they were dealt out
        spread: list[int] = []
        sampler = threading.Timer(min(1.0, seconds / 2), lambda: spread.extend(
            connections_per_worker(pids[1:], server.port)))
        sampler.start()
        try:
            if rate or not self.wrk:
                result = run_python_client(url, load, seconds, connections, self.workdir, rate)
            else:
                result = run_wrk(url, load, seconds, connections, self.args.wrk_threads, self.workdir)
        finally:
            sampler.cancel()
        sampler.join()
        result.spread = spread
        self.settle(pids)
        wall = time.monotonic() - before[0]
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        result.cpu = {
            "server": (cpu_seconds(pids) - before[1]) / wall,
            "redis": (cpu_seconds([self.redis_pid]) - before[2]) / wall,
            "load": (usage.ru_utime + usage.ru_stime - before[3].ru_utime - before[3].ru_stime) / wall,
        }
        # whatever else ran on the machine meanwhile: other programs skew every number
        result.cpu["other"] = max(0.0, (machine_busy() - before[4]) / wall - sum(result.cpu.values()))
        return result


# --- direct Redis writes, beside the batches ------------------------------------------------


def enqueue_call(ids: list[str], now: int) -> list[Any]:
    """The key count, keys and arguments Store.tasks.enqueue gives the enqueue script for ``ids``
    (a task to run now, no unique lock, no idempotency key) with PAYLOAD."""
    head = [keys.queue_config(QUEUE), keys.pending(QUEUE), keys.held(QUEUE), keys.paused(QUEUE), keys.QUEUES,
            keys.scheduled(QUEUE)]
    args: list[Any] = [now, "", QUEUE, defaults.TASK_QUEUE_TTL, keys.TASK_QUEUE_FIELD, "", "", "",
                       defaults.IDEMPOTENCY_TTL]
    for task_id in ids:
        args += [task_id, protobuf.encode_head(QUEUE, PAYLOAD, task_id, QUEUE), ""]
    return [len(head) + 2 * len(ids), *head, *(keys.task(QUEUE, i) for i in ids),
            *(keys.task_queue(i) for i in ids), *args]


def _direct_writer(port: int, seconds: float, one_script_per_batch: bool, worker: int) -> int:
    """Tasks written by one redis-py client in ``seconds``: runqy's records, pipelines of BATCH tasks."""
    client = redis.Redis(port=port)
    run_id = os.urandom(4).hex()
    sha = client.script_load(Store(client).db.scripts["enqueue"].source)
    written, n = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ids = ["direct-%s-%d-%d" % (run_id, worker, n + k) for k in range(BATCH)]
        n += BATCH
        now = int(time.time())
        pipe = client.pipeline(transaction=False)
        for call in [ids] if one_script_per_batch else [[i] for i in ids]:
            pipe.evalsha(sha, *enqueue_call(call, now))
        replies = pipe.execute()
        if any(isinstance(r, list) and int(r[0]) < 0 for r in replies):
            raise RuntimeError("the enqueue script refused a task: %r" % replies[-1])
        written += BATCH
    return written


def direct_redis(redis_server: RedisServer, seconds: float, clients: int, one_script_per_batch: bool) -> Result:
    before = redis_server.client.llen(keys.pending(QUEUE))
    context = multiprocessing.get_context("fork")
    started = time.monotonic()
    cpu = (cpu_seconds([redis_server.process.pid]), resource.getrusage(resource.RUSAGE_CHILDREN), machine_busy())
    with concurrent.futures.ProcessPoolExecutor(clients, mp_context=context) as pool:
        counts = list(pool.map(_direct_writer, [redis_server.port] * clients, [seconds] * clients,
                               [one_script_per_batch] * clients, range(clients)))
    wall = time.monotonic() - started
    total = sum(counts)
    stored = redis_server.client.llen(keys.pending(QUEUE)) - before
    if stored < total:  # more: the last requests of the phase before, still in the server when it began
        raise RuntimeError("direct writes: %d tasks counted, %d pending in Redis" % (total, stored))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = Result(total, wall, 0, math.nan, math.nan, cpu={
        "redis": (cpu_seconds([redis_server.process.pid]) - cpu[0]) / wall,
        "load": (usage.ru_utime + usage.ru_stime - cpu[1].ru_utime - cpu[1].ru_stime) / wall})
    result.cpu["other"] = max(0.0, (machine_busy() - cpu[2]) / wall - sum(result.cpu.values()))
    return result


# --- completed tasks, as the worker leaves them ---------------------------------------------------


def complete_like_worker(client: redis.Redis, count: int, now: int) -> list[str]:
    """Finish up to ``count`` of the oldest pending tasks of QUEUE as runqy-worker finishes a success
    with redis_storage on: the steps and scripts of tests/worker_sim.py (dequeue from the tail,
    activate, then ``write_success``), pipelined: two round trips in all. Returns their ids."""
    ids = [i.decode() for i in client.rpop(keys.pending(QUEUE), count) or []]
    scripts = {"activate": client.register_script(worker_sim.ACTIVATE),
               "complete": client.register_script(worker_sim.COMPLETE)}
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(keys.task(QUEUE, task_id), "msg", "ttl_completed")
    read = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for task_id, (msg, ttl) in zip(ids, read):
        scripts["activate"](keys=[keys.active(QUEUE), keys.lease(QUEUE), keys.task(QUEUE, task_id)],
                            args=[task_id, now + worker_sim.LEASE_SECONDS], client=pipe)
        worker_sim.write_success(pipe, scripts, QUEUE, task_id, {b"msg": msg, b"ttl_completed": ttl}, TASK_RESULT,
                                 now)
        pipe.incr(keys.processed(QUEUE)).incr(keys.processed(QUEUE, worker_sim.utc_day(now)))
    pipe.execute()
    return ids


def check_completed(server: Gunicorn, task_id: str) -> None:
    """runqy answers ``GET /queue/{id}`` of a seeded task as completed, with the worker's result."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", "/queue/" + task_id, headers={"Authorization": "Bearer " + API_KEY})
        answer = connection.getresponse()
        info = json.loads(answer.read()).get("info", {})
    finally:
        connection.close()
    if (answer.status, info.get("state"), info.get("result")) != (200, "completed", TASK_RESULT) \
            or not info.get("completed_at"):
        raise RuntimeError("GET /queue/%s: %d %r, not a completed task with its result"
                           % (task_id, answer.status, info))


def completed_get(client: redis.Redis, server: Gunicorn) -> Load:
    """GETs that cycle over up to MAX_GET_IDS of the oldest pending tasks, finished as the worker
    finishes them (and one of them checked through ``server``)."""
    ids = complete_like_worker(client, MAX_GET_IDS, int(time.time()))
    if not ids:
        raise RuntimeError("no pending task to complete for the GET phase")
    check_completed(server, ids[-1])
    return Load("GET", paths=["/queue/" + i for i in ids])


# --- one run --------------------------------------------------------------------------------------


def ceiling_phase(route: str, worker_class: str) -> str:
    """The phase name of a bare route measured at the start under ``worker_class``."""
    return "%s@%s" % (route, worker_class)


@dataclass
class Run:
    """Every round of every phase of one gunicorn setting, and what was read around them."""

    settings: dict[str, Any]
    rounds: dict[str, list[Result]] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    load_average: list[tuple[float, float, float]] = field(default_factory=list)  # at the start and at the end
    seconds: float = 0.0
    enqueued: int = 0  # tasks runqy answered as enqueued, warm-ups included
    memory_at_boot: list[tuple[int, int]] = field(default_factory=list)  # (VmRSS, VmHWM) KiB of each worker
    memory: list[tuple[int, int]] = field(default_factory=list)  # the same, at the end

    def add(self, phase: str, result: Result) -> Result:
        self.rounds.setdefault(phase, []).append(result)
        return result

    def median(self, phase: str, value: Callable[[Result], float]) -> float:
        return statistics.median(value(r) for r in self.rounds[phase])

    def rate(self, phase: str) -> float:
        return self.median(phase, lambda r: r.rate)

    def errors(self, phase: str) -> int:
        return sum(r.errors for r in self.rounds[phase])

    def cpu_us(self, phase: str, units: int = 1) -> float:
        """CPU microseconds per unit of work, of everything this run started (server, Redis, client).

        Unlike a rate, this hardly moves when other programs share the cores."""
        return self.median(phase, lambda r: sum(v for k, v in r.cpu.items() if k != "other") / (r.rate * units) * 1e6
                           if r.rate else math.inf)

    def class_factor(self, route: str, worker_class: str) -> float:
        """``worker_class``'s figure over gevent's at the start: the median of the rounds' ratios,
        each of two numbers taken seconds apart."""
        pairs = zip(self.rounds[ceiling_phase(route, worker_class)], self.rounds[ceiling_phase(route, "gevent")])
        return statistics.median(a.rate / b.rate if b.rate else math.inf for a, b in pairs)

    def ceiling(self, route: str) -> tuple[float, str]:
        """The bare route's ceiling and the worker class it comes from (see the module docstring)."""
        factors = {name: self.class_factor(route, name) for name in BARE_CLASSES}
        best = max(factors, key=factors.__getitem__)
        return self.rate(route) * factors[best], best

    def rss_mb(self) -> float:
        """The largest VmRSS of runqy's workers at the end, in MB (10^6 bytes)."""
        return max(rss for rss, _ in self.memory) * 1024 / 1e6

    def direct_phases(self) -> list[str]:
        return [phase for phase in self.rounds if phase.startswith("direct")]

    def best_direct(self) -> str:
        return max(self.direct_phases(), key=self.rate)


def direct_variants(args: argparse.Namespace) -> list[tuple[str, int, bool]]:
    return [("direct, %d client%s, %s" % (clients, "s" if clients > 1 else "",
                                          "one EVALSHA per batch" if one else "EVALSHA per task"), clients, one)
            for clients in map(int, args.direct_clients.split(",")) for one in (False, True)]


def measure(procs: Processes, redis_server: RedisServer, loader: Loader, settings: ServerSettings,
            env: dict[str, str]) -> Run:
    """The bare ceilings of every worker class first, then rounds in which runqy's phases and the
    gevent bare server's alternate (the idle server costs nothing), then the fixed-rate latency
    and the memory of runqy's workers."""
    args = loader.args
    started = time.monotonic()
    run = Run(settings.resolved(env), load_average=[os.getloadavg()])
    seconds = max(1, round(args.seconds / args.rounds))
    client = redis_server.client
    pending = keys.pending(QUEUE)
    enqueue = Load("POST", "/queue/add", ENQUEUE_BODY, tasks=1)
    batch = Load("POST", "/queue/add-batch", BATCH_BODY, tasks=BATCH)
    big_batch = Load("POST", "/queue/add-batch", BIG_BATCH_BODY, tasks=BIG_BATCH)
    bare_post = Load("POST", "/queue/add", ENQUEUE_BODY)
    round_trip = Load("POST", "/redis-round-trip", ENQUEUE_BODY)
    bare_get = Load("GET", paths=["/queue/%08d-bare" % i for i in range(MAX_GET_IDS)])
    redis_server.reset()
    runqy = Gunicorn(procs, RUNQY_APP, env, settings)
    bare_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(loader.workdir, "bare-metrics"))}
    bare = Gunicorn(procs, BARE_APP, bare_env, settings, name="bare-gevent")
    run.memory_at_boot = runqy.memory()

    def on_runqy(load: Load, seconds: float, phase: str = "", **options: Any) -> Result:
        """``load`` sent to runqy; the tasks it enqueued are counted, and looked for in Redis."""
        before = client.llen(pending)
        result = loader.run(runqy, load, seconds, **options)
        answered = (result.requests - result.errors) * load.tasks
        run.enqueued += answered
        if load.tasks and client.llen(pending) - before < answered:
            raise RuntimeError("%d tasks answered as enqueued but %d more pending in Redis"
                               % (answered, client.llen(pending) - before))
        return run.add(phase, result) if phase else result

    try:
        bare_ceilings(run, loader, bare, seconds, {"post": bare_post, "get": bare_get},
                      lambda name, options: Gunicorn(procs, BARE_APP, bare_env, settings, options, "bare-" + name))
        if args.warmup > 0:
            on_runqy(enqueue, args.warmup)
            on_runqy(completed_get(client, runqy), args.warmup)
            on_runqy(batch, args.warmup, connections=args.batch_connections)
            on_runqy(big_batch, args.warmup, connections=args.big_batch_connections)
            loader.run(bare, round_trip, args.warmup)
        got = []
        for _ in range(args.rounds):
            redis_server.reset()
            on_runqy(enqueue, seconds, "enqueue")
            run.add("bare_post", loader.run(bare, bare_post, seconds))
            run.add("bare_redis", loader.run(bare, round_trip, seconds))
            on_runqy(enqueue, seconds, "wide", connections=args.wide_connections)
            get = completed_get(client, runqy)
            got.append(len(get.paths))
            on_runqy(get, seconds, "get")
            run.add("bare_get", loader.run(bare, bare_get, seconds))
            on_runqy(batch, seconds, "batch", connections=args.batch_connections)
            on_runqy(big_batch, seconds, "big_batch", connections=args.big_batch_connections)
            for name, clients, one_script in direct_variants(args):
                run.add(name, direct_redis(redis_server, seconds, clients, one_script))
        latency_seconds, rate = args.latency_seconds or 3 * args.seconds, run.rate("enqueue") / 2
        on_runqy(enqueue, latency_seconds, "fixed_rate", rate=rate)
        run.add("bare_fixed_rate", loader.run(bare, bare_post, latency_seconds, rate=rate))
        top_up(run, on_runqy, big_batch, args)
        run.memory = runqy.memory()
        run.checks += [
            "every answered enqueue and batch task was found pending in Redis",
            "GETs cycled over %s tasks finished as the worker finishes them (per round), each checked through "
            "runqy on one: state completed, its result, completed_at" % "/".join(map(str, got)),
            "runqy answered %d tasks as enqueued before its workers' memory was read (at least --enqueues %d)"
            % (run.enqueued, args.enqueues)]
    finally:
        runqy.stop()
        bare.stop()
    run.load_average.append(os.getloadavg())
    run.seconds = time.monotonic() - started
    return run


def bare_ceilings(run: Run, loader: Loader, gevent: Gunicorn, seconds: float, loads: dict[str, Load],
                  serve: Callable[[str, tuple[str, ...]], Gunicorn]) -> None:
    """The bare routes under every worker class, the servers taking turns (the idle ones cost nothing);
    ``gevent`` is the server of the rounds, ``serve`` starts one of another class."""
    servers = {"gevent": gevent}
    try:
        for name, options in BARE_CLASSES.items():
            if options:
                servers[name] = serve(name, options)
        for server in servers.values():
            for load in loads.values():
                if loader.args.warmup > 0:
                    loader.run(server, load, loader.args.warmup)
        for _ in range(min(3, loader.args.rounds)):
            for name, server in servers.items():
                for route, load in loads.items():
                    run.add(ceiling_phase("bare_" + route, name), loader.run(server, load, seconds))
    finally:
        for server in servers.values():
            if server is not gevent:
                server.stop()


def top_up(run: Run, on_runqy: Callable[..., Result], big_batch: Load, args: argparse.Namespace) -> None:
    """Batches of BIG_BATCH until runqy has enqueued --enqueues tasks in this run; two minutes at most."""
    deadline = time.monotonic() + 120
    added = run.enqueued
    while run.enqueued < args.enqueues and time.monotonic() < deadline:
        rate = run.rate("big_batch") * BIG_BATCH or 1000.0
        seconds = min(max(1.0, 1.2 * (args.enqueues - run.enqueued) / rate), deadline - time.monotonic())
        on_runqy(big_batch, seconds, connections=args.big_batch_connections)
    if run.enqueued > added:
        run.checks.append("%d tasks enqueued by batches after the measured phases, to reach --enqueues"
                          % (run.enqueued - added))


# --- report --------------------------------------------------------------------------------------


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def ratio_row(metric: str, value: str, ceiling: str, ratio: float, goal: float) -> list[str]:
    digits = "%.2f" if goal < 5 else "%.1f"
    return [metric, value, ceiling, digits % ratio, ">= " + digits % goal, verdict(ratio >= goal)]


def goal_rows(run: Run, args: argparse.Namespace) -> list[list[str]]:
    post, post_class = run.ceiling("bare_post")
    get, get_class = run.ceiling("bare_get")
    fixed, bare_fixed = run.rounds["fixed_rate"][-1], run.rounds["bare_fixed_rate"][-1]
    wide_errors = run.errors("wide")
    errors = sum(r.errors for results in run.rounds.values() for r in results)
    direct = run.rate(run.best_direct())
    bare = "%.0f req/s (%s)" % (post, post_class)
    return [
        ratio_row("POST /queue/add, %d conns" % args.connections, "%.0f req/s" % run.rate("enqueue"), bare,
                  run.rate("enqueue") / post, GOALS["enqueue"]),
        ratio_row("GET /queue/{id} (completed), %d conns" % args.connections, "%.0f req/s" % run.rate("get"),
                  "%.0f req/s (%s)" % (get, get_class), run.rate("get") / get, GOALS["get"]),
        ratio_row("POST /queue/add-batch x%d, %d conns" % (BATCH, args.batch_connections),
                  "%.0f tasks/s" % (run.rate("batch") * BATCH), bare, run.rate("batch") * BATCH / post, GOALS["batch"]),
        ratio_row("POST /queue/add-batch x%d, %d conns" % (BIG_BATCH, args.big_batch_connections),
                  "%.0f tasks/s" % (run.rate("big_batch") * BIG_BATCH), bare, run.rate("big_batch") * BIG_BATCH / post,
                  GOALS["big_batch"]),
        ["POST /queue/add at %.0f req/s, open loop: p50" % fixed.offered, "%.2f ms" % fixed.p50_ms,
         "%.2f ms (gevent)" % bare_fixed.p50_ms, "", "", ""],
        ["  p99", "%.2f ms" % fixed.p99_ms, "%.2f ms (gevent)" % bare_fixed.p99_ms, "", "<= %.0f ms" % GOALS["p99_ms"],
         verdict(fixed.p99_ms <= GOALS["p99_ms"] and fixed.errors == 0)],
        ["  p99.9", "%.2f ms" % fixed.p999_ms, "%.2f ms (gevent)" % bare_fixed.p999_ms, "",
         "<= %.0f ms" % GOALS["p999_ms"], verdict(fixed.p999_ms <= GOALS["p999_ms"] and fixed.errors == 0)],
        ["  answered, errors, max", "%.0f req/s, %d, %.1f ms" % (fixed.rate, fixed.errors, fixed.max_ms),
         "%.0f req/s, %d, %.1f ms" % (bare_fixed.rate, bare_fixed.errors, bare_fixed.max_ms), "", "", ""],
        ["RSS per worker after %dk tasks (largest of %d)" % (run.enqueued // 1000, len(run.memory)),
         "%.1f MB" % run.rss_mb(), "", "", "<= %.0f MB" % GOALS["rss_mb"],
         verdict(run.rss_mb() <= GOALS["rss_mb"] and run.enqueued >= args.enqueues)],
        ratio_row("POST /queue/add, %d conns" % args.wide_connections, "%.0f req/s" % run.rate("wide"),
                  "%.0f req/s (%d conns)" % (run.rate("enqueue"), args.connections),
                  run.rate("wide") / run.rate("enqueue"), GOALS["wide"]),
        ["  errors at %d conns" % args.wide_connections, str(wide_errors), "", "", "0", verdict(wide_errors == 0)],
        ["failed requests, all phases", str(errors), "", "", "0", verdict(errors == 0)],
        ["  (bare POST + one Redis PING, gevent)", "%.0f req/s" % run.rate("bare_redis"),
         "%.0f req/s (gevent)" % run.rate("bare_post"), "%.2f" % (run.rate("bare_redis") / run.rate("bare_post")),
         "", ""],
        ["  (batch x%d vs direct Redis writes)" % BATCH, "%.0f tasks/s" % (run.rate("batch") * BATCH),
         "%.0f tasks/s" % direct, "%.2f" % (run.rate("batch") * BATCH / direct), "", ""],
    ]


def ceiling_rows(run: Run) -> list[list[str]]:
    rows = []
    for name in BARE_CLASSES:
        rows.append([BARE_CLASS_TITLES[name] + ", at the start"]
                    + ["%.0f" % run.rate(ceiling_phase(route, name)) for route in ("bare_post", "bare_get")]
                    + ["%.2f" % run.class_factor(route, name) for route in ("bare_post", "bare_get")]
                    + [str(len(run.rounds[ceiling_phase("bare_post", name)]))])
    rows.append([BARE_CLASS_TITLES["gevent"] + ", in the rounds", "%.0f" % run.rate("bare_post"),
                 "%.0f" % run.rate("bare_get"), "", "", str(len(run.rounds["bare_post"]))])
    (post, post_class), (get, get_class) = run.ceiling("bare_post"), run.ceiling("bare_get")
    rows.append(["ceiling: in the rounds x best factor", "%.0f (%s)" % (post, post_class),
                 "%.0f (%s)" % (get, get_class), "", "", ""])
    return rows


TITLES = {"enqueue": "runqy POST /queue/add", "bare_post": "bare POST /queue/add",
          "bare_redis": "bare POST + one Redis PING", "get": "runqy GET /queue/{id} (completed)",
          "bare_get": "bare GET /queue/{id}", "batch": "runqy POST /queue/add-batch (x%d tasks)" % BATCH,
          "big_batch": "runqy POST /queue/add-batch (x%d tasks)" % BIG_BATCH,
          "wide": "runqy POST /queue/add, wide", "fixed_rate": "runqy POST /queue/add, fixed rate",
          "bare_fixed_rate": "bare POST /queue/add, fixed rate"}


def title(phase: str) -> str:
    route, _, worker_class = phase.partition("@")
    return TITLES.get(route, route) + (", %s at the start" % BARE_CLASS_TITLES[worker_class] if worker_class else "")


def serving(result: Result) -> str:
    """How many workers held client connections ("-" when not a server phase)."""
    return "%d/%d" % (sum(1 for n in result.spread if n), len(result.spread)) if result.spread else "-"


def ms(value: float) -> str:
    return "-" if math.isnan(value) else "%.2f" % value


def detail_rows(run: Run) -> list[list[str]]:
    rows = []
    for phase, results in run.rounds.items():
        rates = [r.rate for r in results]
        cpu = {k: statistics.mean(r.cpu.get(k, 0.0) for r in results) for k in ("server", "redis", "load", "other")}
        units = {"batch": BATCH, "big_batch": BIG_BATCH}.get(phase, 1)
        rows.append([title(phase), "%.0f" % statistics.median(rates),
                     "%.0f-%.0f" % (min(rates), max(rates)), str(sum(r.requests for r in results)),
                     str(run.errors(phase)),
                     ms(run.median(phase, lambda r: r.p50_ms)), ms(run.median(phase, lambda r: r.p99_ms)),
                     ms(run.median(phase, lambda r: r.p999_ms)), ms(max(r.p99_ms for r in results))]
                    + ["%.2f" % cpu[k] for k in ("server", "redis", "load", "other")]
                    + ["%.0f" % run.cpu_us(phase, units), " ".join(map(serving, results))])
    return rows


def cpu_ratios(run: Run) -> str:
    best = run.best_direct()
    return ("enqueue %.2f, get %.2f, batch %.2f (gevent bare route's or direct writes' CPU per request or task / "
            "runqy's)" % (run.cpu_us("bare_post") / run.cpu_us("enqueue"), run.cpu_us("bare_get") / run.cpu_us("get"),
                          run.cpu_us(best) / run.cpu_us("batch", BATCH)))


def report(run: Run, loader: Loader) -> bool:
    args = loader.args
    rows = goal_rows(run, args)
    fixed = run.rounds["fixed_rate"][-1]
    print("\ngunicorn (%s): %s" % (GUNICORN_CONF, ", ".join("%s=%s" % kv for kv in run.settings.items())))
    print("machine: %d cores; load average (1, 5, 15 min) %s at the start, %s at the end; this setting took %.0f s"
          % (os.cpu_count(), "/".join("%.2f" % v for v in run.load_average[0]),
             "/".join("%.2f" % v for v in run.load_average[-1]), run.seconds))
    print("load: %s; %d rounds of %ds per phase, phases alternating, values are medians over the rounds; the "
          "fixed-rate phase: %.0f s, python open-loop client, %d connections"
          % (loader.name, args.rounds, max(1, round(args.seconds / args.rounds)), fixed.seconds, args.connections))
    print("ceilings: the bare app (%s), best of the worker classes; batches compare tasks/s to its POST requests/s\n"
          % BARE_APP)
    print(table(rows, ["figure", "value", "ceiling", "ratio", "goal", "result"]))
    print("\nbare route, requests/s per worker class (%d workers each; medians of the rounds):\n"
          % run.settings["workers"])
    print(table(ceiling_rows(run), ["served by", "POST /queue/add", "GET /queue/{id}", "POST x gevent",
                                    "GET x gevent", "rounds"]))
    print("(x gevent: median over the start rounds of the class's rate / gevent's, taken seconds apart)\n")
    print(table(detail_rows(run), ["phase", "per s", "range", "count", "errors", "p50 ms", "p99 ms", "p99.9 ms",
                                   "worst p99", "cpu server", "cpu redis", "cpu load", "cpu other", "cpu us/req",
                                   "workers with conns"]))
    print("(cpu: cores busy during the phase, mean over rounds; 'other' is everything this run did not start;\n"
          " cpu us/req: CPU of server + redis + load per request, or per task for batches and direct writes;\n"
          " workers with conns: workers that held keep-alive connections, each round; a worker keeps what it\n"
          " accepts, one without any idles, and when a single worker holds them all the rate is one core's)")
    print("\ncpu-cost ratios, which other load on the machine hardly moves: " + cpu_ratios(run))
    print("memory of runqy's workers, VmRSS/VmHWM MB: at boot %s; at the end %s"
          % (", ".join("%.1f/%.1f" % (a * 1024 / 1e6, b * 1024 / 1e6) for a, b in run.memory_at_boot),
             ", ".join("%.1f/%.1f" % (a * 1024 / 1e6, b * 1024 / 1e6) for a, b in run.memory)))
    print("fixed rate: %.0f req/s offered; the client started requests up to %.2f ms late (p99), %.2f ms when "
          "sending to the bare app (the latency ceiling column: the bare app at the same schedule, no goal)"
          % (fixed.offered, fixed.late_p99_ms, run.rounds["bare_fixed_rate"][-1].late_p99_ms))
    print("\n".join("check: " + c for c in run.checks))
    return all(row[-1] != "FAIL" for row in rows)


def sweep_summary(runs: list[Run], args: argparse.Namespace) -> None:
    rows = []
    for run in runs:
        post, post_class = run.ceiling("bare_post")
        get, _ = run.ceiling("bare_get")
        fixed = run.rounds["fixed_rate"][-1]
        rows.append([str(run.settings["workers"]), "%.0f %s" % (post, post_class),
                     "%.0f" % run.rate("enqueue"), "%.2f" % (run.rate("enqueue") / post),
                     "%.0f" % run.rate("get"), "%.2f" % (run.rate("get") / get),
                     "%.0f" % (run.rate("batch") * BATCH), "%.1f" % (run.rate("batch") * BATCH / post),
                     "%.0f" % (run.rate("big_batch") * BIG_BATCH), "%.1f" % (run.rate("big_batch") * BIG_BATCH / post),
                     "%.0f: %.1f/%.1f" % (fixed.offered, fixed.p99_ms, fixed.p999_ms),
                     "%.2f, %d" % (run.rate("wide") / run.rate("enqueue"), run.errors("wide")),
                     "%.1f" % run.rss_mb(),
                     "%.2f" % statistics.mean(run.median(p, lambda r: r.cpu["other"]) for p in run.rounds)])
    print("\nsweep summary (medians over rounds; ratios to the bare POST or GET ceiling, best worker class;\n"
          "batches: tasks/s and tasks/s over the bare POST requests/s; 'other': cores other programs took)\n")
    print(table(rows, ["workers", "bare POST/s", "add/s", "ratio", "get/s", "ratio",
                       "batch x%d/s" % BATCH, "x bare", "batch x%d/s" % BIG_BATCH, "x bare",
                       "fixed req/s: p99/p99.9 ms", "%d conns ratio, errors" % args.wide_connections, "RSS MB",
                       "other"]))


# --- in-process profile ----------------------------------------------------------------------------


def timed(fn: Callable[[int], Any], n: int) -> tuple[float, float]:
    """Microseconds per call of ``fn(k)``: wall clock and this process's CPU (Redis's own time excluded)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(n):
        fn(k)
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def components(store: Store, ids: list[str]) -> list[tuple[str, Callable[[int], Any], int]]:
    """The steps of runqy's hot paths one by one (they use runqy internals: a rename breaks only this list)."""
    from runqy import validation
    from runqy.resources.tasks import dump_payload
    from runqy.store import NewTask

    body, batch_body = json.loads(ENQUEUE_BODY), json.loads(BATCH_BODY)
    task = store.tasks.get(ids[0])
    return [
        ("json.loads(enqueue body)", lambda k: json.loads(ENQUEUE_BODY), 1),
        ("validate(enqueue)", lambda k: validation.validate("enqueue", body), 1),
        ("store.tasks.enqueue(1 task), Redis included", lambda k: store.tasks.enqueue(QUEUE, [NewTask(PAYLOAD)]), 1),
        ("json.dumps(small response)", lambda k: json.dumps({"info": {"id": ids[0], "queue": QUEUE}}), 1),
        ("store.tasks.queue_of(id): HGET", lambda k: store.tasks.queue_of(ids[k % len(ids)]), 1),
        ("store.tasks.get(id, queue): pipeline", lambda k: store.tasks.get(ids[k % len(ids)], QUEUE), 1),
        ("store.tasks.get(id): both round trips", lambda k: store.tasks.get(ids[k % len(ids)]), 1),
        ("Task.to_dict() (dataclasses.asdict)", lambda k: task.to_dict(), 1),
        ("json.loads(batch body)", lambda k: json.loads(BATCH_BODY), 20),
        ("validate(enqueue_batch, 100 jobs)", lambda k: validation.validate("enqueue_batch", batch_body), 20),
        ("100 x dump_payload", lambda k: [dump_payload(j) for j in batch_body["jobs"]], 20),
        ("store.tasks.enqueue(100 tasks), Redis included",
         lambda k: store.tasks.enqueue(QUEUE, [NewTask(PAYLOAD) for _ in range(BATCH)]), 20),
    ]


def profile(redis_server: RedisServer, requests_: int) -> None:
    """The falcon apps called in-process (no HTTP server), step by step, then under cProfile."""
    # as under gunicorn: HTTP metrics go through prometheus-client's multiprocess files
    os.environ.update({"RUNQY_API_KEY": API_KEY, "REDIS_URL": redis_server.url,
                       "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(redis_server.workdir))})
    from runqy.app import create_app
    from runqy.config import Settings
    from runqy.store import connect
    from tests.bench import bare_app

    redis_server.reset()
    settings = Settings.from_env()
    apps = {"runqy": create_app(settings), "bare": bare_app.create_app()}

    def call(app: Callable, method: str, path: str, body: str = "") -> bytes:
        data = body.encode()
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "bench",
                   "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                   "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr, "CONTENT_LENGTH": str(len(data)),
                   "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": "Bearer " + API_KEY}
        status = []
        out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("2"):
            raise RuntimeError("%s %s answered %s: %s" % (method, path, status[0], out[:200]))
        return out

    ids = [json.loads(call(apps["runqy"], "POST", "/queue/add", ENQUEUE_BODY))["info"]["id"] for _ in range(1000)]
    cases = [("runqy", "POST", "/queue/add", ENQUEUE_BODY, 1),
             ("runqy", "GET", None, "", 1),
             ("runqy", "POST", "/queue/add-batch", BATCH_BODY, 20),
             ("bare", "POST", "/queue/add", ENQUEUE_BODY, 1),
             ("bare", "GET", None, "", 1)]

    def request(case: tuple) -> Callable[[int], bytes]:
        name, method, path, body, _ = case
        return lambda k: call(apps[name], method, path or "/queue/" + ids[k % len(ids)], body)

    rows = []
    for case in cases:
        wall, cpu = timed(request(case), max(1, requests_ // case[-1]))
        rows.append(["%s %s %s" % (case[0], case[1], case[2] or "/queue/{id}"), "%.1f" % wall, "%.1f" % cpu])
    print("whole requests, in-process, one thread, no HTTP server (us per request)\n")
    print(table(rows, ["request", "wall", "cpu"]))

    store = Store(connect(settings))
    rows = []
    for label, fn, divisor in components(store, ids):
        wall, cpu = timed(fn, max(1, requests_ // divisor))
        rows.append([label, "%.1f" % wall, "%.1f" % cpu])
    print("\nsteps (us per call)\n")
    print(table(rows, ["step", "wall", "cpu"]))

    for case in cases[:3]:
        profiler = cProfile.Profile()
        profiler.runcall(timed, request(case), max(1, requests_ // case[-1]))
        print("\n=== cProfile: %s %s %s ===" % (case[0], case[1], case[2] or "/queue/{id}"))
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)


# --- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time of each phase, all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="the phases alternate this many times (the worker "
                        "classes' ceilings at the start: min(3, rounds) times)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured load before each kind of phase")
    parser.add_argument("--connections", type=int, default=32, help="single enqueue and GET; the open-loop pool")
    parser.add_argument("--batch-connections", type=int, default=8, help="batches of %d jobs" % BATCH)
    parser.add_argument("--big-batch-connections", type=int, default=8, help="batches of %d jobs" % BIG_BATCH)
    parser.add_argument("--wide-connections", type=int, default=256, help="single enqueue, many connections")
    parser.add_argument("--latency-seconds", type=float, help="the fixed-rate phase (default: 3 x --seconds)")
    parser.add_argument("--enqueues", type=int, default=100_000, help="tasks runqy enqueues before its "
                        "workers' memory is read (batches top up what the phases did)")
    parser.add_argument("--workers", type=int, help="WEB_CONCURRENCY (default: the config file's)")
    parser.add_argument("--sweep", help="several worker counts, e.g. 1,2,4")
    parser.add_argument("--gunicorn-args", default="", help="more gunicorn options for every server, e.g. "
                        "--gunicorn-args=--reuse-port (a socket per worker: the kernel spreads the connections)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (the load takes CPU too)")
    parser.add_argument("--direct-clients", default="1,2", help="redis-py processes writing directly; each count "
                        "is a phase of its own")
    parser.add_argument("--python-client", action="store_true", help="use the Python client even if wrk exists")
    parser.add_argument("--profile", action="store_true", help="profile the apps in-process instead")
    parser.add_argument("--costs", action="store_true", help="instead: requests/s per process (--workers, "
                        "default 1), Redis's commands, bytes, CPU and memory per task, redis-benchmark "
                        "(tests/bench/scaling.py)")
    parser.add_argument("--replica", action="store_true", help="instead: enqueue without and with "
                        "RUNQY_REDIS_WAIT_REPLICAS=1 against a replica of the benchmark's Redis "
                        "(tests/bench/scaling.py)")
    parser.add_argument("--profile-requests", type=int, default=5000)
    return parser.parse_args(argv)


def install_wrk() -> None:
    """wrk comes from Debian; the Python client is the fallback where it cannot be installed."""
    if shutil.which("wrk") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    print("bench: installing wrk", file=sys.stderr)
    subprocess.run("apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)",
                   shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def metrics_dir(workdir: Path, name: str = "metrics") -> Path:
    """Where a server's HTTP metrics files go (else the config file makes a directory of its own).

    One per app: a master deletes the files it finds there when it starts."""
    path = workdir / name
    path.mkdir(exist_ok=True)
    return path


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted("signal %d" % signum)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.python_client and not args.profile:
        install_wrk()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    os.chdir(ROOT)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="runqy-bench-"))
    procs = Processes(workdir)
    try:
        redis_server = RedisServer(procs)
        if args.profile:
            profile(redis_server, args.profile_requests)
            return 0
        env = {"RUNQY_API_KEY": API_KEY, "REDIS_URL": redis_server.url, "RUNQY_CONFIG_DIR": str(ROOT / "config"),
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(workdir))}
        loader = Loader(args, workdir, redis_server)
        extra = tuple(shlex.split(args.gunicorn_args))
        if args.sweep:
            settings = [ServerSettings(int(count), extra) for count in args.sweep.split(",")]
        else:
            settings = [ServerSettings(args.workers, extra)]
        if args.costs or args.replica:
            from tests.bench import scaling

            for chosen, measured in ((args.costs, scaling.costs), (args.replica, scaling.replica_wait)):
                if chosen:
                    measured(procs, redis_server, loader, env, settings[0])
            return 0

        runs = []
        for setting in settings:
            print("bench: %s ..." % setting.label(env), file=sys.stderr)
            runs.append(measure(procs, redis_server, loader, setting, env))
        passed = [report(run, loader) for run in runs]
        if len(runs) > 1:
            sweep_summary(runs, args)
        print("\nthe whole run took %.0f s" % (time.monotonic() - started))
        return 0 if all(passed) else 1
    except (KeyboardInterrupt, Interrupted):
        print("bench: interrupted; stopping what it started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    from tests.bench import bench  # the module by its name, the one tests/bench/scaling.py imports

    sys.exit(bench.main(sys.argv[1:]))
