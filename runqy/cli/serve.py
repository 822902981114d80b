"""``runqy serve``: the server itself, from an installed wheel as from a checkout."""

import argparse
import os
import sys

from runqy.cli.errors import OK
from runqy.cli.parsing import Commands

#: The server: gunicorn with runqy's settings module, run by the Python that runs this CLI.
GUNICORN = ("-m", "gunicorn", "-c", "python:runqy.gunicorn_conf", "runqy.wsgi:app")


def register(commands: Commands) -> None:
    p = commands.command("serve", serve, "start the server with gunicorn (settings: runqy/gunicorn_conf.py)",
                         remote=False, json_out=False,
                         example=("runqy serve", "runqy serve -- --workers 4"))
    p.add_argument("gunicorn_args", nargs="*", metavar="-- GUNICORN_ARGS", help="passed on to gunicorn after --")


def serve(args: argparse.Namespace) -> int:
    """Replace this process with gunicorn serving runqy; ``args.gunicorn_args`` go after its own."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *GUNICORN, *args.gunicorn_args])
    return OK  # not reached
