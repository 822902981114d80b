"""``runqy worker``: the workers, from their heartbeats."""

import argparse
import json

from runqy import defaults
from runqy.cli.errors import OK
from runqy.cli.output import age, cut, emit, labelled, listing, pretty, yes_no
from runqy.cli.parsing import Commands
from runqy.client import AdminClient


def register(commands: Commands) -> None:
    worker = commands.group("worker", "workers, from their heartbeats")
    worker.command("list", worker_list, "list the workers", example="runqy worker list")
    worker.command("info", worker_info, "show one worker with its recent log lines",
                   example="runqy worker info gpu-host-1:4242").add_argument("worker_id")


def worker_list(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.workers(), _show_workers)
    return OK


def _queue_names(queues: list[dict]) -> str:
    return ",".join(q["name"] for q in queues) or "-"


def _show_workers(answer: dict) -> None:
    listing(answer["workers"], "No workers found.",
            ("WORKER_ID", "STATUS", "QUEUES", "CONCURRENCY", "LAST_BEAT", "STALE"),
            lambda w: (w["worker_id"], w["status"], cut(_queue_names(w["queues"]), 30), w["concurrency"],
                       age(w["last_beat"]), yes_no(w["is_stale"])))


def worker_info(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.worker(args.worker_id), _show_worker)
    return OK


def _show_worker(w: dict) -> None:
    beat = "%s (%s ago)" % (w["last_beat"], age(w["last_beat"])) if w.get("last_beat") else None
    labelled([("Worker ID", w["worker_id"]), ("Status", w["status"]), ("Healthy", yes_no(w["healthy"])),
              ("Queues", ", ".join("%s (priority %s)" % (q["name"], q["priority"]) for q in w["queues"]) or "-"),
              ("Concurrency", w["concurrency"]), ("Started At", w.get("started_at")), ("Last Beat", beat)])
    if w.get("is_stale"):
        print("WARNING: Worker is STALE (no heartbeat for >%ds)" % defaults.WORKER_STALE_AFTER)
    if w.get("metrics"):
        print("\nMetrics:")
        print(pretty(w["metrics"]))
    logs = w.get("logs") or []
    if logs:
        print("\nRecent logs (%d):" % len(logs))
        for line in logs:
            print("  " + (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)))
