"""``runqy task``: enqueue (now, later, unique), list, get (or wait for), run again, cancel, delete."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from runqy import defaults
from runqy.cli.errors import OK, UsageError
from runqy.cli.output import cut, duration, emit, labelled, pretty, table, watching
from runqy.cli.parsing import Commands, duration_secs, int_between, point_in_time, positive_int
from runqy.client import AdminClient, ClientError
from runqy.states import FINAL_STATES, TASK_STATES


def register(commands: Commands) -> None:
    task = commands.group("task", "tasks: enqueue, list, get, run, cancel, delete")
    p = task.command("enqueue", task_enqueue, "enqueue one task, to run now or later",
                     example=("runqy task enqueue -q inference.high -p '{\"prompt\": \"hi\"}'",
                              "runqy task enqueue -q inference.high -p @job.json --delay 5m --unique-for 1h"))
    p.add_argument("-q", "--queue", required=True, help="queue name (parent or parent.sub)")
    p.add_argument("-p", "--payload", default="{}", metavar="PAYLOAD",
                   help="JSON payload: inline, @file.json, or - for stdin (default {})")
    p.add_argument("-t", "--timeout", dest="timeout_secs", type=positive_int, metavar="SECONDS",
                   help="execution limit in seconds (default: the queue's)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--delay", type=duration_secs, metavar="DURATION",
                      help="run it this long from now: seconds, or 30s, 5m, 1h, 2d")
    when.add_argument("--at", dest="process_at", type=point_in_time, metavar="TIME",
                      help="run it at this time: RFC 3339 with a UTC offset (2026-12-01T10:00:00Z) or Unix seconds")
    p.add_argument("--unique-for", type=duration_secs, metavar="DURATION",
                   help="refuse a task with the same queue and payload for this long (at most 30d)")
    p.add_argument("--idempotency-key", metavar="KEY",
                   help="the server enqueues once per key: a repeated request answers with the same task")
    p = task.command("list", task_list, "list the tasks of a queue in one state, oldest first", watchable=True,
                     example=("runqy task list inference.high",
                              "runqy task list inference.high --state archived -l 50"))
    p.add_argument("queue")
    p.add_argument("--state", choices=TASK_STATES, default=defaults.TASK_STATE,
                   help="default %s" % defaults.TASK_STATE)
    p.add_argument("-l", "--limit", type=positive_int, default=defaults.CLI_TASK_LIST_LIMIT,
                   help="most tasks to show (default %d; read page by page)" % defaults.CLI_TASK_LIST_LIMIT)
    p = task.command("get", task_get, "show one task with its payload, error and result",
                     example="runqy task get inference.high 3f2c9a1e-... --wait 30")
    p.add_argument("queue")
    p.add_argument("task_id")
    p.add_argument("--wait", type=int_between(1, defaults.MAX_WAIT), metavar="SECONDS",
                   help="wait up to this long (1 to %d) for the task to complete or be archived" % defaults.MAX_WAIT)
    p = task.command("run", task_run, "run a scheduled, retry or archived task now (move it to pending)",
                     example="runqy task run inference.high 3f2c9a1e-...")
    p.add_argument("queue")
    p.add_argument("task_id")
    task.command("cancel", task_cancel, "cancel a task that has not finished",
                 example="runqy task cancel 3f2c9a1e-...").add_argument("task_id")
    p = task.command("delete", task_delete, "delete a task that is not running",
                     example="runqy task delete inference.high 3f2c9a1e-...")
    p.add_argument("queue")
    p.add_argument("task_id")


_PAYLOAD_HINT = "-p takes JSON inline ('{\"n\": 1}', quoted for the shell), @file.json, or - for stdin."


def read_payload(spec: str) -> Any:
    """``-p``: inline JSON, ``@file.json``, or ``-`` for stdin; bad JSON names line and column."""
    if spec == "-":
        text, source = sys.stdin.read(), "stdin"
    elif spec.startswith("@"):
        source = spec[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise UsageError("cannot read payload file %s: %s" % (source, reason), hint=_PAYLOAD_HINT) from None
    else:
        text, source = spec, "--payload"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError("invalid JSON payload (%s): %s at line %d column %d"
                         % (source, exc.msg, exc.lineno, exc.colno), hint=_PAYLOAD_HINT) from None


def task_enqueue(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.enqueue(args.queue, read_payload(args.payload), args.timeout_secs, delay=args.delay,
                            process_at=args.process_at, unique_for=args.unique_for,
                            idempotency_key=args.idempotency_key)
    emit(args, answer, lambda a: _show_enqueued(a, client))
    return OK


def _show_enqueued(answer: dict, client: AdminClient) -> None:
    info = answer["info"]
    lines = [("ID", info["id"]), ("Queue", info["queue"]), ("State", info["state"])]
    if info["state"] == "scheduled":
        print("Task scheduled successfully!")
        lines.append(("Process At", info.get("next_process_at")))
    else:
        print("Task enqueued successfully!")
    labelled(lines, indent="  ")
    if _paused(client, info["queue"]):
        print("\nQueue '%s' is paused: %sthe task is held until the queue is unpaused (runqy queue unpause %s)."
              % (info["queue"], "when due, " if info["state"] == "scheduled" else "", info["queue"]))


def _paused(client: AdminClient, queue: str) -> bool:
    """Whether ``queue`` is paused; a queue that cannot be read now is taken as not (the task is enqueued)."""
    try:
        return client.queue(queue)["paused"]
    except ClientError:
        return False


#: ``task list``'s columns after ID and TYPE, by state: what tells the tasks of that state apart.
_TASK_COLUMNS: dict[str, tuple[tuple[str, Callable[[dict], Any]], ...]] = {
    "pending": (("PAYLOAD", lambda t: cut(json.dumps(t["payload"], ensure_ascii=False), 50)),
                ("ENQUEUED_AT", lambda t: t["enqueued_at"])),
    "active": (("STATE", lambda t: t["state"]), ("RETRIED", lambda t: t["retried"])),
    "scheduled": (("PROCESS_AT", lambda t: t["next_process_at"]),),
    "retry": (("RETRIED", lambda t: t["retried"]), ("MAX_RETRY", lambda t: t["max_retry"]),
              ("NEXT_RETRY", lambda t: t["next_process_at"])),
    "archived": (("ERROR", lambda t: cut(t["last_err"] or "", 50)),),
    "completed": (("COMPLETED_AT", lambda t: t["completed_at"]),),
}


def task_list(args: argparse.Namespace, client: AdminClient) -> int:
    def draw() -> int:
        pages = list(client.iter_pages(args.queue, args.state, args.limit))
        tasks = [task for page in pages for task in page["tasks"]]
        emit(args, {**pages[0], "limit": args.limit, "offset": 0, "tasks": tasks}, _show_tasks)
        return OK
    return watching(args, "task list %s --state %s" % (args.queue, args.state), draw)


def _show_tasks(answer: dict) -> None:
    tasks, state, queue = answer["tasks"], answer["state"], answer["queue"]
    if not tasks:
        print("No %s tasks in %s." % (state, queue))
        return
    columns = _TASK_COLUMNS[state]
    table(("ID", "TYPE") + tuple(name for name, _ in columns),
          ([t["id"], t["type"]] + [cell(t) for _, cell in columns] for t in tasks))
    print("\nShowing %d of %d %s task(s) in %s." % (len(tasks), answer["total"], state, queue))


def task_get(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.get_task(args.queue, args.task_id)
    task = answer["task"]
    if args.wait and task["state"] not in FINAL_STATES:
        # The wait route answers ``{"info": task}``: the same task, shown as ``task get`` shows it.
        answer = {"task": client.wait_task(task["queue"], args.task_id, args.wait)["info"]}
    emit(args, answer, _show_task)
    return OK


def _show_task(answer: dict) -> None:
    t = answer["task"]
    lines = [("Task ID", t["id"]), ("Type", t["type"]), ("Queue", t["queue"]), ("State", t["state"]),
             ("Max Retry", t["max_retry"]), ("Retried", t["retried"]), ("Timeout", duration(t["timeout"])),
             ("Enqueued At", t["enqueued_at"])]
    optional = (("Completed At", "completed_at"), ("Last Failed At", "last_failed_at"),
                ("Next Process At", "next_process_at"))
    lines += [(label, t[field]) for label, field in optional if t.get(field)]
    labelled(lines)
    print("\nPayload:")
    print(pretty(t["payload"]))
    if t.get("last_err"):
        print("\nLast Error: %s" % t["last_err"])
    if t.get("result") is not None:
        print("\nResult:")
        print(pretty(t["result"]))


def task_run(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.run_task(args.queue, args.task_id),
         lambda a: print("Task '%s' moved from %s to pending in queue '%s'." % (a["id"], a["was"], a["queue"])))
    return OK


def task_cancel(args: argparse.Namespace, client: AdminClient) -> int:
    def show(answer: dict) -> None:
        if answer.get("canceled"):
            print("Task '%s' cancelled." % args.task_id)
        else:
            print("Task '%s' is running: %s" % (args.task_id, answer.get("message", "cancellation requested")))
    emit(args, client.cancel_task(args.task_id), show)
    return OK


def task_delete(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.delete_task(args.queue, args.task_id),
         lambda _: print("Task '%s' deleted from queue '%s'." % (args.task_id, args.queue)))
    return OK
