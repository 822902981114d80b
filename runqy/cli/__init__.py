"""The runqy admin CLI (docs/clients.md §4): every admin API capability from the shell.

``main(argv) -> int``; all server calls go through :class:`runqy.client.AdminClient`.
The server and key come from ``-s``/``-k``, else ``RUNQY_SERVER``/``RUNQY_API_KEY``,
else the current profile saved by ``runqy login``, else ``defaults.CLI_SERVER``.
Each noun module (status, queues, tasks, workers, configs, vaults, auth, serve, completion)
adds its own commands; this one parses the command line, runs the command and reports its
failure.
"""

import argparse
import functools
import os
import sys

from runqy.cli import auth, completion, configs, queues, serve, status, tasks, vaults, workers
from runqy.cli.credentials import connect, resolve
from runqy.cli.errors import EXIT_CODES, INTERRUPTED, OK, USAGE, CliError
from runqy.cli.output import report
from runqy.cli.parsing import Commands, Parser, global_options, usage
from runqy.client import ClientError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    root = Parser(prog="runqy", description="The runqy admin CLI: manage a runqy server over HTTP.",
                  epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    global_options(root, None)
    root.set_defaults(run=functools.partial(usage, root), remote=False)
    commands = Commands(root)
    for noun in (status, queues, tasks, workers, configs, vaults, auth, serve):
        noun.register(commands)
    completion.register(commands, root)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # -h and --version (0), argparse errors (2)
        return exc.code if isinstance(exc.code, int) else USAGE
    try:
        if not args.remote:
            return args.run(args)
        url, key, _ = resolve(args)
        with connect(args, url, key) as client:
            return args.run(args, client)
    except (ClientError, CliError) as exc:
        return report(exc)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
