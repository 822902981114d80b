"""The profiles saved by ``runqy login``, and which server and key a command uses."""

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from runqy import defaults
from runqy.cli.errors import UsageError
from runqy.client import AdminClient, normalize_url

CREDENTIALS_FILE = "credentials.json"
_REWRITE = "Fix the file, or delete it and save the profiles again with 'runqy login'."


class Credentials:
    """The profiles saved by ``login``: ``{"servers": {name: {"url", "api_key"}}, "current": name}``.

    The directory is ``$RUNQY_CONFIG_HOME`` when set, else ``~/.runqy``; it is made
    0700 and the file is written 0600, atomically (temporary file + rename).
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / CREDENTIALS_FILE

    @classmethod
    def from_env(cls) -> "Credentials":
        home = os.environ.get("RUNQY_CONFIG_HOME")
        return cls(Path(home) if home else Path.home() / defaults.CLI_HOME)

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"servers": {}, "current": None}
        except (OSError, ValueError) as exc:
            raise UsageError("cannot read %s: %s" % (self.path, exc), hint=_REWRITE) from None
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            raise UsageError("%s is not a runqy credentials file (no 'servers' map)" % self.path, hint=_REWRITE)
        data.setdefault("current", None)
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        fd, tmp = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp made it 0600
                json.dump(data, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def connect(args: argparse.Namespace, url: str, key: str) -> AdminClient:
    """The admin client of ``url`` with ``key``, waiting ``--request-timeout`` seconds for an answer."""
    return AdminClient(url, key, timeout=args.request_timeout or defaults.CLI_TIMEOUT)


def resolve(args: argparse.Namespace) -> tuple[str, str, str]:
    """(server URL, API key, where the URL came from), in the documented order.

    A saved key is only ever sent to the URL it was saved for.
    """
    saved = Credentials.from_env().load()
    current = saved["servers"].get(saved.get("current") or "")
    if args.server:
        url, source = args.server, "--server"
    elif os.environ.get("RUNQY_SERVER"):
        url, source = os.environ["RUNQY_SERVER"], "RUNQY_SERVER"
    elif current:
        url, source = current["url"], "profile '%s'" % saved["current"]
    else:
        url, source = defaults.CLI_SERVER, "default"
    url = normalize_url(url)
    key = args.api_key or os.environ.get("RUNQY_API_KEY") or ""
    if not key:
        profiles = ([current] if current else []) + list(saved["servers"].values())
        key = next((p.get("api_key", "") for p in profiles if p.get("url") == url), "")
    return url, key, source
