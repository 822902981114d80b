"""The figures of the README's "Scaling": what one server process serves, what a task costs Redis,
and what waiting for a replica costs. ``bin/bench`` runs them with tests/bench/bench.py's
servers, loads and options:

    bin/bench --costs       # about 3.5 minutes; --workers defaults to 1 here, so rates are per process
    bin/bench --replica     # about 1.5 minutes; --workers as in the main run

--costs, on the benchmark's private Redis:

* requests/s of each hot route served by --workers processes, the phases alternating for
  --rounds rounds (medians), with the CPU the server and Redis used per request or task;
* Redis's work per task with its append-only file on (appendfsync everysec, as the README
  recommends): the commands it ran (INFO commandstats, where the commands of scripts count
  too), the bytes it read and wrote (INFO stats), its CPU (INFO cpu, every thread) and what the
  append-only file grew by, for single enqueues and batches of 1000 under load, status reads of
  completed tasks, and the worker's side of a task: tests/worker_sim.py's loop in WORKERS threads,
  one round trip per command as runqy-worker does, and the same writes pipelined
  (complete_like_worker), which is what they cost Redis without the round trips. What the idle
  servers' own loops do in as long, read over an idle window first, is taken off;
* Redis's memory per stored task (INFO memory used_memory): --enqueues pending tasks with a
  payload of about 100 bytes; the same tasks completed as the worker completes them, with a
  small result; and with their hashes deleted, which leaves what a queue with redis_storage
  false keeps of a finished task: its reverse key. Once with Redis's hash-max-listpack-value
  (64: a task's msg is longer, so its hash is a hash table) and once with LISTPACK_VALUE;
* redis-benchmark (when installed) on the same Redis: SET, and runqy's enqueue script with one
  task's keys and arguments (random ids), each alone and in pipelines of 16: what one Redis
  process does on this machine when it is the only thing working.

--replica starts a replica of the benchmark's Redis and waits until it is in sync, then serves
runqy twice on the primary, without and with RUNQY_REDIS_WAIT_REPLICAS=1. In every round the two
take turns at single enqueues and batches of 100; then each is sent single enqueues on a fixed
schedule (open loop) at half the rate the waiting server reached. At the end the replica must
hold every pending task the primary holds.
"""

import argparse
import concurrent.futures
import http.client
import json
import math
import shutil
import subprocess
import time
from typing import Any, Callable

import redis

from runqy import keys
from runqy.store import Store
from tests import worker_sim
from tests.bench import bench

#: a job of about 100 bytes of JSON, for the memory figures
MEMORY_JOB = {"prompt": "Summarise the attached ticket in one sentence, in English, for the on-call log.", "n": 1}
#: seconds of each window in which Redis's work is read
WINDOW = 4.0
#: simulated workers running at once, each on its own connection, and the tasks they finish in all
WORKERS, WORKER_TASKS = 8, 4000
#: Redis's hash-max-listpack-value (64 by default) raised above a task's msg: its hash stays a listpack
LISTPACK_VALUE = 1024
#: redis-benchmark: calls per run, by pipeline length
BENCHMARK_CALLS = {1: 200_000, 16: 1_000_000}
WAIT = "RUNQY_REDIS_WAIT_REPLICAS"


def hot_loads(args: argparse.Namespace) -> dict[str, tuple[bench.Load, int]]:
    """The enqueue routes' loads and the connections each is sent over."""
    return {"enqueue": (bench.Load("POST", "/queue/add", bench.ENQUEUE_BODY, tasks=1), args.connections),
            "batch": (bench.Load("POST", "/queue/add-batch", bench.BATCH_BODY, tasks=bench.BATCH),
                      args.batch_connections),
            "big_batch": (bench.Load("POST", "/queue/add-batch", bench.BIG_BATCH_BODY, tasks=bench.BIG_BATCH),
                          args.big_batch_connections)}


# --- what Redis did ----------------------------------------------------------------------------------


def redis_reading(client: redis.Redis) -> dict[str, Any]:
    """The counters of INFO that say what Redis did: calls by command, bytes, CPU, append-only file."""
    info = client.info("stats", "cpu", "commandstats", "persistence")
    return {"at": time.monotonic(), "cpu": info["used_cpu_sys"] + info["used_cpu_user"],
            "in": info["total_net_input_bytes"], "out": info["total_net_output_bytes"],
            "aof": info.get("aof_current_size", 0),
            "calls": {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in info.items()
                      if name.startswith("cmdstat_") and name != "cmdstat_info"}}


