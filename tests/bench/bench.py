"""Throughput of runqy's hot paths, each against a ceiling measured in the same run.

Not a test (pytest collects only ``test_*.py``). ``bin/bench`` runs it:

    bin/bench                               # the settings of runqy/gunicorn_conf.py
    bin/bench --workers 3                   # WEB_CONCURRENCY
    bin/bench --sweep 1,2,4                 # several worker counts, one summary at the end
    bin/bench --gunicorn-args=--reuse-port  # more gunicorn options, for both servers
    bin/bench --profile                     # the falcon apps in-process, step by step and under cProfile

One run starts a private redis-server (never 6379) and measures, with ``wrk``
(a Python asyncio client when wrk is missing), at 32 keep-alive connections:

1. ``POST /queue/add``        requests/s, p50/p99    ceiling: a bare falcon POST route
   (also shown: the bare route plus one Redis PING, the least a Redis-backed request costs)
2. ``POST /queue/add-batch``  tasks/s (100 per batch) ceiling: redis-py pipelines of the same records
3. ``GET /queue/{id}``        requests/s, p50/p99    ceiling: a bare falcon GET route

The bare routes (``tests/bench/bare_app.py``) are served by gunicorn with the
same settings module and worker class as runqy (the bench puts the example
queue configs into its Redis; the bare app ignores them). Both servers run at
once and the phases alternate for ``--rounds`` rounds, so that a ratio compares
numbers taken seconds apart; values are the medians of the rounds. The CPU each
phase used (server, Redis, load generator, and everything else on the machine)
is reported too: CPU per request hardly moves when other programs share the
cores, rates do. Every process the script starts is stopped when it ends, on
errors and on Ctrl-C too."""

import argparse
import asyncio
import concurrent.futures
import cProfile
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

from runqy import config, keys, protobuf  # noqa: E402
from runqy.store import Store  # noqa: E402

API_KEY = "bench-admin-key"
GUNICORN_CONF = "python:runqy.gunicorn_conf"
BATCH = 100
MAX_GET_IDS = 10000
GOALS = {"enqueue": 0.65, "get": 0.75, "batch": 0.5, "p99_ms": 20.0}
ENQUEUE_BODY = json.dumps({"queue": "simple", "data": {"prompt": "hello world", "n": 1}})
BATCH_BODY = json.dumps({"queue": "simple", "jobs": [{"prompt": "hello world", "n": i} for i in range(BATCH)]})
PAYLOAD = json.dumps({"prompt": "hello world", "n": 1}, separators=(",", ":")).encode()
QUEUE = config.full_queue_name("simple")


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
    def __init__(self, procs: Processes):
        self.port = free_port()
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed (bin/test installs it)")
        self.process, self.log = procs.start("redis", [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(procs.workdir)])
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
        Store(self.client).put_configs(queues)


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
    """``target`` served by gunicorn with runqy/gunicorn_conf.py, on a free loopback port."""

    def __init__(self, procs: Processes, target: str, env: dict[str, str], settings: ServerSettings):
        self.procs = procs
        self.port = free_port()
        self.env = {**os.environ, **env, **settings.env(), "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.workers = settings.resolved(self.env)["workers"]
        self.process, self.log = procs.start("gunicorn-" + target.split(".")[-1].replace(":", "-"), [
            sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, *settings.extra, target], env=self.env)
        wait_for(self._booted, 30, "gunicorn (%s) to boot %d workers" % (target, self.workers))

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


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int  # connect/read/write/timeout errors and non-2xx answers
    p50_ms: float
    p99_ms: float
    cpu: dict[str, float] = field(default_factory=dict)  # cores used, by process kind
    spread: list[int] = field(default_factory=list)  # client connections held by each worker, busiest first

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
        "    .. '\"p50_us\": %d, \"p99_us\": %d}\\n', summary.requests, summary.duration,",
        "    e.connect + e.read + e.write + e.status + e.timeout,",
        "    latency:percentile(50), latency:percentile(99)))",
        "end",
    ]
    script = workdir / "load.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def run_wrk(url: str, load: Load, seconds: float, connections: int, threads: int, workdir: Path) -> Result:
    script = wrk_script(load, workdir)
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % max(1, round(seconds)),
            "--timeout", "5s", "--latency", "-s", str(script), url + (load.path or "/")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    report = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode or not report:
        raise RuntimeError("wrk failed (%d):\n%s%s" % (done.returncode, done.stdout, done.stderr))
    data = json.loads(report[-1][len("BENCH "):])
    return Result(data["requests"], data["duration_us"] / 1e6, data["errors"],
                  data["p50_us"] / 1000, data["p99_us"] / 1000)


