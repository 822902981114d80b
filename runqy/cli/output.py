"""What the CLI prints: the server's answer as JSON or for people, --watch frames, errors.

Every command that shows an answer goes through :func:`emit`, so ``--json`` means the
same thing everywhere: the answer, indented, and nothing else on stdout; every error
goes through :func:`fail`.
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

from runqy.cli.errors import OK, REFUSED, SERVER_FROM, UNREACHABLE, UNREACHABLE_HINT, USAGE, CliError, next_step
from runqy.client import ClientError, InvalidServer, ServerRefused

#: ANSI: cursor home, clear screen — what ``watch`` does between frames.
CLEAR_SCREEN = "\033[H\033[2J"


def eprint(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def emit(args: argparse.Namespace, answer: Any, show: Callable[[Any], object]) -> None:
    """Print ``answer`` as JSON with ``--json``, else as ``show`` draws it for people."""
    if args.json:
        print_json(answer)
    else:
        show(answer)


def table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    """Columns as wide as their widest cell, two spaces apart."""
    lines = [list(headers)] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def listing(items: Sequence[Any], empty: str, headers: Sequence[str], row: Callable[[Any], Iterable[Any]],
            footer: Iterable[Iterable[Any]] = ()) -> None:
    """A table of one ``row`` per item and then the ``footer`` rows, or the sentence ``empty`` when there are none."""
    if not items:
        print(empty)
    else:
        table(headers, [*(row(item) for item in items), *footer])


def labelled(pairs: list[tuple[str, Any]], indent: str = "") -> None:
    """``Label:   value`` lines with the values aligned."""
    width = max(len(label) for label, _ in pairs) + 1
    for label, value in pairs:
        print("%s%-*s %s" % (indent, width, label + ":", "-" if value is None else value))


def pretty(value: Any, indent: str = "  ") -> str:
    """A JSON value for people: indented JSON, or a string as it is."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return "\n".join(indent + line for line in text.splitlines())


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def yes_no(value: Any) -> str:
    return "yes" if value else "no"


def duration(seconds: float | None) -> str:
    """Seconds as Go prints a duration: ``45s``, ``5m0s``, ``1h2m3s``."""
    if seconds is None:
        return "-"
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%dh%dm%ds" % (hours, minutes, secs)
    if minutes:
        return "%dm%ds" % (minutes, secs)
    return "%ds" % secs


def age(stamp: str | None) -> str:
    """How long ago an RFC 3339 UTC time of the server was."""
    if not stamp:
        return "-"
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return stamp
    return duration((datetime.now(timezone.utc) - then).total_seconds())


def watching(args: argparse.Namespace, title: str, draw: Callable[[], int]) -> int:
    """Draw once, or with ``--watch`` redraw every ``--interval`` seconds until Ctrl-C."""
    if not getattr(args, "watch", False):
        return draw()
    frames, code = 0, OK
    try:
        while True:
            sys.stdout.write(CLEAR_SCREEN)
            print("Every %gs: runqy %s    %s\n" % (args.interval, title, time.strftime("%Y-%m-%d %H:%M:%S")))
            try:
                code = draw()
            except ClientError as exc:
                code = report(exc)
            sys.stdout.flush()
            frames += 1
            if args.count and frames >= args.count:
                return code
            time.sleep(args.interval)
    except KeyboardInterrupt:
        print()
        return OK


def fail(messages: Iterable[str], hint: str = "") -> None:
    """How every error goes out: ``Error: ...`` lines on stderr, then what to do next."""
    eprint(*("Error: %s" % m for m in messages))
    if hint:
        eprint(hint)


def report(exc: BaseException) -> int:
    """Print a failure on stderr; its exit code."""
    if isinstance(exc, CliError):
        fail(exc.messages, exc.hint)
        return exc.code
    if isinstance(exc, ServerRefused):
        fail(exc.messages, next_step(exc.status, exc.messages))
        return REFUSED
    if isinstance(exc, InvalidServer):
        fail([str(exc)], "The server comes from %s." % SERVER_FROM)
        return USAGE
    fail([str(exc)], UNREACHABLE_HINT)
    return UNREACHABLE
