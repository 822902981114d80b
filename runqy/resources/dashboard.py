"""The monitoring dashboard: its page and assets at /monitoring, and its sign-in at
/monitoring/session (runqy.sessions). The page calls the admin API like any client.

The page, its script and its style are the files of ``runqy/dashboard``, shipped in the
package and read once; nothing comes from another host, and the Content-Security-Policy
says so to the browser as well.
"""

import re
from pathlib import Path

import falcon

from runqy import auth
from runqy.errors import Forbidden, NotFound, Unauthorized
from runqy.resources import read_json
from runqy.sessions import Sessions, check_origin, clear_cookie, cookie_of, set_cookie

DASHBOARD_DIR = Path(__file__).parent.parent / "dashboard"
#: A path prefix a proxy may serve runqy under: segments of URL-safe characters.
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_HEADERS = {
    # only this server's own scripts, styles and API (the favicon is a data: URL); no inline
    # script or style, no framing (clickjacking), no <base>
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _send(resp: falcon.Response, data: bytes, content_type: str, cache: str) -> None:
    resp.content_type = content_type
    resp.data = data
    resp.set_headers({**_HEADERS, "Cache-Control": cache})


class Page:
    """GET /monitoring and /monitoring/{page}: the page, whatever the page's own path (it
    routes in the browser, so that every view has a URL to bookmark and share).

    Behind a proxy that serves runqy under a path prefix and says so in ``X-Forwarded-Prefix``,
    the page's links to itself and its assets carry the prefix (the script finds it in its own
    URL for the API's)."""

    def __init__(self) -> None:
        self._index = (DASHBOARD_DIR / "index.html").read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response, page: str = "") -> None:
        prefix = (req.get_header("X-Forwarded-Prefix") or "").rstrip("/")
        index = self._index
        if prefix and _PREFIX.fullmatch(prefix):
            index = index.replace(b'"/monitoring', b'"' + prefix.encode() + b"/monitoring")
        _send(resp, index, falcon.MEDIA_HTML, "no-cache")


class Asset:
    """GET /monitoring/assets/{name}: the page's script and style."""

    def __init__(self) -> None:
        self._files = {path.name: (path.read_bytes(), ASSET_TYPES[path.suffix])
                       for path in DASHBOARD_DIR.iterdir() if path.suffix in ASSET_TYPES}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in self._files:
            raise NotFound("no dashboard asset %r" % name[:100])
        _send(resp, *self._files[name], "no-cache")


class Session:
    """/monitoring/session: POST signs in with the admin key, GET tells the page whether it is
    signed in, DELETE signs out."""

    def __init__(self, sessions: Sessions, keys: auth.AuthMiddleware):
        self._sessions = sessions
        self._keys = keys

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        check_origin(req)
        role = self._keys.role_of(read_json(req, "session")["api_key"])
        if role is None:
            raise Unauthorized("invalid API key")
        if role != auth.ADMIN:
            raise Forbidden("the dashboard needs the admin API key (RUNQY_API_KEY), not the %s key" % role)
        session_id, record = self._sessions.open()
        set_cookie(req, resp, session_id)
        resp.set_header("Cache-Control", "no-store")
        resp.media = self._sessions.answer(record)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", "no-store")
        resp.media = self._sessions.answer(self._sessions.find(cookie_of(req) or ""))

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        session_id = cookie_of(req) or ""
        self._sessions.authorize(req, session_id)
        self._sessions.close(session_id)
        clear_cookie(resp)
        resp.status = falcon.HTTP_204


class Off:
    """Every /monitoring path while the dashboard is turned off."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        raise NotFound("the dashboard is turned off on this server (RUNQY_DASHBOARD=false)")

    on_post = on_delete = on_get
