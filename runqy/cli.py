"""The runqy admin CLI (clients.md §4): every admin API capability from the shell.

``main(argv) -> int``; all server calls go through :class:`runqy.client.AdminClient`.
The server and key come from ``-s``/``-k``, else ``RUNQY_SERVER``/``RUNQY_API_KEY``,
else the current profile saved by ``runqy login``, else ``http://localhost:3000``.
"""

import argparse
import functools
import getpass
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from runqy import __version__, keys
from runqy.client import (
    DEFAULT_SERVER,
    DEFAULT_TIMEOUT,
    AdminClient,
    ClientError,
    InvalidServer,
    ServerRefused,
    normalize_url,
)
from runqy.vault import mask

#: Exit codes.
OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3
EXIT_CODES = """exit codes:
  0  done
  1  the server refused (its messages are printed on stderr), or a local check failed
  2  usage error: bad flags, bad JSON payload, unreadable file
  3  the server cannot be reached or did not answer in time"""

CREDENTIALS_FILE = "credentials.json"
#: Default page of ``task list`` (the original CLI's).
TASK_LIST_LIMIT = 10
#: ANSI: cursor home, clear screen — what ``watch`` does between frames.
CLEAR_SCREEN = "\033[H\033[2J"
LOGIN_HINT = "Use 'runqy login -s <server> -k <api-key>' to save credentials."


class UsageError(Exception):
    """Raised when the command line (or a file or payload it names) cannot be used; exit 2."""


class Refused(Exception):
    """Raised when a local check says no (unknown profile, invalid config file); exit 1."""

    def __init__(self, *messages: str):
        super().__init__(*messages)
        self.messages = list(messages)


# --- output --------------------------------------------------------------------------------


