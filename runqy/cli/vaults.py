"""``runqy vault``: vaults of secrets handed to workers; secret values are only ever shown masked."""

import argparse
import sys

from runqy.cli.errors import OK, UsageError
from runqy.cli.output import cut, emit, listing, yes_no
from runqy.cli.parsing import Commands
from runqy.client import AdminClient


def register(commands: Commands) -> None:
    vault = commands.group("vault", "vaults of secrets handed to workers")
    vault.command("list", vault_list, "list the vaults", example="runqy vault list")
    p = vault.command("create", vault_create, "create a vault",
                      example="runqy vault create ml-keys -d 'model API keys'")
    p.add_argument("vault", metavar="NAME")
    p.add_argument("-d", "--description", default="", help="what the vault is for")
    p = vault.command("show", vault_show, "show a vault and its entries (secrets masked)",
                      example="runqy vault show ml-keys")
    p.add_argument("vault", metavar="NAME")
    p = vault.command("delete", vault_delete, "delete a vault and all its entries (asks first)",
                      example=("runqy vault delete ml-keys", "runqy vault delete ml-keys --force"))
    p.add_argument("vault", metavar="NAME")
    p.add_argument("--force", action="store_true", help="do not ask for confirmation")
    p = vault.command("set", vault_set, "create or replace an entry",
                      example=("runqy vault set ml-keys OPENAI_API_KEY sk-...",
                               "runqy vault set ml-keys LOG_LEVEL debug --no-secret"))
    p.add_argument("vault", metavar="VAULT")
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE", help="the value, or - to read it from stdin")
    p.add_argument("--no-secret", action="store_true", help="store it as not secret: shown unmasked")
    p = vault.command("unset", vault_unset, "remove an entry", example="runqy vault unset ml-keys LOG_LEVEL")
    p.add_argument("vault", metavar="VAULT")
    p.add_argument("key", metavar="KEY")
    p = vault.command("entries", vault_entries, "list a vault's entries (secrets masked)",
                      example="runqy vault entries ml-keys")
    p.add_argument("vault", metavar="VAULT")


def vault_list(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.vaults(), _show_vaults)
    return OK


def _show_vaults(answer: dict) -> None:
    listing(answer["vaults"], "No vaults found.", ("NAME", "DESCRIPTION", "ENTRIES"),
            lambda v: (v["name"], cut(v.get("description") or "", 40), v["entry_count"]))


def vault_create(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.create_vault(args.vault, args.description),
         lambda _: print("Vault '%s' created successfully." % args.vault))
    return OK


def _show_entries(entries: list[dict], updated: bool) -> None:
    """Entries as the server gives them: secret values already masked."""
    listing(entries, "No entries.", ("KEY", "VALUE", "SECRET") + (("UPDATED",) if updated else ()),
            lambda e: [e["key"], e["value"], yes_no(e["is_secret"])] + ([e.get("updated_at")] if updated else []))


def vault_show(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.vault(args.vault), _show_vault)
    return OK


def _show_vault(v: dict) -> None:
    print("Vault: %s" % v["name"])
    if v.get("description"):
        print("Description: %s" % v["description"])
    print("Created: %s" % v.get("created_at"))
    print()
    if v["entries"]:
        print("Entries (%d):" % len(v["entries"]))
    _show_entries(v["entries"], updated=False)


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
    emit(args, client.delete_vault(args.vault), lambda _: print("Vault '%s' deleted successfully." % args.vault))
    return OK


def vault_set(args: argparse.Namespace, client: AdminClient) -> int:
    value = args.value
    if value == "-":
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
    emit(args, client.set_entry(args.vault, args.key, value, secret=not args.no_secret),
         lambda _: print("Entry '%s' set in vault '%s'." % (args.key, args.vault)))
    return OK


def vault_unset(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.unset_entry(args.vault, args.key),
         lambda _: print("Entry '%s' removed from vault '%s'." % (args.key, args.vault)))
    return OK


def vault_entries(args: argparse.Namespace, client: AdminClient) -> int:
    emit(args, client.entries(args.vault), lambda answer: _show_entries(answer["entries"], updated=True))
    return OK
