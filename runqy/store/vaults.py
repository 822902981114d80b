"""Vaults of secrets (docs/product.md §7). A vault is one hash: ``:meta`` holds its
description, ``e:<KEY>`` one entry each, with the value already encrypted by runqy.vault."""

import json
from typing import Any, Sequence

from runqy import keys
from runqy.errors import EntryNotFound, VaultExists, VaultNotFound
from runqy.store.plumbing import Plumbing
from runqy.store.records import rfc3339, vault_entries


class Vaults:
    def __init__(self, db: Plumbing):
        self._db = db

    def all(self) -> list[tuple[dict[str, Any], int]]:
        """Every vault's metadata with its number of entries."""
        client = self._db.client
        names = sorted(n.decode() for n in client.smembers(keys.VAULTS))
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.hget(keys.vault(name), keys.VAULT_META)
            pipe.hlen(keys.vault(name))
        replies = pipe.execute()
        return [(json.loads(meta), size - 1) for meta, size in zip(replies[::2], replies[1::2]) if meta]

    def create(self, name: str, description: str, check: str) -> dict[str, Any]:
        """Create an empty vault; ``check`` is a value sealed with the master key."""
        meta = {"name": name, "description": description, "created_at": rfc3339(self._db.now()), "check": check}
        if not self._db.client.hsetnx(keys.vault(name), keys.VAULT_META, json.dumps(meta)):
            raise VaultExists(name)
        self._db.client.sadd(keys.VAULTS, name)
        return meta

    def meta(self, name: str) -> dict[str, Any]:
        meta = self._db.client.hget(keys.vault(name), keys.VAULT_META)
        if meta is None:
            raise VaultNotFound(name)
        return json.loads(meta)

    def get(self, name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """A vault's metadata and its entries by key (values still encrypted)."""
        fields = self._db.client.hgetall(keys.vault(name))
        entries = vault_entries(fields)
        if entries is None:
            raise VaultNotFound(name)
        return json.loads(fields[keys.VAULT_META.encode()]), dict(sorted(entries.items()))

    def get_many(self, names: Sequence[str]) -> list[dict[str, dict[str, Any]] | None]:
        """The entries of several vaults in one pipeline, in order; None for a missing vault."""
        pipe = self._db.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.vault(name))
        return [vault_entries(fields) for fields in pipe.execute()]

    def delete(self, name: str) -> None:
        pipe = self._db.client.pipeline(transaction=True)
        pipe.delete(keys.vault(name))
        pipe.srem(keys.VAULTS, name)
        if not pipe.execute()[0]:
            raise VaultNotFound(name)

    def put_entry(self, name: str, key: str, entry: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Create or replace an entry: (True when it is new, the entry as stored)."""
        entry = {**entry, "updated_at": rfc3339(self._db.now())}
        code = self._db.script("vault_put_entry", [keys.vault(name)],
                               [keys.VAULT_META, keys.vault_entry_field(key), json.dumps(entry)],
                               {-1: lambda _: VaultNotFound(name)})
        return bool(code), entry

    def delete_entry(self, name: str, key: str) -> None:
        pipe = self._db.client.pipeline(transaction=False)
        pipe.exists(keys.vault(name))
        pipe.hdel(keys.vault(name), keys.vault_entry_field(key))
        exists, removed = pipe.execute()
        if not exists:
            raise VaultNotFound(name)
        if not removed:
            raise EntryNotFound(name, key)
