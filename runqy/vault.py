"""Vault encryption: AES-256-GCM with the master key of ``RUNQY_VAULT_MASTER_KEY``.

Every value gets a fresh 96-bit nonce and is bound to its vault and key as
associated data, so a ciphertext copied to another entry does not decrypt.
Stored form: base64(nonce || ciphertext+tag). Nothing here talks to Redis itself:
:func:`deployment_secrets` reads through the store it is given.
"""

import base64
import binascii
import os
import re
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runqy.errors import Conflict, Unavailable, ValidationError

if TYPE_CHECKING:
    from runqy.store.vaults import Vaults

GENERATE = "python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'"
_NONCE = 12
_CHECK_KEY = ":check"
#: A git token of the form vault://<vault>/<key> names a vault entry.
VAULT_REF = "vault://"

#: Entry keys become environment variables of the worker's child process: these
#: would change how it finds programs, libraries or its Python environment.
RESERVED_KEYS = frozenset((
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "TMPDIR", "IFS", "ENV", "BASH_ENV",
    "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONEXECUTABLE",
    "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "PYTHONPLATLIBDIR", "PYTHONINSPECT",
))
RESERVED_PREFIXES = ("LD_", "DYLD_")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def check_entry_key(key: str) -> None:
    """Refuse keys that are not environment variable names or would override the runtime's own."""
    if not _ENV_NAME.fullmatch(key):
        raise ValidationError("key: %r is not a valid environment variable name "
                              "(a letter or '_', then up to 127 letters, digits or '_')" % key[:64])
    upper = key.upper()
    if upper in RESERVED_KEYS or upper.startswith(RESERVED_PREFIXES):
        raise ValidationError("key: %s is reserved: it would override the worker process's own environment" % key)


def _bound_to(vault: str, key: str) -> bytes:
    """The associated data that ties a sealed value to its vault and key."""
    return ("%s/%s" % (vault, key)).encode()


def mask(value: str) -> str:
    """``sk****yz`` for longer values, ``****`` for 4 characters or fewer."""
    return "****" if len(value) <= 4 else value[:2] + "****" + value[-2:]


class Cipher:
    """Encrypts and decrypts vault values; raises Unavailable when vaults are off."""

    def __init__(self, master_key: str):
        self._aead = None
        self.problem = ""
        if not master_key:
            self.problem = "vaults are disabled: set RUNQY_VAULT_MASTER_KEY to a base64-encoded 32-byte key"
        else:
            try:
                raw = base64.b64decode(master_key, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                self.problem = "RUNQY_VAULT_MASTER_KEY is not a base64-encoded 32-byte key; vaults are disabled"
            else:
                self._aead = AESGCM(raw)
        if self.problem:
            self.problem += " (generate one with: %s)" % GENERATE

    @property
    def enabled(self) -> bool:
        return self._aead is not None

    def require(self) -> AESGCM:
        if self._aead is None:
            raise Unavailable(self.problem)
        return self._aead

    def encrypt(self, vault: str, key: str, value: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self.require().encrypt(nonce, value.encode(), _bound_to(vault, key))
        return base64.b64encode(nonce + sealed).decode()

    def decrypt(self, vault: str, key: str, stored: str) -> str:
        aead = self.require()
        try:
            blob = base64.b64decode(stored)
            return aead.decrypt(blob[:_NONCE], blob[_NONCE:], _bound_to(vault, key)).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise Unavailable("cannot decrypt entry %s of vault %s: RUNQY_VAULT_MASTER_KEY is not the key "
                              "its values were written with" % (key, vault)) from None

    def check_value(self, vault: str) -> str:
        """A known value sealed with the master key, kept in the vault's metadata."""
        return self.encrypt(vault, _CHECK_KEY, _CHECK_KEY)

    def verify(self, vault: str, meta: dict) -> None:
        """Refuse to write into a vault whose values were sealed with another master key."""
        if "check" in meta:
            self.decrypt(vault, _CHECK_KEY, meta["check"])


def deployment_secrets(vaults: "Vaults", cipher: Cipher, queue: str,
                       deployment: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The register answer's ``vaults`` and ``git_token`` for one queue's deployment.

    ``vaults`` merges the decrypted entries of every vault the deployment names,
    later vaults overriding earlier keys; a ``git_token`` of the form
    ``vault://<vault>/<key>`` is resolved. Anything missing is an error, never a
    partial answer.
    """
    names = list(deployment.get("vaults") or [])
    token = deployment.get("git_token") or ""
    token_ref = token[len(VAULT_REF):].partition("/") if token.startswith(VAULT_REF) else None
    wanted = list(dict.fromkeys(names + ([token_ref[0]] if token_ref else [])))
    if not wanted:
        return {}, token
    if not cipher.enabled:
        raise Unavailable("queue %s needs vaults %s, but %s" % (queue, ", ".join(wanted), cipher.problem))
    found = dict(zip(wanted, vaults.get_many(wanted)))
    missing = sorted(name for name, entries in found.items() if entries is None)
    if missing:
        raise Conflict("queue %s names vaults that do not exist: %s" % (queue, ", ".join(missing)))
    merged = {}
    for name in names:
        for key, stored in sorted(found[name].items()):
            merged[key] = cipher.decrypt(name, key, stored["value"])
    if token_ref:
        vault, _, key = token_ref
        if key not in found[vault]:
            raise Conflict("queue %s: git_token refers to %s%s/%s, which does not exist"
                           % (queue, VAULT_REF, vault, key))
        token = cipher.decrypt(vault, key, found[vault][key]["value"])
    return merged, token
