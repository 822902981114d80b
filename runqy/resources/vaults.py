"""Vaults of encrypted secrets: /api/vaults (docs/product.md §7).

Values are decrypted only to be masked here; the register answer is the one
place where they leave the server in clear.
"""

from typing import Any

import falcon

from runqy import validation
from runqy.resources import Resource, read_json
from runqy.store import Store
from runqy.vault import Cipher, check_entry_key, mask


def _entry(cipher: Cipher, vault: str, key: str, stored: dict[str, Any]) -> dict[str, Any]:
    value = cipher.decrypt(vault, key, stored["value"])
    secret = stored.get("is_secret", True)
    return {"key": key, "value": mask(value) if secret else value, "is_secret": secret,
            "updated_at": stored.get("updated_at")}


def _public(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != "check"}


class _VaultResource(Resource):
    def __init__(self, store: Store, cipher: Cipher, roles: frozenset[str]):
        super().__init__(store, roles)
        self._cipher = cipher

    def _name(self, name: str) -> str:
        """Vault routes answer 503 while vaults are off, before anything else is checked."""
        self._cipher.require()
        validation.check_param("name_part", name, "vault")
        return name

    def _entries(self, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        meta, entries = self._store.vaults.get(self._name(name))
        self._cipher.verify(name, meta)
        return meta, [_entry(self._cipher, name, key, stored) for key, stored in entries.items()]


class Vaults(_VaultResource):
    """GET lists the vaults; POST creates one."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._cipher.require()
        vaults = [{**_public(meta), "entry_count": count} for meta, count in self._store.vaults.all()]
        resp.media = {"vaults": vaults, "count": len(vaults)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._cipher.require()
        body = read_json(req, "vault")
        meta = self._store.vaults.create(body["name"], body.get("description", ""),
                                        self._cipher.check_value(body["name"]))
        resp.status = falcon.HTTP_201
        resp.media = {**_public(meta), "entry_count": 0}


class Vault(_VaultResource):
    """GET shows one vault with its (masked) entries; DELETE removes it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        meta, entries = self._entries(name)
        resp.media = {**_public(meta), "entry_count": len(entries), "entries": entries}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._store.vaults.delete(self._name(name))
        resp.media = {"name": name, "deleted": True}


class VaultEntries(_VaultResource):
    """GET lists a vault's entries (secrets masked); POST creates or replaces one."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        _, entries = self._entries(name)
        resp.media = {"vault": name, "entries": entries, "count": len(entries)}

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._cipher.verify(name, self._store.vaults.meta(self._name(name)))
        body = read_json(req, "vault_entry")
        check_entry_key(body["key"])
        secret = body.get("is_secret", True)
        stored = {"value": self._cipher.encrypt(name, body["key"], body["value"]), "is_secret": secret}
        created, stored = self._store.vaults.put_entry(name, body["key"], stored)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"vault": name, "created": created, **_entry(self._cipher, name, body["key"], stored)}


class VaultEntry(_VaultResource):
    """DELETE /api/vaults/{name}/entries/{key}."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str, key: str) -> None:
        self._store.vaults.delete_entry(self._name(name), key)
        resp.media = {"vault": name, "key": key, "deleted": True}

