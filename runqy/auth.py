"""API keys and roles (docs/product.md §2): admin, worker and client keys, and the dashboard's
session cookie, which stands for the admin key (runqy.sessions)."""

import hmac
from typing import Any

import falcon

from runqy.config import Settings
from runqy.errors import Forbidden, Unauthorized
from runqy.sessions import SAFE_METHODS, Sessions, cookie_of

ADMIN, WORKER, CLIENT = "admin", "worker", "client"


def presented_key(req: falcon.Request) -> str:
    """The key from ``Authorization: Bearer <key>``, else from ``X-API-Key``."""
    auth = req.get_header("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return (req.get_header("X-API-Key") or "").strip()


class AuthMiddleware:
    """Checks every request against the ``auth_roles`` of the resource it reaches.

    A resource without ``auth_roles`` is public. Every configured key is compared,
    in constant time, whatever matches first. A request with no key may carry a
    dashboard session instead (when ``sessions`` is given: the dashboard is on).
    """

    def __init__(self, settings: Settings, sessions: Sessions | None = None):
        self._sessions = sessions
        self._keys = [(role, key.encode()) for role, key in
                      ((ADMIN, settings.api_key), (WORKER, settings.worker_api_key),
                       (CLIENT, settings.client_api_key)) if key]

    def role_of(self, key: str) -> str | None:
        presented = key.encode()
        role = None
        for name, expected in self._keys:
            if hmac.compare_digest(presented, expected) and role is None:
                role = name
        return role

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        allowed = getattr(resource, "auth_roles", None)
        if allowed is None or req.method == "OPTIONS":
            return
        key = presented_key(req)
        session_id = cookie_of(req) if not key and self._sessions else None
        if session_id:
            self._sessions.authorize(req, session_id)
            if self._sessions.read_only and req.method not in SAFE_METHODS:
                raise Forbidden("the dashboard is read-only (the server runs with RUNQY_DASHBOARD_READ_ONLY=true)")
            role = ADMIN
        elif not key:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        else:
            role = self.role_of(key)
        if role is None:
            raise Unauthorized("invalid API key")
        if role not in allowed:
            raise Forbidden("the %s key may not call %s %s" % (role, req.method, req.uri_template or req.path))
        req.context.role = role