class RedisWork:
    """What Redis did between two readings, less what ``idle`` (the idle servers) does in as long."""

    FIGURES = ("cpu", "in", "out", "aof")

    def __init__(self, before: dict[str, Any], after: dict[str, Any], idle: "RedisWork | None" = None):
        self.seconds = after["at"] - before["at"]
        share = self.seconds / idle.seconds if idle else 0.0
        self.totals = {k: after[k] - before[k] - (idle.totals[k] * share if idle else 0) for k in self.FIGURES}
        names = set(after["calls"]) | set(idle.calls if idle else ())
        self.calls = {name: after["calls"].get(name, 0) - before["calls"].get(name, 0)
                      - (idle.calls.get(name, 0) * share if idle else 0) for name in names}

    def row(self, label: str, units: float) -> list[str]:
        """Per unit; a figure below zero (the idle servers' share, taken off, varies) shows as 0."""
        t = {k: max(0.0, v) / units for k, v in self.totals.items()}
        return [label, "%.0f" % units, "%.1f" % (sum(self.calls.values()) / units), "%.0f" % t["in"],
                "%.0f" % t["out"], "%.0f" % t["aof"], "%.1f" % (t["cpu"] * 1e6)]

    def commands(self, units: float) -> str:
        """The commands run per unit, most first; those below 0.05 per unit left out."""
        per = sorted(((n / units, name) for name, n in self.calls.items() if n / units >= 0.05), reverse=True)
        return ", ".join("%s %.2f" % (name, n) for n, name in per)


def redis_work(client: redis.Redis, action: Callable[[], Any], idle: RedisWork | None = None) -> tuple[RedisWork, Any]:
    """What Redis did while ``action`` ran, and what ``action`` returned."""
    before = redis_reading(client)
    done = action()
    return RedisWork(before, redis_reading(client), idle), done


def turn_on_aof(client: redis.Redis) -> None:
    """appendonly yes, appendfsync everysec, and no rewrite, so that the file grows by what is written."""
    client.config_set("auto-aof-rewrite-percentage", 0)
    client.config_set("appendfsync", "everysec")
    client.config_set("appendonly", "yes")

    def written() -> bool:
        state = client.info("persistence")
        return state["aof_enabled"] and not state["aof_rewrite_in_progress"] and not state["aof_rewrite_scheduled"]

    bench.wait_for(written, 60, "the append-only file")


# --- --costs -----------------------------------------------------------------------------------------


def serving_rates(run: bench.Run, runqy: bench.Gunicorn, redis_server: bench.RedisServer,
                  loader: bench.Loader) -> None:
    """The hot routes, phases alternating for --rounds rounds, on a Redis emptied every round."""
    args = loader.args
    seconds = max(1, round(args.seconds / args.rounds))
    client = redis_server.client
    loads = hot_loads(args)
    if args.warmup > 0:
        for load, connections in loads.values():
            loader.run(runqy, load, args.warmup, connections)
        loader.run(runqy, bench.completed_get(client, runqy), args.warmup)
    for _ in range(args.rounds):
        redis_server.reset()
        for phase in ("enqueue", "get", "batch", "big_batch"):
            if phase == "get":
                load, connections = bench.completed_get(client, runqy), args.connections
            else:
                load, connections = loads[phase]
            run.add(phase, loader.run(runqy, load, seconds, connections))


def rate_rows(run: bench.Run) -> list[list[str]]:
    rows = []
    for phase, route, units in (("enqueue", "POST /queue/add", 1), ("get", "GET /queue/{id}, completed", 1),
                                ("batch", "POST /queue/add-batch, %d jobs" % bench.BATCH, bench.BATCH),
                                ("big_batch", "POST /queue/add-batch, %d jobs" % bench.BIG_BATCH, bench.BIG_BATCH)):
        rate = run.rate(phase)
        cores = {k: run.median(phase, lambda r: r.cpu[k]) for k in ("server", "redis", "other")}
        rows.append([route, "%.0f" % rate, "%.0f" % (rate * units), "%.2f" % cores["server"],
                     "%.0f" % (cores["server"] / rate * 1e6), "%.1f" % (cores["redis"] / (rate * units) * 1e6),
                     "%.2f" % cores["other"], "%s / %s" % (bench.ms(run.median(phase, lambda r: r.p50_ms)),
                                                           bench.ms(run.median(phase, lambda r: r.p99_ms))),
                     str(run.errors(phase))])
    return rows


