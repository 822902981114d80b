"""What the CLI tests share: running a command in-process, enqueueing through it, reading its tables,
the command tree."""

import argparse
import base64
import json
import os
import sys

from runqy.cli import build_parser, main
from tests.conftest import free_port

#: The vault master key of the tests' server, so that a test can decrypt what Redis holds.
VAULT_KEY = base64.b64encode(bytes(range(32))).decode()


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``runqy ARGV`` in this process: its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def enqueue(capsys, queue: str, payload: str = "{}") -> str:
    """The id of a task enqueued with ``runqy task enqueue``."""
    code, out, err = cli(capsys, "task", "enqueue", "-q", queue, "-p", payload, "--json")
    assert code == 0, err
    return json.loads(out)["info"]["id"]


def column_starts(line: str) -> list[int]:
    """Where each column of a table row starts (cells hold no spaces here)."""
    return [i for i, c in enumerate(line) if c != " " and (i == 0 or line[i - 1] == " ")]


def nowhere() -> str:
    """A loopback URL where nothing listens."""
    return "http://127.0.0.1:%d" % free_port()


def bin_env(**extra: str) -> dict:
    """The environment of a bin/ script run by a test: none of the session's RUNQY_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNQY_")}
    return {**env, "PYTHON": sys.executable, **extra}


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        return [path]
    return [words for group in groups for name, child in group.choices.items()
            for words in _commands(child, path + (name,))]


#: The words of every command of the CLI (``("queue", "list")``), groups left out.
COMMANDS = _commands(build_parser())
