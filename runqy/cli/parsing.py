"""What every command's parser shares: the global options, ``--json``, ``--watch``, argument types.

Each noun module adds its commands with :class:`Commands`, so that a command is
declared in one line next to the function that runs it.
"""

import argparse
import functools
import re
import sys
from datetime import datetime
from typing import Any, Callable, NoReturn

from runqy import __version__, defaults
from runqy.cli.errors import EXIT_CODES, USAGE
from runqy.cli.output import fail


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None


def positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, not %d" % value)
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0, not %s" % text)
    return value


#: Seconds per unit of a duration: ``90`` (seconds), ``30s``, ``5m``, ``1h``, ``2d``.
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd]?)")


def duration_secs(text: str) -> int:
    """A duration of at least one second: whole seconds, or a whole number with s, m, h or d."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError("%r is not a duration: give seconds (90) or a number with s, m, h or d "
                                         "(30s, 5m, 1h, 2d)" % text)
    value = int(match[1]) * _UNITS[match[2]]
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1s, not %s" % text)
    return value


def int_between(low: int, high: int) -> Callable[[str], int]:
    """The type of a whole number from ``low`` to ``high``."""
    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("must be from %d to %d, not %d" % (low, high, value))
        return value
    return parse


def point_in_time(text: str) -> str | float:
    """``--at``: Unix seconds, or an RFC 3339 time with its UTC offset (Z or +hh:mm), as the server reads it."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None or "T" not in text.upper():
        raise argparse.ArgumentTypeError("%r is not a time: give RFC 3339 with a UTC offset "
                                         "(2026-12-01T10:00:00Z) or Unix seconds" % text)
    return text


def global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """-s/-k/--request-timeout/--version, accepted before the command and after it."""
    parser.add_argument("-s", "--server", metavar="URL", default=default,
                        help="server URL (else RUNQY_SERVER, else the saved profile, else %s)" % defaults.CLI_SERVER)
    parser.add_argument("-k", "--api-key", metavar="KEY", default=default,
                        help="admin API key (else RUNQY_API_KEY, else the saved profile)")
    parser.add_argument("--request-timeout", metavar="SECONDS", type=positive_float, default=default,
                        help="seconds to wait for the server (default %g)" % defaults.CLI_TIMEOUT)
    parser.add_argument("-v", "--version", action="version", version="runqy %s" % __version__)


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors go out as every other error does (its commands' too)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        fail([message], "'%s -h' %s." % (self.prog, "lists its commands" if self._subparsers else
                                          "shows its arguments and an example"))
        sys.exit(USAGE)


def usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """What a command group without its verb runs: its help, on stderr."""
    parser.print_help(sys.stderr)
    return USAGE


def _shared_parents() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options of every command, of the commands that print an answer, of those that redraw."""
    common = argparse.ArgumentParser(add_help=False)
    global_options(common, argparse.SUPPRESS)
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the server's JSON answer")
    watch = argparse.ArgumentParser(add_help=False)
    watch.add_argument("-w", "--watch", action="store_true", help="redraw every --interval seconds until Ctrl-C")
    watch.add_argument("--interval", metavar="SECONDS", type=positive_float, default=defaults.CLI_WATCH_INTERVAL,
                       help="seconds between redraws with --watch (default %g)" % defaults.CLI_WATCH_INTERVAL)
    watch.add_argument("--count", type=positive_int, default=None, help=argparse.SUPPRESS)
    return common, as_json, watch


class Commands:
    """The commands under one parser (``runqy`` itself, or a noun such as ``runqy queue``).

    A command runs as ``run(args, client)`` when it is ``remote`` (it calls the server),
    else as ``run(args)``.
    """

    def __init__(self, parser: argparse.ArgumentParser, parents: tuple[argparse.ArgumentParser, ...] = ()):
        self._common, self._json, self._watch = parents or _shared_parents()
        self._verbs = parser.add_subparsers(title="commands", metavar="COMMAND")

    def group(self, name: str, help_: str) -> "Commands":
        """A noun whose verbs are added to what this returns; alone, it prints its help."""
        parser = self._verbs.add_parser(name, help=help_, description=help_, parents=[self._common],
                                        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(run=functools.partial(usage, parser), remote=False)
        return Commands(parser, (self._common, self._json, self._watch))

    def command(self, name: str, run: Callable[..., int], help_: str, *, example: str | tuple[str, ...],
                remote: bool = True, json_out: bool = True, watchable: bool = False) -> argparse.ArgumentParser:
        """One command; its parser, for the arguments of its own. Its --help ends with ``example`` (one or two)."""
        examples = (example,) if isinstance(example, str) else example
        parents = [self._common] + ([self._json] if json_out else []) + ([self._watch] if watchable else [])
        parser = self._verbs.add_parser(name, help=help_, description=help_, parents=parents,
                                        epilog="example%s:\n%s" % ("s" if len(examples) > 1 else "",
                                                                    "\n".join("  " + e for e in examples)),
                                        formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(run=run, remote=remote)
        return parser