async def _connection(host: str, port: int, requests_: list[bytes], deadline: float, offset: int,
                      latencies: list[float], counts: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(requests_[i % len(requests_)])
            i += 1
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status.split(b" ", 2)[1].startswith(b"2"):
                counts["errors"] += 1
    finally:
        writer.close()


async def _python_load(host: str, port: int, requests_: list[bytes], seconds: float, connections: int) -> dict:
    latencies: list[float] = []
    counts = {"errors": 0}
    started = time.perf_counter()
    deadline = started + seconds
    outcomes = await asyncio.gather(*(_connection(host, port, requests_, deadline, k * 7919, latencies, counts)
                                      for k in range(connections)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000) if latencies else (
        lambda q: 0.0)
    return {"requests": len(latencies), "seconds": elapsed, "p50_ms": pick(0.50), "p99_ms": pick(0.99),
            "errors": counts["errors"] + sum(isinstance(o, Exception) for o in outcomes)}


def python_client_main(spec_file: str) -> None:
    """The fallback load generator, run as a child process so that it has a GIL of its own."""
    spec = json.loads(Path(spec_file).read_text())
    requests_ = [r.encode("latin-1") for r in spec["requests"]]
    result = asyncio.run(_python_load(spec["host"], spec["port"], requests_, spec["seconds"], spec["connections"]))
    print(json.dumps(result))


def run_python_client(url: str, load: Load, seconds: float, connections: int, workdir: Path) -> Result:
    host, port = url.split("//")[1].split(":")
    headers = "".join("%s: %s\r\n" % item for item in load.headers.items())
    if load.body:
        headers += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(load.body.encode())
    requests_ = ["%s %s HTTP/1.1\r\nHost: %s:%s\r\n%s\r\n%s" % (load.method, path, host, port, headers, load.body)
                 for path in (load.paths or [load.path])]
    spec = workdir / "client.json"
    spec.write_text(json.dumps({"host": host, "port": int(port), "requests": requests_, "seconds": seconds,
                                "connections": connections}))
    done = subprocess.run([sys.executable, __file__, "--client", str(spec)], capture_output=True, text=True,
                          timeout=seconds + 60)
    if done.returncode:
        raise RuntimeError("load client failed:\n" + done.stderr)
    data = json.loads(done.stdout.splitlines()[-1])
    return Result(data["requests"], data["seconds"], data["errors"], data["p50_ms"], data["p99_ms"])


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

    def run(self, server: Gunicorn, load: Load, seconds: float) -> Result:
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
            if self.wrk:
                result = run_wrk(url, load, seconds, self.args.connections, self.args.wrk_threads, self.workdir)
            else:
                result = run_python_client(url, load, seconds, self.args.connections, self.workdir)
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


# --- direct Redis ceiling ---------------------------------------------------------------------


def _direct_writer(port: int, seconds: float, one_script_per_batch: bool, worker: int) -> int:
    """Tasks written by one redis-py client in ``seconds``: runqy's records, pipelines of BATCH tasks."""
    client = redis.Redis(port=port)
    run_id = os.urandom(4).hex()
    sha = client.script_load(Store(client).scripts["enqueue"].source)
    head = [keys.queue_config(QUEUE), keys.pending(QUEUE), keys.held(QUEUE), keys.paused(QUEUE), keys.QUEUES]

    def enqueue(pipe: redis.client.Pipeline, ids: list[str], now: int) -> None:
        """One call of the enqueue script, with the keys and arguments Store.enqueue gives it."""
        args: list[Any] = [now, "", QUEUE, 30 * 24 * 3600]
        for task_id in ids:
            args += [task_id, protobuf.encode_head(QUEUE, PAYLOAD, task_id, QUEUE), ""]
        pipe.evalsha(sha, len(head) + 2 * len(ids), *head, *(keys.task(QUEUE, i) for i in ids),
                     *(keys.task_queue(i) for i in ids), *args)

    written, n = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ids = ["direct-%s-%d-%d" % (run_id, worker, n + k) for k in range(BATCH)]
        n += BATCH
        now = int(time.time())
        pipe = client.pipeline(transaction=False)
        if one_script_per_batch:
            enqueue(pipe, ids, now)
        else:
            for task_id in ids:
                enqueue(pipe, [task_id], now)
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
    if stored != total:
        raise RuntimeError("direct writes: %d tasks counted, %d pending in Redis" % (total, stored))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = Result(total, wall, 0, float("nan"), float("nan"), {
        "redis": (cpu_seconds([redis_server.process.pid]) - cpu[0]) / wall,
        "load": (usage.ru_utime + usage.ru_stime - cpu[1].ru_utime - cpu[1].ru_stime) / wall})
    result.cpu["other"] = max(0.0, (machine_busy() - cpu[2]) / wall - sum(result.cpu.values()))
    return result


# --- one run --------------------------------------------------------------------------------------


@dataclass
class Run:
    """Every round of every phase of one gunicorn setting."""

    settings: dict[str, Any]
    rounds: dict[str, list[Result]] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)

    def add(self, phase: str, result: Result) -> Result:
        self.rounds.setdefault(phase, []).append(result)
        return result

    def median(self, phase: str, value: Callable[[Result], float]) -> float:
        return statistics.median(value(r) for r in self.rounds[phase])

    def rate(self, phase: str) -> float:
        return self.median(phase, lambda r: r.rate)

    def cpu_us(self, phase: str, units: int = 1) -> float:
        """CPU microseconds per unit of work, of everything this run started (server, Redis, client).

        Unlike a rate, this hardly moves when other programs share the cores."""
        return self.median(phase, lambda r: sum(v for k, v in r.cpu.items() if k != "other") / (r.rate * units) * 1e6
                           if r.rate else math.inf)

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
    """Both servers up at once (the idle one costs nothing); their phases alternate, round by round,
    so that a ratio compares numbers taken seconds apart."""
    args = loader.args
    run = Run(settings.resolved(env))
    redis_server.reset()
    runqy = Gunicorn(procs, "runqy.wsgi:app", env, settings)
    bare = Gunicorn(procs, "tests.bench.bare_app:app", env, settings)
    pending = keys.pending(QUEUE)
    enqueue = Load("POST", "/queue/add", ENQUEUE_BODY)
    batch = Load("POST", "/queue/add-batch", BATCH_BODY)
    round_trip = Load("POST", "/redis-round-trip", ENQUEUE_BODY)
    bare_get = Load("GET", paths=["/queue/%08d-bare" % i for i in range(MAX_GET_IDS)])

    def runqy_get() -> Load:
        ids = [i.decode() for i in redis_server.client.lrange(pending, 0, MAX_GET_IDS - 1)]
        return Load("GET", paths=["/queue/" + i for i in ids])

    try:
        if args.warmup > 0:
            for server, load in ((runqy, enqueue), (runqy, runqy_get()), (runqy, batch), (bare, enqueue),
                                 (bare, round_trip), (bare, bare_get)):
                loader.run(server, load, args.warmup)
        seconds = max(1, round(args.seconds / args.rounds))
        for _ in range(args.rounds):
            redis_server.reset()
            result = run.add("enqueue", loader.run(runqy, enqueue, seconds))
            stored = redis_server.client.llen(pending)
            if stored < result.requests - result.errors:
                raise RuntimeError("enqueue: %d answered but %d pending in Redis" % (result.requests, stored))
            run.add("bare_post", loader.run(bare, enqueue, seconds))
            run.add("bare_redis", loader.run(bare, round_trip, seconds))
            get = runqy_get()
            run.add("get", loader.run(runqy, get, seconds))
            run.add("bare_get", loader.run(bare, bare_get, seconds))
            before = redis_server.client.llen(pending)
            result = run.add("batch", loader.run(runqy, batch, seconds))
            stored = redis_server.client.llen(pending) - before
            if stored < (result.requests - result.errors) * BATCH:
                raise RuntimeError("batch: %d batches answered but %d tasks pending" % (result.requests, stored))
            for name, clients, one_script in direct_variants(args):
                run.add(name, direct_redis(redis_server, seconds, clients, one_script))
        run.checks.append("every answered enqueue and batch task was found pending in Redis; GETs cycled "
                          "over the %d newest ids of the round's enqueue phase" % len(get.paths))
    finally:
        runqy.stop()
        bare.stop()
    return run


# --- report --------------------------------------------------------------------------------------


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def ratio_row(metric: str, value: float, ceiling: float, goal: float, unit: str) -> list[str]:
    ratio = value / ceiling if ceiling else 0.0
    return [metric, "%.0f %s" % (value, unit), "%.0f %s" % (ceiling, unit), "%.2f" % ratio,
            ">= %.2f" % goal, "PASS" if ratio >= goal else "FAIL"]


def latency_row(metric: str, run: Run, phase: str, ceiling: str, goal: float | None = None) -> list[str]:
    pick = (lambda r: r.p50_ms) if metric.endswith("p50") else (lambda r: r.p99_ms)
    value = run.median(phase, pick)
    row = [metric, "%.2f ms" % value, "%.2f ms" % run.median(ceiling, pick), "", "", ""]
    if goal is not None:
        row[4:] = ["<= %.0f ms" % goal, "PASS" if value <= goal else "FAIL"]
    return row


def goal_rows(run: Run) -> list[list[str]]:
    errors = sum(r.errors for results in run.rounds.values() for r in results)
    return [
        ratio_row("POST /queue/add", run.rate("enqueue"), run.rate("bare_post"), GOALS["enqueue"], "req/s"),
        latency_row("POST /queue/add p50", run, "enqueue", "bare_post"),
        latency_row("POST /queue/add p99", run, "enqueue", "bare_post", GOALS["p99_ms"]),
        ["  (bare POST + one Redis PING)", "%.0f req/s" % run.rate("bare_redis"), "%.0f req/s" % run.rate("bare_post"),
         "%.2f" % (run.rate("bare_redis") / run.rate("bare_post")), "", ""],
        ratio_row("POST /queue/add-batch", run.rate("batch") * BATCH, run.rate(run.best_direct()), GOALS["batch"],
                  "tasks/s"),
        ratio_row("GET /queue/{id}", run.rate("get"), run.rate("bare_get"), GOALS["get"], "req/s"),
        latency_row("GET /queue/{id} p50", run, "get", "bare_get"),
        latency_row("GET /queue/{id} p99", run, "get", "bare_get"),
        ["failed requests", str(errors), "", "", "0", "PASS" if errors == 0 else "FAIL"],
    ]


TITLES = {"enqueue": "runqy POST /queue/add", "bare_post": "bare POST /queue/add",
          "bare_redis": "bare POST + one Redis PING", "get": "runqy GET /queue/{id}",
          "bare_get": "bare GET /queue/{id}", "batch": "runqy POST /queue/add-batch (x%d tasks)" % BATCH}


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
        rows.append([TITLES.get(phase, phase), "%.0f" % statistics.median(rates),
                     "%.0f-%.0f" % (min(rates), max(rates)), str(sum(r.requests for r in results)),
                     str(sum(r.errors for r in results)),
                     ms(run.median(phase, lambda r: r.p50_ms)), ms(run.median(phase, lambda r: r.p99_ms)),
                     ms(max(r.p99_ms for r in results))]
                    + ["%.2f" % cpu[k] for k in ("server", "redis", "load", "other")]
                    + ["%.0f" % run.cpu_us(phase), " ".join(map(serving, results))])
    return rows


def cpu_ratios(run: Run) -> str:
    best = run.best_direct()
    return ("enqueue %.2f, get %.2f, batch %.2f (ceiling's CPU per request or task / runqy's)"
            % (run.cpu_us("bare_post") / run.cpu_us("enqueue"), run.cpu_us("bare_get") / run.cpu_us("get"),
               run.cpu_us(best) / run.cpu_us("batch", BATCH)))


def report(run: Run, loader: Loader) -> bool:
    args = loader.args
    rows = goal_rows(run)
    print("\ngunicorn (%s): %s" % (GUNICORN_CONF, ", ".join("%s=%s" % kv for kv in run.settings.items())))
    print("load: %s, %d keep-alive connections; %d rounds of %ds per phase, phases alternating; %d cores"
          % (loader.name, args.connections, args.rounds, max(1, round(args.seconds / args.rounds)), os.cpu_count()))
    print("values are medians over the rounds; the batch ceiling is the best direct variant (%s)\n"
          % run.best_direct())
    print(table(rows, ["metric", "value", "ceiling", "ratio", "goal", "result"]))
    print()
    print(table(detail_rows(run), ["phase", "per s", "range", "count", "errors", "p50 ms", "p99 ms", "worst p99",
                                   "cpu server", "cpu redis", "cpu load", "cpu other", "cpu us/req",
                                   "workers with conns"]))
    print("(cpu: cores busy during the phase, mean over rounds; 'other' is everything this run did not start;\n"
          " cpu us/req: CPU of server + redis + load per request, or per task for direct writes;\n"
          " workers with conns: workers that held keep-alive connections, each round; a worker keeps what it\n"
          " accepts, one without any idles, and when a single worker holds them all the rate is one core's)")
    print("\ncpu-cost ratios, which other load on the machine hardly moves: " + cpu_ratios(run))
    print("\n".join("check: " + c for c in run.checks))
    return all(row[-1] != "FAIL" for row in rows)


def sweep_summary(runs: list[Run]) -> None:
    rows = []
    for run in runs:
        direct = run.rate(run.best_direct())
        rows.append([str(run.settings["workers"]),
                     "%.0f" % run.rate("enqueue"), "%.0f" % run.rate("bare_post"),
                     "%.2f" % (run.rate("enqueue") / run.rate("bare_post")),
                     "%.1f" % run.median("enqueue", lambda r: r.p99_ms),
                     "%.0f" % (run.rate("batch") * BATCH), "%.0f" % direct,
                     "%.2f" % (run.rate("batch") * BATCH / direct),
                     "%.0f" % run.rate("get"), "%.0f" % run.rate("bare_get"),
                     "%.2f" % (run.rate("get") / run.rate("bare_get")),
                     "%.1f" % run.median("get", lambda r: r.p99_ms),
                     "%.0f/%.0f" % (run.cpu_us("enqueue"), run.cpu_us("bare_post")),
                     "%.0f/%.0f" % (run.cpu_us("get"), run.cpu_us("bare_get")),
                     "%.2f" % statistics.mean(run.median(p, lambda r: r.cpu["other"]) for p in run.rounds)])
    print("\nsweep summary (medians over rounds; cpu us/req: runqy/bare; 'other': cores other programs took)\n")
    print(table(rows, ["workers", "add/s", "bare/s", "ratio", "add p99", "batch tasks/s", "direct", "ratio",
                       "get/s", "bare/s", "ratio", "get p99", "add cpu us", "get cpu us", "other"]))


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
    task = store.get_task(ids[0])
    return [
        ("json.loads(enqueue body)", lambda k: json.loads(ENQUEUE_BODY), 1),
        ("validate(enqueue)", lambda k: validation.validate("enqueue", body), 1),
        ("store.enqueue(1 task), Redis included", lambda k: store.enqueue(QUEUE, [NewTask(PAYLOAD)]), 1),
        ("json.dumps(small response)", lambda k: json.dumps({"info": {"id": ids[0], "queue": QUEUE}}), 1),
        ("store.task_queue(id): HGET", lambda k: store.task_queue(ids[k % len(ids)]), 1),
        ("store.get_task(id, queue): pipeline", lambda k: store.get_task(ids[k % len(ids)], QUEUE), 1),
        ("store.get_task(id): both round trips", lambda k: store.get_task(ids[k % len(ids)]), 1),
        ("Task.to_dict() (dataclasses.asdict)", lambda k: task.to_dict(), 1),
        ("json.loads(batch body)", lambda k: json.loads(BATCH_BODY), 20),
        ("validate(enqueue_batch, 100 jobs)", lambda k: validation.validate("enqueue_batch", batch_body), 20),
        ("100 x dump_payload", lambda k: [dump_payload(j) for j in batch_body["jobs"]], 20),
        ("store.enqueue(100 tasks), Redis included",
         lambda k: store.enqueue(QUEUE, [NewTask(PAYLOAD) for _ in range(BATCH)]), 20),
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time of each phase, all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="the phases alternate this many times")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured load before each phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, help="WEB_CONCURRENCY (default: the config file's)")
    parser.add_argument("--sweep", help="several worker counts, e.g. 1,2,4")
    parser.add_argument("--gunicorn-args", default="", help="more gunicorn options for both servers, e.g. "
                        "--gunicorn-args=--reuse-port (a socket per worker: the kernel spreads the connections)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (the load takes CPU too)")
    parser.add_argument("--direct-clients", default="1,2", help="redis-py processes for the ceiling; best wins")
    parser.add_argument("--python-client", action="store_true", help="use the Python client even if wrk exists")
    parser.add_argument("--profile", action="store_true", help="profile the apps in-process instead")
    parser.add_argument("--profile-requests", type=int, default=5000)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def install_wrk() -> None:
    """wrk comes from Debian; the Python client is the fallback where it cannot be installed."""
    if shutil.which("wrk") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    print("bench: installing wrk", file=sys.stderr)
    subprocess.run("apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)",
                   shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def metrics_dir(workdir: Path) -> Path:
    """Where the servers' HTTP metrics files go (else the config file makes a directory of its own)."""
    path = workdir / "metrics"
    path.mkdir(exist_ok=True)
    return path


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted("signal %d" % signum)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.client:
        python_client_main(args.client)
        return 0
    if not args.python_client and not args.profile:
        install_wrk()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    os.chdir(ROOT)
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

        runs = []
        for setting in settings:
            print("bench: %s ..." % setting.label(env), file=sys.stderr)
            runs.append(measure(procs, redis_server, loader, setting, env))
        passed = [report(run, loader) for run in runs]
        if len(runs) > 1:
            sweep_summary(runs)
        return 0 if all(passed) else 1
    except (KeyboardInterrupt, Interrupted):
        print("bench: interrupted; stopping what it started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