def _eprint(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    """Columns as wide as their widest cell, two spaces apart."""
    lines = [list(headers)] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def _labelled(pairs: list[tuple[str, Any]], indent: str = "") -> None:
    """``Label:   value`` lines with the values aligned."""
    width = max(len(label) for label, _ in pairs) + 1
    for label, value in pairs:
        print("%s%-*s %s" % (indent, width, label + ":", "-" if value is None else value))


def _pretty(value: Any, indent: str = "  ") -> str:
    """A JSON value for people: indented JSON, or a string as it is."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return "\n".join(indent + line for line in text.splitlines())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _yes_no(value: Any) -> str:
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


def _age(stamp: str | None) -> str:
    """How long ago an RFC 3339 UTC time of the server was."""
    if not stamp:
        return "-"
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return stamp
    return duration((datetime.now(timezone.utc) - then).total_seconds())


# --- saved credentials ---------------------------------------------------------------------


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
        return cls(Path(home) if home else Path.home() / ".runqy")

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"servers": {}, "current": None}
        except (OSError, ValueError) as exc:
            raise UsageError("cannot read %s: %s" % (self.path, exc)) from None
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            raise UsageError("%s is not a runqy credentials file (no 'servers' map)" % self.path)
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
        url, source = DEFAULT_SERVER, "default"
    url = normalize_url(url)
    key = args.api_key or os.environ.get("RUNQY_API_KEY") or ""
    if not key:
        profiles = ([current] if current else []) + list(saved["servers"].values())
        key = next((p.get("api_key", "") for p in profiles if p.get("url") == url), "")
    return url, key, source


# --- queue ---------------------------------------------------------------------------------


def _watching(args: argparse.Namespace, title: str, draw: Callable[[], int]) -> int:
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
                code = _report(exc)
            sys.stdout.flush()
            frames += 1
            if args.count and frames >= args.count:
                return code
            time.sleep(args.interval)
    except KeyboardInterrupt:
        print()
        return OK


def queue_list(args: argparse.Namespace, client: AdminClient) -> int:
    def draw() -> int:
        answer = client.queues()
        if args.json:
            _print_json(answer)
        elif not answer["queues"]:
            print("No queues found.")
        else:
            _table(("QUEUE", "PENDING", "ACTIVE", "SCHEDULED", "RETRY", "ARCHIVED", "COMPLETED", "PAUSED"),
                   ((q["name"], q["pending"] + q.get("held", 0), q["active"], q["scheduled"], q["retry"],
                     q["archived"], q["completed"], _yes_no(q["paused"])) for q in answer["queues"]))
        return OK
    return _watching(args, "queue list", draw)


def queue_inspect(args: argparse.Namespace, client: AdminClient) -> int:
    q = client.queue(args.queue)
    if args.json:
        _print_json(q)
        return OK
    _labelled([("Queue", q["name"]), ("Paused", _yes_no(q["paused"])), ("Priority", q.get("priority")),
               ("Latency", duration(q.get("latency_seconds")))])
    print("\nTask Counts:")
    _labelled([(state.capitalize(), q[state]) for state in
               ("pending", "held", "active", "scheduled", "retry", "archived", "completed")], indent="  ")
    print()
    _labelled([("Processed Today", q["processed_today"]), ("Failed Today", q["failed_today"]),
               ("Processed Total", q["processed"]), ("Failed Total", q["failed"])])
    subs = q.get("sub_queues") or []
    if len(subs) > 1 or (subs and subs[0]["name"] != q["name"]):
        print("\nSub-queues:")
        _table(("NAME", "PRIORITY", "PENDING", "HELD", "ACTIVE", "PAUSED"),
               ((s["name"], s["priority"], s["pending"], s["held"], s["active"], _yes_no(s["paused"])) for s in subs))
    config = q.get("config")
    if config:
        deployment = config.get("deployment", {})
        print("\nConfig:")
        _labelled([("Mode", config.get("mode")), ("Max Retry", config.get("max_retry")),
                   ("Timeout", duration(config.get("timeout"))), ("Git URL", deployment.get("git_url")),
                   ("Branch", deployment.get("branch")), ("Startup Cmd", deployment.get("startup_cmd"))], indent="  ")
    return OK


def queue_pause(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.pause(args.queue)
    if args.json:
        _print_json(answer)
    else:
        print("Queue '%s' paused successfully." % args.queue)
    return OK


def queue_unpause(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.unpause(args.queue)
    if args.json:
        _print_json(answer)
    else:
        print("Queue '%s' unpaused successfully." % args.queue)
    return OK


# --- task ----------------------------------------------------------------------------------


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
            raise UsageError("cannot read payload file %s: %s" % (source, reason)) from None
    else:
        text, source = spec, "--payload"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError("invalid JSON payload (%s): %s at line %d column %d"
                         % (source, exc.msg, exc.lineno, exc.colno)) from None


def task_enqueue(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.enqueue(args.queue, read_payload(args.payload), args.timeout_secs)
    if args.json:
        _print_json(answer)
        return OK
    info = answer["info"]
    print("Task enqueued successfully!")
    _labelled([("ID", info["id"]), ("Queue", info["queue"]), ("State", info["state"])], indent="  ")
    return OK


_TASK_COLUMNS: dict[str, tuple[tuple[str, Callable[[dict], Any]], ...]] = {
    "pending": (("PAYLOAD", lambda t: _cut(json.dumps(t["payload"], ensure_ascii=False), 50)),
                ("ENQUEUED_AT", lambda t: t["enqueued_at"])),
    "active": (("STATE", lambda t: t["state"]), ("RETRIED", lambda t: t["retried"])),
    "scheduled": (("PROCESS_AT", lambda t: t["next_process_at"]),),
    "retry": (("RETRIED", lambda t: t["retried"]), ("MAX_RETRY", lambda t: t["max_retry"]),
              ("NEXT_RETRY", lambda t: t["next_process_at"])),
    "archived": (("ERROR", lambda t: _cut(t["last_err"] or "", 50)),),
    "completed": (("COMPLETED_AT", lambda t: t["completed_at"]),),
}


def task_list(args: argparse.Namespace, client: AdminClient) -> int:
    def draw() -> int:
        pages = list(client.iter_pages(args.queue, args.state, args.limit))
        tasks = [task for page in pages for task in page["tasks"]]
        if args.json:
            _print_json({**pages[0], "limit": args.limit, "offset": 0, "tasks": tasks})
            return OK
        queue, total = pages[0]["queue"], pages[0]["total"]
        if not tasks:
            print("No %s tasks in %s." % (args.state, queue))
            return OK
        columns = _TASK_COLUMNS[args.state]
        _table(("ID", "TYPE") + tuple(name for name, _ in columns),
               ([t["id"], t["type"]] + [cell(t) for _, cell in columns] for t in tasks))
        print("\nShowing %d of %d %s task(s) in %s." % (len(tasks), total, args.state, queue))
        return OK
    return _watching(args, "task list %s --state %s" % (args.queue, args.state), draw)


def task_get(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.get_task(args.queue, args.task_id)
    if args.json:
        _print_json(answer)
        return OK
    t = answer["task"]
    lines = [("Task ID", t["id"]), ("Type", t["type"]), ("Queue", t["queue"]), ("State", t["state"]),
             ("Max Retry", t["max_retry"]), ("Retried", t["retried"]), ("Timeout", duration(t["timeout"])),
             ("Enqueued At", t["enqueued_at"])]
    optional = (("Completed At", "completed_at"), ("Last Failed At", "last_failed_at"),
                ("Next Process At", "next_process_at"))
    lines += [(label, t[field]) for label, field in optional if t.get(field)]
    _labelled(lines)
    print("\nPayload:")
    print(_pretty(t["payload"]))
    if t.get("last_err"):
        print("\nLast Error: %s" % t["last_err"])
    if t.get("result") is not None:
        print("\nResult:")
        print(_pretty(t["result"]))
    return OK


def task_cancel(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.cancel_task(args.task_id)
    if args.json:
        _print_json(answer)
    elif answer.get("canceled"):
        print("Task '%s' cancelled." % args.task_id)
    else:
        print("Task '%s' is running: %s" % (args.task_id, answer.get("message", "cancellation requested")))
    return OK


def task_delete(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.delete_task(args.queue, args.task_id)
    if args.json:
        _print_json(answer)
    else:
        print("Task '%s' deleted from queue '%s'." % (args.task_id, args.queue))
    return OK


# --- worker --------------------------------------------------------------------------------


def _queue_names(queues: list[dict]) -> str:
    return ",".join(q["name"] for q in queues) or "-"


def worker_list(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.workers()
    if args.json:
        _print_json(answer)
    elif not answer["workers"]:
        print("No workers found.")
    else:
        _table(("WORKER_ID", "STATUS", "QUEUES", "CONCURRENCY", "LAST_BEAT", "STALE"),
               ((w["worker_id"], w["status"], _cut(_queue_names(w["queues"]), 30), w["concurrency"],
                 _age(w["last_beat"]), _yes_no(w["is_stale"])) for w in answer["workers"]))
    return OK


def worker_info(args: argparse.Namespace, client: AdminClient) -> int:
    w = client.worker(args.worker_id)
    if args.json:
        _print_json(w)
        return OK
    beat = "%s (%s ago)" % (w["last_beat"], _age(w["last_beat"])) if w.get("last_beat") else None
    _labelled([("Worker ID", w["worker_id"]), ("Status", w["status"]), ("Healthy", _yes_no(w["healthy"])),
               ("Queues", ", ".join("%s (priority %s)" % (q["name"], q["priority"]) for q in w["queues"]) or "-"),
               ("Concurrency", w["concurrency"]), ("Started At", w.get("started_at")), ("Last Beat", beat)])
    if w.get("is_stale"):
        print("WARNING: Worker is STALE (no heartbeat for >30s)")
    if w.get("metrics"):
        print("\nMetrics:")
        print(_pretty(w["metrics"]))
    logs = w.get("logs") or []
    if logs:
        print("\nRecent logs (%d):" % len(logs))
        for line in logs:
            print("  " + (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)))
    return OK


# --- config --------------------------------------------------------------------------------


def config_list(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.configs()
    if args.json:
        _print_json(answer)
    elif not answer["configs"]:
        print("No queue configurations found.")
    else:
        _table(("NAME", "PRIORITY", "MODE", "GIT_URL"),
               ((c["name"], c["priority"], c["mode"], c["deployment"].get("git_url")) for c in answer["configs"]))
    return OK


def config_reload(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.reload_configs()
    if args.json:
        _print_json(answer)
    else:
        print("Reloaded %d queue configuration(s):" % answer["count"])
        for name in answer["loaded"]:
            print("  - %s" % name)
    errors = [m for _, messages in sorted(answer.get("errors", {}).items()) for m in messages]
    if errors:
        _eprint("", "Errors (%d):" % len(errors), *("  - " + e for e in errors))
        return REFUSED
    return OK


def _configs_from_file(path: Path) -> list[dict[str, Any]]:
    """The API bodies of a YAML file: a ``queues:`` map (as in config/*.yaml) or one queue with ``name:``.

    The file is checked with the server's own schema first, so that a bad file changes nothing.
    """
    import yaml

    from runqy import config
    from runqy.errors import ConfigError

    if not path.is_file():
        raise UsageError("%s is not a file" % path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and "queues" in document:
            config.load_file(path)
            return [{**entry, "name": name} for name, entry in document["queues"].items()]
        if isinstance(document, dict) and "name" in document:
            config.queue_from_body(document)
            return [document]
    except ConfigError as exc:
        raise Refused(*("%s: %s" % (path, m) if not m.startswith(str(path)) else m for m in exc.messages)) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise Refused("%s: cannot read YAML: %s" % (path, " ".join(str(exc).split()))) from None
    raise Refused("%s: expected a 'queues:' map of queue configs, or one queue config with 'name:'" % path)


_INLINE = (("name", "--name"), ("priority", "--priority"), ("git_url", "--git-url"), ("branch", "--branch"),
           ("startup_cmd", "--startup-cmd"), ("mode", "--mode"), ("code_path", "--code-path"))


def _inline_config(args: argparse.Namespace) -> dict[str, Any]:
    missing = [flag for dest, flag in _INLINE if dest in ("name", "git_url", "startup_cmd") and not getattr(args, dest)]
    if missing:
        raise UsageError("config create needs -f FILE, or %s" % ", ".join(missing))
    deployment = {"git_url": args.git_url, "startup_cmd": args.startup_cmd}
    deployment.update({k: getattr(args, k) for k in ("branch", "code_path") if getattr(args, k) is not None})
    body: dict[str, Any] = {"name": args.name, "deployment": deployment}
    body.update({k: getattr(args, k) for k in ("priority", "mode") if getattr(args, k) is not None})
    return body


def config_create(args: argparse.Namespace, client: AdminClient) -> int:
    if args.file:
        given = [flag for dest, flag in _INLINE if getattr(args, dest) is not None]
        if given:
            raise UsageError("give either -f FILE or the flags %s, not both" % ", ".join(given))
        bodies = _configs_from_file(Path(args.file))
    else:
        bodies = [_inline_config(args)]
    if not args.force:
        existing = {c["name"] for c in client.configs()["configs"]}
        clashes = [b["name"] for b in bodies if b["name"] in existing]
        if clashes:
            raise Refused(*("queue config already exists: %s (use --force to replace it)" % n for n in clashes))
    answers, errors = [], []
    for body in bodies:
        try:
            answers.append(client.create_config(body, args.force))
        except ServerRefused as exc:
            errors += ["%s: %s" % (body["name"], m) for m in exc.messages]
    if args.json:
        _print_json(answers)
    else:
        for verb, created in (("Created", True), ("Updated", False)):
            names = [a["config"]["name"] for a in answers if a["created"] is created]
            if names:
                print("%s %d queue configuration(s):" % (verb, len(names)))
                print("\n".join("  - %s" % n for n in names))
    if errors:
        _eprint("Errors (%d):" % len(errors), *("  - " + e for e in errors))
        return REFUSED
    return OK


def config_remove(args: argparse.Namespace, client: AdminClient) -> int:
    name = args.config_name or args.name_flag
    if not name or (args.config_name and args.name_flag and args.config_name != args.name_flag):
        raise UsageError("config remove needs one queue name: runqy config remove NAME")
    answer = client.delete_config(name)
    if args.json:
        _print_json(answer)
    else:
        print("Queue config '%s' deleted successfully (its tasks stay in Redis)." % name)
    return OK


def config_validate(args: argparse.Namespace) -> int:
    """Check a directory of YAML configs with the server's schema; no server needed."""
    from runqy import config

    root = Path(args.dir)
    if not root.is_dir():
        raise UsageError("%s is not a directory" % root)
    queues, failures = config.load_dir(root)
    if args.json:
        _print_json({"valid": not failures, "queues": queues, "errors": failures})
    elif failures:
        _eprint(*(m for _, messages in sorted(failures.items()) for m in messages))
        _eprint("Validation failed: %d file(s) with errors." % len(failures))
    elif not queues:
        print("No queue configurations found in %s." % root)
    else:
        print("Validated %s:" % root)
        subs = [item for _, q in sorted(queues.items()) for item in config.sub_queues(q).items()]
        for full, priority in subs:
            print("  - %s (priority=%d)" % (full, priority))
        print("\nTotal: %d queue(s), %d sub-queue(s)" % (len(queues), len(subs)))
        print("Validation successful!")
    return REFUSED if failures else OK


# --- vault ---------------------------------------------------------------------------------


def vault_list(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.vaults()
    if args.json:
        _print_json(answer)
    elif not answer["vaults"]:
        print("No vaults found.")
    else:
        _table(("NAME", "DESCRIPTION", "ENTRIES"),
               ((v["name"], _cut(v.get("description") or "", 40), v["entry_count"]) for v in answer["vaults"]))
    return OK


def vault_create(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.create_vault(args.vault, args.description)
    if args.json:
        _print_json(answer)
    else:
        print("Vault '%s' created successfully." % args.vault)
    return OK


def _entry_rows(entries: list[dict], updated: bool) -> None:
    _table(("KEY", "VALUE", "SECRET") + (("UPDATED",) if updated else ()),
           ([e["key"], e["value"], _yes_no(e["is_secret"])] + ([e.get("updated_at")] if updated else [])
            for e in entries))


def vault_show(args: argparse.Namespace, client: AdminClient) -> int:
    v = client.vault(args.vault)
    if args.json:
        _print_json(v)
        return OK
    print("Vault: %s" % v["name"])
    if v.get("description"):
        print("Description: %s" % v["description"])
    print("Created: %s" % v.get("created_at"))
    print()
    if not v["entries"]:
        print("No entries.")
    else:
        print("Entries (%d):" % len(v["entries"]))
        _entry_rows(v["entries"], updated=False)
    return OK


def _confirm(question: str) -> bool:
    """Ask on the terminal; without one the caller must have passed --force."""
    if not sys.stdin.isatty():
        raise UsageError("refusing to %s without confirmation: stdin is not a terminal (use --force)" % question)
    try:
        answer = input("Are you sure you want to %s? (y/N): " % question)
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def vault_delete(args: argparse.Namespace, client: AdminClient) -> int:
    if not args.force and not _confirm("delete vault '%s' and all its entries" % args.vault):
        print("Cancelled.")
        return OK
    answer = client.delete_vault(args.vault)
    if args.json:
        _print_json(answer)
    else:
        print("Vault '%s' deleted successfully." % args.vault)
    return OK


def vault_set(args: argparse.Namespace, client: AdminClient) -> int:
    value = args.value
    if value == "-":
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
    answer = client.set_entry(args.vault, args.key, value, secret=not args.no_secret)
    if args.json:
        _print_json(answer)
    else:
        print("Entry '%s' set in vault '%s'." % (args.key, args.vault))
    return OK


def vault_unset(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.unset_entry(args.vault, args.key)
    if args.json:
        _print_json(answer)
    else:
        print("Entry '%s' removed from vault '%s'." % (args.key, args.vault))
    return OK


def vault_entries(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.entries(args.vault)
    if args.json:
        _print_json(answer)
    elif not answer["entries"]:
        print("No entries.")
    else:
        _entry_rows(answer["entries"], updated=True)
    return OK


# --- login, logout, auth -------------------------------------------------------------------


def login(args: argparse.Namespace) -> int:
    url = args.server or os.environ.get("RUNQY_SERVER")
    if not url:
        raise UsageError("login needs the server: runqy login -s URL [-k KEY] [-n NAME]")
    url = normalize_url(url)
    key = args.api_key or os.environ.get("RUNQY_API_KEY")
    if not key:
        if not sys.stdin.isatty():
            raise UsageError("login needs an API key: -k KEY, RUNQY_API_KEY, or a terminal to type it in")
        key = getpass.getpass("API Key: ").strip()
        if not key:
            raise UsageError("an API key is required")
    store = Credentials.from_env()
    saved = store.load()
    saved["servers"][args.profile] = {"url": url, "api_key": key}
    saved["current"] = args.profile
    store.save(saved)
    print('Logged in to %s (saved as "%s")' % (url, args.profile))
    return OK


def logout(args: argparse.Namespace) -> int:
    store = Credentials.from_env()
    if args.all:
        store.delete()
        print("Removed all saved credentials.")
        return OK
    saved = store.load()
    name = args.profile or saved.get("current")
    if not name:
        print("Not logged in.")
        return OK
    if name not in saved["servers"]:
        raise Refused("no saved server named '%s'" % name)
    del saved["servers"][name]
    if saved.get("current") == name:
        saved["current"] = None
    store.save(saved)
    print('Logged out from "%s"' % name)
    return OK


def _masked(saved: dict[str, Any]) -> dict[str, Any]:
    return {"current": saved.get("current"),
            "servers": {name: {"url": p.get("url"), "api_key": mask(p.get("api_key", ""))}
                        for name, p in sorted(saved["servers"].items())}}


def auth_status(args: argparse.Namespace) -> int:
    saved = Credentials.from_env().load()
    name = saved.get("current")
    profile = saved["servers"].get(name or "")
    url, key, source = resolve(args)
    if args.json:
        _print_json({**_masked(saved), "in_use": {"url": url, "source": source, "api_key": mask(key) if key else None}})
        return OK
    if not profile:
        print("Not logged in.")
    else:
        print("Current server: %s" % name)
        print("URL: %s" % profile["url"])
        print("API Key: %s" % mask(profile.get("api_key", "")))
    if not profile or not source.startswith("profile"):
        print("In use: %s (from %s)%s" % (url, source, "" if key else ", no API key"))
    if not profile:
        print("\n" + LOGIN_HINT)
    return OK


def auth_list(args: argparse.Namespace) -> int:
    saved = Credentials.from_env().load()
    if args.json:
        _print_json(_masked(saved))
    elif not saved["servers"]:
        print("No saved servers.\n\n" + LOGIN_HINT)
    else:
        masked = _masked(saved)
        _table(("NAME", "URL", "API_KEY", "CURRENT"),
               ((name, p["url"], p["api_key"], "*" if name == saved.get("current") else "")
                for name, p in masked["servers"].items()))
    return OK


def auth_switch(args: argparse.Namespace) -> int:
    store = Credentials.from_env()
    saved = store.load()
    if args.profile not in saved["servers"]:
        names = ", ".join(sorted(saved["servers"])) or "none"
        raise Refused("no saved server named '%s' (saved: %s)" % (args.profile, names))
    saved["current"] = args.profile
    store.save(saved)
    print('Switched to "%s"' % args.profile)
    print("URL: %s" % saved["servers"][args.profile]["url"])
    return OK


# --- serve ---------------------------------------------------------------------------------


#: The server: gunicorn with runqy's settings module, run by the Python that runs this CLI.
GUNICORN = ("-m", "gunicorn", "-c", "python:runqy.gunicorn_conf", "runqy.wsgi:app")


def serve(args: argparse.Namespace) -> int:
    """Replace this process with gunicorn serving runqy; ``args.gunicorn_args`` go after its own."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *GUNICORN, *args.gunicorn_args])
    return OK  # not reached


# --- the command line ----------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, not %d" % value)
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0, not %s" % text)
    return value


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """-s/-k/--request-timeout/--version, accepted before the command and after it."""
    parser.add_argument("-s", "--server", metavar="URL", default=default,
                        help="server URL (else RUNQY_SERVER, else the saved profile, else %s)" % DEFAULT_SERVER)
    parser.add_argument("-k", "--api-key", metavar="KEY", default=default,
                        help="admin API key (else RUNQY_API_KEY, else the saved profile)")
    parser.add_argument("--request-timeout", metavar="SECONDS", type=_positive_float, default=default,
                        help="seconds to wait for the server (default %g)" % DEFAULT_TIMEOUT)
    parser.add_argument("-v", "--version", action="version", version="runqy %s" % __version__)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the server's JSON answer")
    watch = argparse.ArgumentParser(add_help=False)
    watch.add_argument("-w", "--watch", action="store_true", help="redraw every --interval seconds until Ctrl-C")
    watch.add_argument("--interval", metavar="SECONDS", type=_positive_float, default=2.0,
                       help="seconds between redraws with --watch (default 2)")
    watch.add_argument("--count", type=_positive_int, default=None, help=argparse.SUPPRESS)

    root = argparse.ArgumentParser(prog="runqy", description="The runqy admin CLI: manage a runqy server over HTTP.",
                                   epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(root, None)
    root.set_defaults(run=functools.partial(_usage, root), remote=False)
    nouns = root.add_subparsers(title="commands", metavar="COMMAND")

    def group(name: str, help_: str) -> argparse._SubParsersAction:
        parser = nouns.add_parser(name, help=help_, description=help_, parents=[common], epilog=EXIT_CODES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(run=functools.partial(_usage, parser), remote=False)
        return parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(verbs: argparse._SubParsersAction, name: str, run: Callable, help_: str,
                *, remote: bool = True, json_out: bool = True, watchable: bool = False) -> argparse.ArgumentParser:
        parents = [common] + ([as_json] if json_out else []) + ([watch] if watchable else [])
        parser = verbs.add_parser(name, help=help_, description=help_, parents=parents)
        parser.set_defaults(run=run, remote=remote)
        return parser

    verbs = group("queue", "queues: statistics, pause and unpause")
    command(verbs, "list", queue_list, "list every queue with its task counts", watchable=True)
    command(verbs, "inspect", queue_inspect, "show one queue: counts, sub-queues, config").add_argument("queue")
    command(verbs, "pause", queue_pause, "pause a queue: workers get none of its tasks").add_argument("queue")
    command(verbs, "unpause", queue_unpause, "unpause a queue").add_argument("queue")

    verbs = group("task", "tasks: enqueue, list, get, cancel, delete")
    p = command(verbs, "enqueue", task_enqueue, "enqueue one task")
    p.add_argument("-q", "--queue", required=True, help="queue name (parent or parent.sub)")
    p.add_argument("-p", "--payload", default="{}", metavar="PAYLOAD",
                   help="JSON payload: inline, @file.json, or - for stdin (default {})")
    p.add_argument("-t", "--timeout", dest="timeout_secs", type=_positive_int, metavar="SECONDS",
                   help="execution limit in seconds (default: the queue's)")
    p = command(verbs, "list", task_list, "list the tasks of a queue in one state, oldest first", watchable=True)
    p.add_argument("queue")
    p.add_argument("--state", choices=keys.TASK_STATES, default="pending", help="default pending")
    p.add_argument("-l", "--limit", type=_positive_int, default=TASK_LIST_LIMIT,
                   help="most tasks to show (default %d; read page by page)" % TASK_LIST_LIMIT)
    p = command(verbs, "get", task_get, "show one task with its payload, error and result")
    p.add_argument("queue")
    p.add_argument("task_id")
    command(verbs, "cancel", task_cancel, "cancel a task that has not finished").add_argument("task_id")
    p = command(verbs, "delete", task_delete, "delete a task that is not running")
    p.add_argument("queue")
    p.add_argument("task_id")

    verbs = group("worker", "workers, from their heartbeats")
    command(verbs, "list", worker_list, "list the workers")
    command(verbs, "info", worker_info, "show one worker with its recent log lines").add_argument("worker_id")

    verbs = group("config", "queue configurations")
    command(verbs, "list", config_list, "list the queue configurations")
    command(verbs, "reload", config_reload, "make the server re-read its YAML directory")
    p = command(verbs, "create", config_create, "create queue configs from a YAML file or from flags")
    p.add_argument("-f", "--file", help="YAML file: a 'queues:' map as in config/*.yaml, or one queue with 'name:'")
    p.add_argument("--name", help="queue name")
    p.add_argument("--priority", type=_positive_int, help="queue priority (default 1)")
    p.add_argument("--git-url", help="git repository of the worker code")
    p.add_argument("--branch", help="git branch (default main)")
    p.add_argument("--startup-cmd", help="command that starts the worker's process")
    p.add_argument("--mode", choices=("long_running", "one_shot"), help="default long_running")
    p.add_argument("--code-path", help="directory of the code inside the repository")
    p.add_argument("--force", action="store_true", help="replace configs that exist")
    p = command(verbs, "remove", config_remove, "delete a queue configuration (its tasks stay)")
    p.add_argument("config_name", nargs="?", metavar="NAME")
    p.add_argument("--name", dest="name_flag", help=argparse.SUPPRESS)
    p = command(verbs, "validate", config_validate, "check a directory of YAML configs locally (no server)",
                remote=False)
    p.add_argument("--dir", default="config", help="directory of *.yaml files (default config)")

    verbs = group("vault", "vaults of secrets handed to workers")
    command(verbs, "list", vault_list, "list the vaults")
    p = command(verbs, "create", vault_create, "create a vault")
    p.add_argument("vault", metavar="NAME")
    p.add_argument("-d", "--description", default="", help="what the vault is for")
    p = command(verbs, "show", vault_show, "show a vault and its entries (secrets masked)")
    p.add_argument("vault", metavar="NAME")
    p = command(verbs, "delete", vault_delete, "delete a vault and all its entries (asks first)")
    p.add_argument("vault", metavar="NAME")
    p.add_argument("--force", action="store_true", help="do not ask for confirmation")
    p = command(verbs, "set", vault_set, "create or replace an entry")
    p.add_argument("vault", metavar="VAULT")
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE", help="the value, or - to read it from stdin")
    p.add_argument("--no-secret", action="store_true", help="store it as not secret: shown unmasked")
    p = command(verbs, "unset", vault_unset, "remove an entry")
    p.add_argument("vault", metavar="VAULT")
    p.add_argument("key", metavar="KEY")
    p = command(verbs, "entries", vault_entries, "list a vault's entries (secrets masked)")
    p.add_argument("vault", metavar="VAULT")

    p = command(nouns, "login", login, "save a server URL and API key as a profile (-s URL [-k KEY])",
                remote=False, json_out=False)
    p.add_argument("-n", "--name", dest="profile", default="default", help="profile name (default 'default')")
    p = command(nouns, "logout", logout, "remove a saved profile", remote=False, json_out=False)
    which = p.add_mutually_exclusive_group()
    which.add_argument("-n", "--name", dest="profile", help="profile to remove (default: the current one)")
    which.add_argument("--all", action="store_true", help="remove every saved profile")
    verbs = group("auth", "saved profiles")
    command(verbs, "status", auth_status, "show the current profile and what is in use", remote=False)
    command(verbs, "list", auth_list, "list the saved profiles", remote=False)
    p = command(verbs, "switch", auth_switch, "make another saved profile current", remote=False, json_out=False)
    p.add_argument("profile", metavar="NAME")

    p = command(nouns, "serve", serve, "start the server with gunicorn (settings: runqy/gunicorn_conf.py)",
                remote=False, json_out=False)
    p.add_argument("gunicorn_args", nargs="*", metavar="-- GUNICORN_ARGS", help="passed on to gunicorn after --")
    return root


def _usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    parser.print_help(sys.stderr)
    return USAGE


def _report(exc: BaseException) -> int:
    """Print an error on stderr; its exit code."""
    if isinstance(exc, ServerRefused):
        _eprint(*("Error: %s" % m for m in exc.messages))
        if exc.status == 401:
            _eprint("The API key comes from -k/--api-key, RUNQY_API_KEY or the profile saved by 'runqy login'.")
        return REFUSED
    if isinstance(exc, Refused):
        _eprint(*("Error: %s" % m for m in exc.messages))
        return REFUSED
    if isinstance(exc, (UsageError, InvalidServer)):
        _eprint("runqy: error: %s" % exc)
        return USAGE
    _eprint("Error: %s" % exc)
    return UNREACHABLE


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
        with AdminClient(url, key, timeout=args.request_timeout or DEFAULT_TIMEOUT) as client:
            return args.run(args, client)
    except (ClientError, UsageError, Refused) as exc:
        return _report(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK


if __name__ == "__main__":
    sys.exit(main())
