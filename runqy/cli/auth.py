"""``runqy login``, ``logout`` and ``auth``: the saved profiles, each a server URL and its API key."""

import argparse
import getpass
import os
import sys
from typing import Any

from runqy import defaults
from runqy.cli.credentials import Credentials, connect, resolve
from runqy.cli.errors import OK, Refused, Unreached, UsageError, next_step
from runqy.cli.output import emit, listing
from runqy.cli.parsing import Commands
from runqy.client import ServerRefused, Unreachable, normalize_url
from runqy.vault import mask

LOGIN_HINT = "Use 'runqy login -s <server> -k <api-key>' to save credentials."
_ANYWAY = "To save the profile without asking the server, add --no-check."


def register(commands: Commands) -> None:
    p = commands.command("login", login, "check a server URL and API key with the server, then save them as a "
                         "profile (-s URL [-k KEY])", remote=False, json_out=False,
                         example=("runqy login -s http://localhost:3000 -k \"$RUNQY_API_KEY\"",
                                  "runqy login -s https://runqy.example.com -n prod"))
    p.add_argument("-n", "--name", dest="profile", default=defaults.CLI_PROFILE,
                   help="profile name (default '%s')" % defaults.CLI_PROFILE)
    p.add_argument("--no-check", action="store_true", help="save without asking the server whether the key is right")
    p = commands.command("logout", logout, "remove a saved profile", remote=False, json_out=False,
                         example=("runqy logout", "runqy logout --all"))
    which = p.add_mutually_exclusive_group()
    which.add_argument("-n", "--name", dest="profile", help="profile to remove (default: the current one)")
    which.add_argument("--all", action="store_true", help="remove every saved profile")
    auth = commands.group("auth", "saved profiles")
    auth.command("status", auth_status, "show the current profile and what is in use", remote=False,
                 example="runqy auth status")
    auth.command("list", auth_list, "list the saved profiles", remote=False, example="runqy auth list")
    p = auth.command("switch", auth_switch, "make another saved profile current", remote=False, json_out=False,
                     example="runqy auth switch prod")
    p.add_argument("profile", metavar="NAME")


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
            raise UsageError("an API key is required", hint="Type the server's admin key (its RUNQY_API_KEY), "
                                                            "or give it with -k KEY.")
    store = Credentials.from_env()
    saved = store.load()
    if not args.no_check:
        _check(args, url, key)
    saved["servers"][args.profile] = {"url": url, "api_key": key}
    saved["current"] = args.profile
    store.save(saved)
    if args.no_check:
        print('Saved %s as "%s" without checking the key' % (url, args.profile))
    else:
        print('Logged in to %s (saved as "%s")' % (url, args.profile))
    return OK


def _check(args: argparse.Namespace, url: str, key: str) -> None:
    """Ask the server for one queue's statistics, which only the admin key may read: a key or URL
    that does not work is not saved."""
    with connect(args, url, key) as client:
        try:
            client.queues(limit=1)
        except ServerRefused as exc:
            if exc.status in (401, 403):
                raise Refused(*exc.messages, hint="Nothing was saved. Log in with the server's admin key "
                                                  "(its RUNQY_API_KEY).") from None
            step = next_step(exc.status, exc.messages)
            raise Refused(*exc.messages, hint="Nothing was saved. %s%s" % (step + " " if step else "", _ANYWAY)) \
                from None
        except Unreachable as exc:
            raise Unreached(str(exc), hint="Nothing was saved. Check the URL. " + _ANYWAY) from None


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
        raise Refused("no saved server named '%s'" % name, hint="'runqy auth list' lists the saved profiles.")
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
    url, key, source = resolve(args)
    in_use = {"url": url, "source": source, "api_key": mask(key) if key else None}
    emit(args, {**_masked(saved), "in_use": in_use}, _show_status)
    return OK


def _show_status(answer: dict[str, Any]) -> None:
    """The current profile; and the server in use when a flag or variable overrides it."""
    name, in_use = answer["current"], answer["in_use"]
    profile = answer["servers"].get(name or "")
    if not profile:
        print("Not logged in.")
    else:
        print("Current server: %s" % name)
        print("URL: %s" % profile["url"])
        print("API Key: %s" % profile["api_key"])
    if not profile or not in_use["source"].startswith("profile"):
        print("In use: %s (from %s)%s" % (in_use["url"], in_use["source"], "" if in_use["api_key"] else ", no API key"))
    if not profile:
        print("\n" + LOGIN_HINT)


def auth_list(args: argparse.Namespace) -> int:
    saved = Credentials.from_env().load()
    emit(args, _masked(saved), _show_profiles)
    return OK


def _show_profiles(masked: dict[str, Any]) -> None:
    servers, current = masked["servers"], masked["current"]
    listing(list(servers), "No saved servers.\n\n" + LOGIN_HINT, ("NAME", "URL", "API_KEY", "CURRENT"),
            lambda name: (name, servers[name]["url"], servers[name]["api_key"], "*" if name == current else ""))


def auth_switch(args: argparse.Namespace) -> int:
    store = Credentials.from_env()
    saved = store.load()
    if args.profile not in saved["servers"]:
        names = ", ".join(sorted(saved["servers"])) or "none"
        raise Refused("no saved server named '%s' (saved: %s)" % (args.profile, names),
                      hint="'runqy login -s URL -n %s' saves a profile under that name." % args.profile)
    saved["current"] = args.profile
    store.save(saved)
    print('Switched to "%s"' % args.profile)
    print("URL: %s" % saved["servers"][args.profile]["url"])
    return OK
