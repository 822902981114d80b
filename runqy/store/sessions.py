"""Dashboard sessions (runqy.sessions): one key each, found by the digest of the cookie's id."""

from runqy import keys
from runqy.store.plumbing import Plumbing


class Sessions:
    def __init__(self, db: Plumbing):
        self._db = db

    def create(self, id_digest: str, record: bytes, ttl: int) -> None:
        self._db.client.set(keys.session(id_digest), record, ex=ttl)

    def touch(self, id_digest: str, ttl: int) -> bytes | None:
        """The session's record, its expiry pushed back to ``ttl`` seconds from now (one
        round trip); None when it has ended."""
        return self._db.client.getex(keys.session(id_digest), ex=ttl)

    def delete(self, id_digest: str) -> bool:
        return bool(self._db.client.delete(keys.session(id_digest)))
