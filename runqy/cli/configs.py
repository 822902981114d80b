"""``runqy config``: list, reload, create, remove, and validate without a server."""

import argparse
from pathlib import Path
from typing import Any

from runqy import defaults
from runqy.cli.errors import OK, REFUSED, Refused, UsageError
from runqy.cli.output import emit, fail, listing
from runqy.cli.parsing import Commands, positive_int
from runqy.client import AdminClient, ServerRefused


def register(commands: Commands) -> None:
    config = commands.group("config", "queue configurations")
    config.command("list", config_list, "list the queue configurations", example="runqy config list")
    config.command("reload", config_reload, "make the server re-read its YAML directory", example="runqy config reload")
    p = config.command("create", config_create, "create queue configs from a YAML file or from flags",
                       example=("runqy config create -f queues.yaml --force",
                                "runqy config create --name resize --git-url https://github.com/example/resize.git "
                                "--startup-cmd 'python main.py'"))
    p.add_argument("-f", "--file", help="YAML file: a 'queues:' map as in config/*.yaml, or one queue with 'name:'")
    p.add_argument("--name", help="queue name")
    p.add_argument("--priority", type=positive_int, help="queue priority (default %d)" % defaults.PRIORITY)
    p.add_argument("--git-url", help="git repository of the worker code")
    p.add_argument("--branch", help="git branch (default %s)" % defaults.BRANCH)
    p.add_argument("--startup-cmd", help="command that starts the worker's process")
    p.add_argument("--mode", choices=("long_running", "one_shot"), help="default %s" % defaults.MODE)
    p.add_argument("--code-path", help="directory of the code inside the repository")
    p.add_argument("--force", action="store_true", help="replace configs that exist")
    p = config.command("remove", config_remove, "delete a queue configuration (its tasks stay)",
                       example="runqy config remove resize")
    p.add_argument("config_name", nargs="?", metavar="NAME")
    p.add_argument("--name", dest="name_flag", help=argparse.SUPPRESS)
    p = config.command("validate", config_validate, "check a directory of YAML configs locally (no server)",
                       remote=False, example=("runqy config validate", "runqy config validate --dir /etc/runqy"))
    p.add_argument("--dir", default=defaults.CONFIG_DIR,
                   help="directory of *.yaml files (default %s)" % defaults.CONFIG_DIR)


def config_list(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.configs(), _show_configs)
    return OK


def _show_configs(answer: dict) -> None:
    listing(answer["configs"], "No queue configurations found.", ("NAME", "PRIORITY", "MODE", "GIT_URL"),
            lambda c: (c["name"], c["priority"], c["mode"], c["deployment"].get("git_url")))


def config_reload(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.reload_configs()
    emit(args, answer, _show_reloaded)
    errors = [m for _, messages in sorted(answer.get("errors", {}).items()) for m in messages]
    if errors:
        fail(errors, "A file with errors changed nothing: fix it in the server's config directory and run "
                     "'runqy config reload' again.")
        return REFUSED
    return OK


def _show_reloaded(answer: dict) -> None:
    print("Reloaded %d queue configuration(s):" % answer["count"])
    for name in answer["loaded"]:
        print("  - %s" % name)


_FILE_HINT = "-f names a YAML file: a 'queues:' map of queue configs as in config/*.yaml, or one queue with 'name:'."


def _configs_from_file(path: Path) -> list[dict[str, Any]]:
    """The API bodies of a YAML file: a ``queues:`` map (as in config/*.yaml) or one queue with ``name:``.

    The file is checked with the server's own schema first, so that a bad file changes nothing.
    """
    import yaml

    from runqy import config
    from runqy.errors import ConfigError

    if not path.is_file():
        raise UsageError("%s is not a file" % path, hint=_FILE_HINT)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and "queues" in document:
            config.load_file(path)
            return [{**entry, "name": name} for name, entry in document["queues"].items()]
        if isinstance(document, dict) and "name" in document:
            config.queue_from_body(document)
            return [document]
    except ConfigError as exc:
        raise Refused(*("%s: %s" % (path, m) if not m.startswith(str(path)) else m for m in exc.messages),
                      hint="Nothing was created: fix the file and run the command again.") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise Refused("%s: cannot read YAML: %s" % (path, " ".join(str(exc).split())), hint=_FILE_HINT) from None
    raise Refused("%s: not a queue config file" % path, hint=_FILE_HINT)


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
    emit(args, answers, _show_created)
    if errors:
        fail(errors, "The configs with errors were not created: fix them and run the command again.")
        return REFUSED
    return OK


def _show_created(answers: list[dict]) -> None:
    for verb, created in (("Created", True), ("Updated", False)):
        names = [a["config"]["name"] for a in answers if a["created"] is created]
        if names:
            print("%s %d queue configuration(s):" % (verb, len(names)))
            print("\n".join("  - %s" % n for n in names))


def config_remove(args: argparse.Namespace, client: AdminClient) -> int:
    name = args.config_name or args.name_flag
    if not name or (args.config_name and args.name_flag and args.config_name != args.name_flag):
        raise UsageError("config remove needs one queue name: runqy config remove NAME")
    emit(args, client.delete_config(name),
         lambda _: print("Queue config '%s' deleted successfully (its tasks stay in Redis)." % name))
    return OK


def config_validate(args: argparse.Namespace) -> int:
    """Check a directory of YAML configs with the server's schema; no server needed."""
    from runqy import config

    root = Path(args.dir)
    if not root.is_dir():
        raise UsageError("%s is not a directory (looked in %s%s)"
                         % (root, root.absolute(), ", the default" if args.dir == defaults.CONFIG_DIR else ""),
                         hint="Point it at the directory of your queue configs' *.yaml files: "
                              "runqy config validate --dir DIR")
    queues, failures = config.load_dir(root)
    answer = {"valid": not failures, "queues": queues, "errors": failures}
    emit(args, answer, lambda _: _show_checked(root, answer))
    return REFUSED if failures else OK


def _show_checked(root: Path, answer: dict) -> None:
    """Failures on stderr; else each sub-queue with its priority."""
    from runqy import config

    queues, failures = answer["queues"], answer["errors"]
    if failures:
        fail((m for _, messages in sorted(failures.items()) for m in messages),
             "Validation failed: %d file(s) with errors. Fix them and run 'runqy config validate' again."
             % len(failures))
    elif not queues:
        print("No queue configurations found in %s." % root)
    else:
        print("Validated %s:" % root)
        subs = [item for _, q in sorted(queues.items()) for item in config.sub_queues(q).items()]
        for full, priority in subs:
            print("  - %s (priority=%d)" % (full, priority))
        print("\nTotal: %d queue(s), %d sub-queue(s)" % (len(queues), len(subs)))
        print("Validation successful!")