def work_per_task(runqy: bench.Gunicorn, redis_server: bench.RedisServer,
                  loader: bench.Loader) -> tuple[list[list[str]], list[str]]:
    """Redis's work per task or request, each read over a window (see the module docstring)."""
    client = redis_server.client
    pending = keys.pending(bench.QUEUE)
    loads = hot_loads(loader.args)
    redis_server.reset()
    turn_on_aof(client)
    idle, _ = redis_work(client, lambda: time.sleep(WINDOW))
    rows, commands = [], []

    def note(label: str, work: RedisWork, units: float) -> None:
        if units <= 0:
            raise RuntimeError("%s: nothing was done in the window" % label)
        rows.append(work.row(label, units))
        commands.append("%s: %s" % (label, work.commands(units)))

    for label, phase in (("single enqueue, per task", "enqueue"), ("batch of %d, per task" % bench.BIG_BATCH,
                                                                   "big_batch")):
        load, connections = loads[phase]
        before = client.llen(pending)
        work, _ = redis_work(client, lambda: loader.run(runqy, load, WINDOW, connections), idle)
        note(label, work, client.llen(pending) - before)
    get = bench.completed_get(client, runqy)
    work, result = redis_work(client, lambda: loader.run(runqy, get, WINDOW), idle)
    note("status read, per request", work, result.requests)

    registration = worker_sim.register("http://127.0.0.1:%d" % runqy.port, bench.API_KEY, "simple")
    workers = [worker_sim.SimWorker(registration, lambda payload: bench.TASK_RESULT) for _ in range(WORKERS)]

    def finish_tasks() -> int:
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            return sum(pool.map(lambda w: sum(w.run_once() is not None for _ in range(WORKER_TASKS // WORKERS)),
                                workers))

    try:
        work, done = redis_work(client, finish_tasks, idle)
    finally:
        for worker in workers:
            worker.stop()
    note("worker, a round trip per command, per task", work, done)
    work, ids = redis_work(client, lambda: bench.complete_like_worker(client, WORKER_TASKS, int(time.time())), idle)
    note("the worker's writes pipelined, per task", work, len(ids))
    rows.append(idle.row("the idle servers, per second", idle.seconds))
    commands.append("the idle servers, per second: " + idle.commands(idle.seconds))
    return rows, commands


def post(port: int, path: str, body: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=bench.REQUEST_TIMEOUT)
    try:
        connection.request("POST", path, body, {"Authorization": "Bearer " + bench.API_KEY,
                                                "Content-Type": "application/json"})
        answer = connection.getresponse()
        text = answer.read()
    finally:
        connection.close()
    if answer.status != 200:
        raise RuntimeError("POST %s answered %d: %r" % (path, answer.status, text[:300]))


def memory_per_task(runqy: bench.Gunicorn, redis_server: bench.RedisServer, count: int,
                    listpack_value: int) -> list[list[str]]:
    """used_memory per task: ``count`` of them pending, then completed, then with the hashes deleted,
    with Redis's hash-max-listpack-value at ``listpack_value``."""
    client = redis_server.client

    def used() -> int:
        return client.info("memory")["used_memory"]

    redis_server.reset()
    client.config_set("hash-max-listpack-value", listpack_value)
    start = used()
    body = json.dumps({"queue": "simple", "jobs": [MEMORY_JOB] * bench.BIG_BATCH})
    for _ in range(math.ceil(count / bench.BIG_BATCH)):
        post(runqy.port, "/queue/add-batch", body)
    stored = client.llen(keys.pending(bench.QUEUE))
    pending = used()
    ids: list[str] = []
    while len(ids) < stored:
        ids += bench.complete_like_worker(client, 10_000, int(time.time()))
    completed = used()
    for i in range(0, len(ids), 10_000):
        pipe = client.pipeline(transaction=False)
        for task_id in ids[i:i + 10_000]:
            pipe.delete(keys.task(bench.QUEUE, task_id)).zrem(keys.completed(bench.QUEUE), task_id)
        pipe.execute()
    reverse = used()
    payload, result = len(json.dumps(MEMORY_JOB, separators=(",", ":"))), len(json.dumps(bench.TASK_RESULT))
    rows = [["pending, payload of %d bytes" % payload, pending],
            ["completed, result of %d bytes" % result, completed],
            ["finished, hash deleted: its reverse key", reverse]]
    return [[label, str(listpack_value), str(stored), "%.0f" % ((memory - start) / stored)] for label, memory in rows]


def redis_benchmark(redis_server: bench.RedisServer) -> list[list[str]]:
    """redis-benchmark's SET, and the enqueue script with one task, on the same Redis."""
    binary = shutil.which("redis-benchmark")
    if not binary:
        return []
    client = redis_server.client
    sha = client.script_load(Store(client).db.scripts["enqueue"].source)
    # the arguments as bytes, the task's msg included; redis-benchmark puts a random number for every
    # __rand_int__ (same length: the msg stays well formed)
    script = [b"evalsha", sha.encode(), *(a if isinstance(a, bytes) else str(a).encode()
                                          for a in bench.enqueue_call(["bench-__rand_int__"], int(time.time())))]
    rows = []
    for label, command, counted in (("SET", ["-t", "set"], "set"),
                                    ("runqy's enqueue script, one task", script, "evalsha")):
        for pipeline, calls in BENCHMARK_CALLS.items():
            argv = [binary, "-p", str(redis_server.port), "-c", "50", "-n", str(calls), "-r", "100000000",
                    "-P", str(pipeline), "--csv", *command]
            work, done = redis_work(client, lambda: subprocess.run(argv, capture_output=True, text=True,
                                                                   errors="replace", timeout=300))
            if done.returncode:
                raise RuntimeError("redis-benchmark failed:\n" + done.stderr)
            # "test","rps",... and six latencies; a custom command's test name holds commas
            rate = done.stdout.strip().splitlines()[-1].split(",")[-7].strip('"')
            rows.append([label + (", pipelines of %d" % pipeline if pipeline > 1 else ""), "%.0f" % float(rate),
                         "%.2f" % (work.totals["cpu"] / work.seconds),
                         "%.2f" % (work.totals["cpu"] / work.calls[counted] * 1e6)])
        redis_server.reset()
    return rows


def costs(procs: bench.Processes, redis_server: bench.RedisServer, loader: bench.Loader, env: dict[str, str],
          settings: bench.ServerSettings) -> None:
    args = loader.args
    started = time.monotonic()
    settings = bench.ServerSettings(settings.workers or 1, settings.extra)
    redis_server.reset()
    runqy = bench.Gunicorn(procs, bench.RUNQY_APP, env, settings)
    run = bench.Run(settings.resolved(env))
    try:
        serving_rates(run, runqy, redis_server, loader)
        work, commands = work_per_task(runqy, redis_server, loader)
        memory = [row for value in (64, LISTPACK_VALUE) for row in memory_per_task(runqy, redis_server,
                                                                                      args.enqueues, value)]
        anchors = redis_benchmark(redis_server)
    finally:
        runqy.stop()
    print("\nrunqy served by %d worker process(es); %s; %d rounds of %ds per phase, medians\n"
          % (run.settings["workers"], loader.name, args.rounds, max(1, round(args.seconds / args.rounds))))
    print(bench.table(rate_rows(run), ["route", "requests/s", "tasks/s", "server cores", "server cpu us/req",
                                       "redis cpu us/task", "other cores", "p50 / p99 ms", "errors"]))
    print("(other cores: what this run did not start used meanwhile)")
    print("\nRedis's work (append-only file on, everysec; what the idle servers do in as long taken off):\n")
    print(bench.table(work, ["what", "units", "commands", "bytes in", "bytes out", "aof bytes", "redis cpu us"]))
    print("\ncommands run, per unit (those of scripts included):\n" + "\n".join("  " + c for c in commands))
    print("\nRedis memory per task (used_memory):\n")
    print(bench.table(memory, ["tasks", "hash-max-listpack-value", "count", "bytes per task"]))
    if anchors:
        print("\nredis-benchmark on the same Redis (50 connections, append-only file on):\n")
        print(bench.table(anchors, ["command", "calls/s", "redis cores", "redis cpu us/call"]))
    print("\n--costs took %.0f s" % (time.monotonic() - started))


# --- --replica ----------------------------------------------------------------------------------------


def in_sync(primary: redis.Redis, replica: redis.Redis) -> bool:
    """The replica is connected and has everything the primary wrote."""
    ours, theirs = primary.info("replication"), replica.info("replication")
    return (theirs.get("master_link_status") == "up" and ours.get("connected_slaves") == 1
            and ours["slave0"]["offset"] == ours["master_repl_offset"])


def replica_wait(procs: bench.Processes, redis_server: bench.RedisServer, loader: bench.Loader, env: dict[str, str],
                 settings: bench.ServerSettings) -> None:
    args = loader.args
    started = time.monotonic()
    seconds = max(1, round(args.seconds / args.rounds))
    replica = bench.RedisServer(procs, "--replicaof", "127.0.0.1", str(redis_server.port), name="redis-replica")
    redis_server.reset()
    bench.wait_for(lambda: in_sync(redis_server.client, replica.client), 60, "the replica to be in sync")
    waiting_env = {**env, WAIT: "1",
                   "PROMETHEUS_MULTIPROC_DIR": str(bench.metrics_dir(procs.workdir, "waiting-metrics"))}
    servers = {"": bench.Gunicorn(procs, bench.RUNQY_APP, env, settings),
               "_wait": bench.Gunicorn(procs, bench.RUNQY_APP, waiting_env, settings, name="runqy-waiting")}
    loads = {phase: load for phase, load in hot_loads(args).items() if phase != "big_batch"}
    run = bench.Run(settings.resolved(env))
    try:
        for server in servers.values():
            for load, connections in loads.values():
                loader.run(server, load, args.warmup, connections)
        for _ in range(args.rounds):
            for phase, (load, connections) in loads.items():
                for suffix, server in servers.items():
                    run.add(phase + suffix, loader.run(server, load, seconds, connections))
        rate = run.rate("enqueue_wait") / 2
        for suffix, server in servers.items():
            run.add("fixed" + suffix, loader.run(server, loads["enqueue"][0], args.latency_seconds or args.seconds,
                                                 rate=rate))
        bench.wait_for(lambda: in_sync(redis_server.client, replica.client), 30, "the replica to catch up")
        held = (redis_server.client.llen(keys.pending(bench.QUEUE)), replica.client.llen(keys.pending(bench.QUEUE)))
        if held[0] != held[1]:
            raise RuntimeError("the primary holds %d pending tasks, the replica %d" % held)
    finally:
        for server in servers.values():
            server.stop()
    print("\n%s=1 with one replica on the same machine; %d worker processes; %s; %d rounds of %ds per phase, "
          "medians; the replica held all %d pending tasks at the end\n"
          % (WAIT, run.settings["workers"], loader.name, args.rounds, seconds, held[1]))
    print(bench.table(replica_rows(run, args, rate),
                      ["figure", "without the wait", "with %s=1" % WAIT, "with / without"]))
    print("\n--replica took %.0f s" % (time.monotonic() - started))


def replica_rows(run: bench.Run, args: argparse.Namespace, rate: float) -> list[list[str]]:
    """Each figure without and with the wait, side by side."""
    def both(value: Callable[[str], float], digits: str = "%.0f") -> list[str]:
        a, b = value(""), value("_wait")
        return [digits % a, digits % b, "%.2f" % (b / a) if a else ""]

    def latency(phase: str) -> list[str]:
        return ["%s / %s" % (bench.ms(run.median(phase + s, lambda r: r.p50_ms)),
                             bench.ms(run.median(phase + s, lambda r: r.p99_ms))) for s in ("", "_wait")] + [""]

    def fixed(suffix: str) -> str:
        r = run.rounds["fixed" + suffix][-1]
        return "%s / %s / %s" % (bench.ms(r.p50_ms), bench.ms(r.p99_ms), bench.ms(r.p999_ms))

    errors = [str(sum(run.errors(p + s) for p in ("enqueue", "batch", "fixed"))) for s in ("", "_wait")]
    return [
        ["POST /queue/add, %d conns: req/s" % args.connections, *both(lambda s: run.rate("enqueue" + s))],
        ["  p50 / p99 ms", *latency("enqueue")],
        ["  cpu us per request (server + redis + load)", *both(lambda s: run.cpu_us("enqueue" + s))],
        ["POST /queue/add-batch x%d, %d conns: tasks/s" % (bench.BATCH, args.batch_connections),
         *both(lambda s: run.rate("batch" + s) * bench.BATCH)],
        ["  p50 / p99 ms", *latency("batch")],
        ["POST /queue/add at %.0f req/s, open loop: p50 / p99 / p99.9 ms" % rate, fixed(""), fixed("_wait"), ""],
        ["failed requests (non-2xx included), all phases", *errors, ""],
    ]
