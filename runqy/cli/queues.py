"""``runqy queue``: statistics, pause and unpause, run a state's tasks again."""

import argparse

from runqy.cli.errors import OK
from runqy.cli.output import duration, emit, labelled, listing, table, watching, yes_no
from runqy.cli.parsing import Commands
from runqy.client import AdminClient
from runqy.states import RUNNABLE_STATES


def register(commands: Commands) -> None:
    queue = commands.group("queue", "queues: statistics, pause and unpause, run tasks again")
    queue.command("list", queue_list, "list every queue with its task counts", watchable=True)
    queue.command("inspect", queue_inspect, "show one queue: counts, sub-queues, config").add_argument("queue")
    queue.command("pause", queue_pause, "pause a queue: workers get none of its tasks").add_argument("queue")
    queue.command("unpause", queue_unpause, "unpause a queue").add_argument("queue")
    p = queue.command("run", queue_run, "run every archived, retry or scheduled task of a queue now",
                      example="runqy queue run inference --state archived")
    p.add_argument("queue")
    p.add_argument("--state", required=True, choices=RUNNABLE_STATES, help="the tasks to move to pending")


def queue_list(args: argparse.Namespace, client: AdminClient) -> int:
    def draw() -> int:
        emit(args, client.queues(), _show_queues)
        return OK
    return watching(args, "queue list", draw)


def _show_queues(answer: dict) -> None:
    listing(answer["queues"], "No queues found.",
            ("QUEUE", "PENDING", "ACTIVE", "SCHEDULED", "RETRY", "ARCHIVED", "COMPLETED", "PAUSED"),
            lambda q: (q["name"], q["pending"] + q.get("held", 0), q["active"], q["scheduled"], q["retry"],
                       q["archived"], q["completed"], yes_no(q["paused"])))


def queue_inspect(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.queue(args.queue), _show_queue)
    return OK


def _show_queue(q: dict) -> None:
    labelled([("Queue", q["name"]), ("Paused", yes_no(q["paused"])), ("Priority", q.get("priority")),
              ("Latency", duration(q.get("latency_seconds")))])
    print("\nTask Counts:")
    labelled([(state.capitalize(), q[state]) for state in
              ("pending", "held", "active", "scheduled", "retry", "archived", "completed")], indent="  ")
    print()
    labelled([("Processed Today", q["processed_today"]), ("Failed Today", q["failed_today"]),
              ("Processed Total", q["processed"]), ("Failed Total", q["failed"])])
    subs = q.get("sub_queues") or []
    if len(subs) > 1 or (subs and subs[0]["name"] != q["name"]):
        print("\nSub-queues:")
        table(("NAME", "PRIORITY", "PENDING", "HELD", "ACTIVE", "PAUSED"),
              ((s["name"], s["priority"], s["pending"], s["held"], s["active"], yes_no(s["paused"])) for s in subs))
    config = q.get("config")
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
