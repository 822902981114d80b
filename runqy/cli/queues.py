"""``runqy queue``: statistics, pause and unpause, run a state's tasks again."""

import argparse
from typing import Any, Sequence

from runqy.cli.errors import OK
from runqy.cli.output import duration, emit, labelled, listing, table, watching, yes_no
from runqy.cli.parsing import Commands
from runqy.client import AdminClient
from runqy.states import RUNNABLE_STATES


def register(commands: Commands) -> None:
    queue = commands.group("queue", "queues: statistics, pause and unpause, run tasks again")
    queue.command("list", queue_list, "list every queue with its task counts", watchable=True,
                  example=("runqy queue list", "runqy queue list --watch --interval 5"))
    queue.command("inspect", queue_inspect, "show one queue: counts, sub-queues, config",
                  example=("runqy queue inspect inference", "runqy queue inspect inference.high")).add_argument("queue")
    queue.command("pause", queue_pause, "pause a queue: workers get none of its tasks",
                  example="runqy queue pause inference").add_argument("queue")
    queue.command("unpause", queue_unpause, "unpause a queue",
                  example="runqy queue unpause inference").add_argument("queue")
    p = queue.command("run", queue_run, "run every archived, retry or scheduled task of a queue now",
                      example="runqy queue run inference --state archived")
    p.add_argument("queue")
    p.add_argument("--state", required=True, choices=RUNNABLE_STATES, help="the tasks to move to pending")


#: A queue's task counts, in the order ``queue list``, ``queue inspect`` and ``status`` show them.
COUNTS = ("pending", "held", "active", "scheduled", "retry", "archived", "completed")
#: What ``(no config)`` after a queue's name means.
NO_CONFIG = ("(no config): no queue config names the queue (removed, or never made), so no worker gets its tasks.\n"
             "'runqy config create' gives it one again; 'runqy task delete QUEUE ID' deletes a task.")


def _configured(*queues: dict) -> bool:
    """A queue config names every one of ``queues`` (a server from before ``configured`` does not say)."""
    return all(q.get("configured", True) for q in queues)


def queue_name(q: dict) -> str:
    return q["name"] if _configured(q) else q["name"] + " (no config)"


def show_queues(queues: list[dict], footer: Sequence[Sequence[Any]] = ()) -> None:
    """The queues' table (with ``footer`` rows, such as totals), and what ``(no config)`` means when shown."""
    listing(queues, "No queues found.", ("QUEUE", *(c.upper() for c in COUNTS), "PAUSED"),
            lambda q: (queue_name(q), *(q[c] for c in COUNTS), yes_no(q["paused"])), footer)
    if not _configured(*queues):
        print("\n" + NO_CONFIG)


def queue_list(args: argparse.Namespace, client: AdminClient) -> int:
    def draw() -> int:
        emit(args, client.queues(), lambda answer: show_queues(answer["queues"]))
        return OK
    return watching(args, "queue list", draw)


def queue_inspect(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.queue(args.queue), _show_queue)
    return OK


def _show_queue(q: dict) -> None:
    labelled([("Queue", queue_name(q)), ("Paused", yes_no(q["paused"])), ("Priority", q.get("priority")),
              ("Latency", duration(q.get("latency_seconds")))])
    print("\nTask Counts:")
    labelled([(state.capitalize(), q[state]) for state in COUNTS], indent="  ")
    print()
    labelled([("Processed Today", q["processed_today"]), ("Failed Today", q["failed_today"]),
              ("Processed Total", q["processed"]), ("Failed Total", q["failed"])])
    subs = q.get("sub_queues") or []
    if len(subs) > 1 or (subs and subs[0]["name"] != q["name"]):
        print("\nSub-queues:")
        table(("NAME", "PRIORITY", "PENDING", "HELD", "ACTIVE", "PAUSED"),
              ((queue_name(s), s["priority"], s["pending"], s["held"], s["active"], yes_no(s["paused"])) for s in subs))
    config = q.get("config")
    if not _configured(q, *subs):
        print("\n" + NO_CONFIG)
    if config:
        deployment = config.get("deployment", {})
        print("\nConfig:")
        labelled([("Mode", config.get("mode")), ("Max Retry", config.get("max_retry")),
                  ("Timeout", duration(config.get("timeout"))), ("Git URL", deployment.get("git_url")),
                  ("Branch", deployment.get("branch")), ("Startup Cmd", deployment.get("startup_cmd"))], indent="  ")


def queue_pause(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.pause(args.queue), lambda _: print("Queue '%s' paused successfully." % args.queue))
    return OK


def queue_unpause(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.unpause(args.queue), lambda _: print("Queue '%s' unpaused successfully." % args.queue))
    return OK


def queue_run(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.run_queue(args.queue, args.state), _show_run)
    return OK


def _show_run(answer: dict) -> None:
    print("Moved %d %s task(s) of queue '%s' to pending." % (answer["moved"], answer["state"], answer["queue"]))
    subs = answer["sub_queues"]
    if len(subs) > 1:
        table(("SUB-QUEUE", "MOVED"), ((s["name"], s["moved"]) for s in subs))
