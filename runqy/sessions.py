"""Dashboard sessions: the admin API key exchanged once for a cookie (docs/product.md §11).

The page at /monitoring asks for the admin key once and posts it to /monitoring/session,
which answers with a session: a random id in an ``HttpOnly``, ``SameSite=Strict`` cookie
(``Secure`` over HTTPS) and a CSRF token in the body. Redis keeps the session under the
SHA-256 of its id, so a copy of Redis holds no usable cookie, with an expiry of
SESSION_TTL seconds that every request made with it renews, up to SESSION_MAX_AGE after
signing in; signing out deletes it.

A request that carries the cookie and no API key counts as the admin role, on the same
routes and role checks as the key. One that changes anything must also prove it comes
from the page: the ``X-CSRF-Token`` header holds the session's token (a cross-site form
or fetch cannot read it, nor send that header without a preflight no route answers),
and an ``Origin`` header, which browsers send with every such request, must name this
server. With ``RUNQY_DASHBOARD_READ_ONLY`` a session may only read.
"""

import hashlib
import hmac
import json
import secrets
from urllib.parse import urlsplit

import falcon

from runqy import defaults
from runqy.errors import Forbidden, Unauthorized
from runqy.store import Store

COOKIE = "runqy_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def check_origin(req: falcon.Request) -> None:
    """Refuse a request whose ``Origin`` names another site than the one it was sent to
    (behind a proxy, the host the proxy was asked for)."""
    origin = req.get_header("Origin")
    if origin is None:
        return
    host = req.get_header("X-Forwarded-Host") or req.get_header("Host") or ""
    if urlsplit(origin).netloc.lower() != host.split(",")[0].strip().lower():
        raise Forbidden("cross-site request refused: Origin %s is not this server" % origin[:200])


class Sessions:
    """Opening, finding and closing dashboard sessions; ``read_only`` sessions may only read."""

    def __init__(self, store: Store, read_only: bool, ttl: int = defaults.SESSION_TTL,
                 max_age: int = defaults.SESSION_MAX_AGE):
        self._store = store
        self.read_only = read_only
        self.ttl = ttl
        self.max_age = max_age

    def open(self) -> tuple[str, dict]:
        """A new session: its id (for the cookie only) and its record."""
        session_id = secrets.token_urlsafe(32)
        record = {"csrf_token": secrets.token_urlsafe(32), "created": self._store.db.now()}
        self._store.sessions.create(_digest(session_id), json.dumps(record).encode(), self.ttl)
        return session_id, record

    def find(self, session_id: str) -> dict:
        """The record of a live session, its expiry renewed; Unauthorized when it has ended."""
        raw = self._store.sessions.touch(_digest(session_id), self.ttl) if session_id else None
        if raw is None:
            raise Unauthorized("the dashboard session has ended: sign in again")
        record = json.loads(raw)
        if self._store.db.now() - record["created"] >= self.max_age:
            self.close(session_id)
            raise Unauthorized("the dashboard session is %d hours old: sign in again" % (self.max_age // 3600))
        return record

    def close(self, session_id: str) -> None:
        self._store.sessions.delete(_digest(session_id))

    def authorize(self, req: falcon.Request, session_id: str) -> dict:
        """The session of a request signed in with the cookie; a request that changes anything
        must come from the page (Origin and CSRF token)."""
        record = self.find(session_id)
        if req.method not in SAFE_METHODS:
            check_origin(req)
            token = req.get_header(CSRF_HEADER) or ""
            if not hmac.compare_digest(token.encode(), record["csrf_token"].encode()):
                raise Forbidden("missing or wrong %s header: a request signed in with the dashboard's "
                                "session must come from the dashboard" % CSRF_HEADER)
        return record

    def answer(self, record: dict) -> dict:
        """What the page learns of its session."""
        return {"csrf_token": record["csrf_token"], "read_only": self.read_only, "expires_in": self.ttl}


def set_cookie(req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
    """The session cookie: for the whole server (the page calls /api/...), never readable by
    scripts, never sent cross-site; Secure when the page came over HTTPS."""
    resp.set_cookie(COOKIE, session_id, path="/", http_only=True, same_site="Strict",
                    secure=req.forwarded_scheme == "https")


def clear_cookie(resp: falcon.Response) -> None:
    resp.unset_cookie(COOKIE, path="/", same_site="Strict")


def cookie_of(req: falcon.Request) -> str | None:
    """The session id a request carries, if any."""
    values = req.get_cookie_values(COOKIE)
    return values[0] if values else None
