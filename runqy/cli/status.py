"""``runqy status``: the queues, the workers and Redis on one screen."""

import argparse

from runqy.cli.errors import OK
from runqy.cli.output import duration, emit, labelled, watching
from runqy.cli.parsing import Commands
from runqy.cli.queues import COUNTS, show_queues
from runqy.client import AdminClient


def register(commands: Commands) -> None:
    commands.command("status", status, "the queues (with totals), the workers and Redis on one screen",
                     watchable=True, example=("runqy status", "runqy status --watch --interval 5"))


def status(args: argparse.Namespace, client: AdminClient) -> int:
    def draw() -> int:
        # --json: the answers of GET /api/cli/queues, /api/cli/workers and /api/cli/stats, by name
        emit(args, {"queues": client.queues(), "workers": client.workers(), "stats": client.stats()}, _show)
        return OK
    return watching(args, "status", draw)


def _show(answer: dict) -> None:
    queues, workers, stats = answer["queues"], answer["workers"]["workers"], answer["stats"]
    show_queues(queues["queues"], [("TOTAL", *(sum(q[c] for q in queues["queues"]) for c in COUNTS), "")])
    if queues["total"] > queues["count"]:
        print("(the first %d of %d queues)" % (queues["count"], queues["total"]))
    print()
    labelled([("Workers", _workers(workers)), ("Redis", _redis(stats["redis"])), ("Today", _today(stats["history"]))])


def _workers(workers: list[dict]) -> str:
    if not workers:
        return "none: tasks wait until a runqy-worker registers for their queue"
    stale = sum(1 for w in workers if w["is_stale"])
    healthy = sum(1 for w in workers if w["healthy"] and not w["is_stale"])
    return "%d (%d healthy, %d unhealthy, %d stale)" % (len(workers), healthy, len(workers) - healthy - stale, stale)


def _size(n: float) -> str:
    """Bytes as Redis writes ``used_memory_human``: ``800B``, ``1.47M``."""
    units = ("B", "K", "M", "G", "T")
    power = 0
    while n >= 1024 and power < len(units) - 1:
        n /= 1024
        power += 1
    return "%d%s" % (n, units[power]) if power == 0 else "%.2f%s" % (n, units[power])


def _redis(redis: dict) -> str:
    limit = "of %s" % _size(redis["maxmemory"]) if redis["maxmemory"] else "no maxmemory"
    return "%s (%s), %s used (%s), %d clients, up %s" % (
        redis["version"], redis["mode"], redis["used_memory_human"], limit, redis["connected_clients"],
        duration(redis["uptime_seconds"]))


def _today(history: list[dict]) -> str:
    today = history[-1]
    return "%d processed, %d failed (last %d days: %d processed, %d failed)" % (
        today["processed"], today["failed"], len(history), sum(d["processed"] for d in history),
        sum(d["failed"] for d in history))
