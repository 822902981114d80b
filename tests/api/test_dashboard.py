"""The dashboard's server side (runqy/resources/dashboard.py, runqy/sessions.py): the page and
its assets, signing in for a session cookie, the cookie as the admin role on the admin API,
the cross-site checks, read-only and turned-off dashboards."""

import dataclasses
import hashlib

import falcon.testing
import pytest

from runqy import defaults, keys
from runqy.app import create_app
from runqy.sessions import COOKIE
from runqy.store import Store, connect
from tests.conftest import ADMIN_KEY, CLIENT_KEY, WORKER_KEY, snapshot
from tests.helpers import NOW, errors_of

HOST = "runqy.example:3000"
SAME_SITE = {"Host": HOST, "Origin": "http://" + HOST}


def sign_in(client, key=ADMIN_KEY, headers=SAME_SITE):
    return client.simulate_post("/monitoring/session", json={"api_key": key}, headers=headers)


@pytest.fixture
def session(client):
    """A signed-in session: (cookie value, CSRF token)."""
    answer = sign_in(client)
    assert answer.status_code == 200, answer.text
    return answer.cookies[COOKIE].value, answer.json["csrf_token"]


def as_page(client, method, path, session, *, token=None, headers=SAME_SITE, **kwargs):
    """A request as the page sends it: the cookie, and for a change, the CSRF token."""
    cookie, csrf = session
    sent = dict(headers, **({"X-CSRF-Token": csrf if token is None else token} if method != "GET" else {}))
    return client.simulate_request(method, path, cookies={COOKIE: cookie}, headers=sent, **kwargs)


def session_keys(r):
    return [k.decode() for k in r.scan_iter("runqy:session:*")]


# --- the page --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/monitoring", "/monitoring/", "/monitoring/queues/inference.high",
                                  "/monitoring/queues/simple.default/tasks/0b7c7c3e-1", "/monitoring/vaults/x"])
def test_every_dashboard_path_serves_the_page_with_a_strict_content_security_policy(client, path):
    answer = client.simulate_get(path)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert b'src="/monitoring/assets/dashboard.js"' in answer.content
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"


def test_behind_a_proxy_the_page_links_to_itself_and_its_assets_under_the_forwarded_prefix(client):
    page = client.simulate_get("/monitoring/queues/simple", headers={"X-Forwarded-Prefix": "/ops/runqy/"}).text
    hostile = client.simulate_get("/monitoring", headers={"X-Forwarded-Prefix": '/x"><script>'}).text

    assert 'src="/ops/runqy/monitoring/assets/dashboard.js"' in page
    assert 'href="/ops/runqy/monitoring/workers"' in page
    assert '"/monitoring' not in page
    assert hostile == client.simulate_get("/monitoring").text  # not a path: ignored


def test_assets_are_served_with_their_types_and_an_unknown_one_is_a_json_404(client):
    script = client.simulate_get("/monitoring/assets/dashboard.js")
    style = client.simulate_get("/monitoring/assets/dashboard.css")

    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert client.simulate_get("/monitoring/assets/index.html").status_code == 404
    escaped = client.simulate_get("/monitoring/assets/..%2f..%2fsetup.cfg")
    assert escaped.status_code == 404 and "[metadata]" not in escaped.text  # not the file above
    errors_of(escaped)


def test_the_page_loads_nothing_from_another_host(client):
    page = client.simulate_get("/monitoring").text + client.simulate_get("/monitoring/assets/dashboard.css").text
    script = client.simulate_get("/monitoring/assets/dashboard.js").text

    for text in (page, script):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
        assert "//cdn" not in text and "@import" not in text


# --- signing in ------------------------------------------------------------------------------


@pytest.mark.parametrize("key, status", [("wrong", 401), (ADMIN_KEY + "x", 401), (WORKER_KEY, 403), (CLIENT_KEY, 403)])
def test_signing_in_with_anything_but_the_admin_key_is_refused_and_opens_no_session(client, r, key, status):
    before = snapshot(r)
    answer = sign_in(client, key)

    assert answer.status_code == status
    assert COOKIE not in answer.cookies
    assert errors_of(answer)
    assert key not in answer.text
    assert snapshot(r) == before


@pytest.mark.parametrize("body", [{}, {"api_key": ""}, {"api_key": ADMIN_KEY, "more": 1}, [ADMIN_KEY]])
def test_a_malformed_sign_in_is_400(client, body):
    answer = client.simulate_post("/monitoring/session", json=body, headers=SAME_SITE)
    assert answer.status_code == 400
    errors_of(answer)


def test_signing_in_sets_an_httponly_strict_cookie_whose_id_redis_keeps_only_as_a_digest(client, r):
    answer = sign_in(client)

    assert answer.status_code == 200
    cookie = answer.cookies[COOKIE]
    assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/"
    assert not cookie.secure  # plain HTTP here: a Secure cookie would never come back
    assert cookie.max_age is None and cookie.expires is None  # the server's expiry decides
    body = answer.json
    assert set(body) == {"csrf_token", "read_only", "expires_in"}
    assert body["read_only"] is False and body["expires_in"] == defaults.SESSION_TTL
    assert answer.headers["cache-control"] == "no-store"
    (key,) = session_keys(r)
    assert key == keys.session(hashlib.sha256(cookie.value.encode()).hexdigest())
    assert defaults.SESSION_TTL - 5 <= r.ttl(key) <= defaults.SESSION_TTL
    dumped = b"".join(r.dump(k) or b"" for k in r.keys("*"))
    assert cookie.value.encode() not in dumped and ADMIN_KEY.encode() not in dumped


@pytest.mark.parametrize("headers", [{"X-Forwarded-Proto": "https"}, {"Forwarded": "proto=https"}])
def test_the_cookie_is_secure_when_the_page_came_over_https(client, headers):
    answer = sign_in(client, headers={"Host": HOST, **headers})
    assert answer.cookies[COOKIE].secure


def test_signing_in_from_another_site_is_refused(client, r):
    answer = sign_in(client, headers={"Host": HOST, "Origin": "http://evil.example"})
    assert answer.status_code == 403
    assert "cross-site" in errors_of(answer)[0]
    assert session_keys(r) == []


def test_get_session_tells_the_page_whether_it_is_signed_in(client, session):
    signed_in = client.simulate_get("/monitoring/session", cookies={COOKIE: session[0]})
    assert signed_in.status_code == 200 and signed_in.json["csrf_token"] == session[1]

    for cookies in ({}, {COOKIE: "not-a-session"}):
        answer = client.simulate_get("/monitoring/session", cookies=cookies)
        assert answer.status_code == 401
        assert "sign in" in errors_of(answer)[0]


# --- the cookie on the admin API -------------------------------------------------------------


def test_the_cookie_reads_the_admin_api_and_renews_the_session(client, r, session):
    (key,) = session_keys(r)
    r.expire(key, 60)

    answer = as_page(client, "GET", "/api/cli/queues", session)

    assert answer.status_code == 200
    assert "inference.high" in [q["name"] for q in answer.json["queues"]]
    assert r.ttl(key) > defaults.SESSION_TTL - 5


def test_a_change_with_the_cookie_and_the_token_from_the_same_site_is_done(client, r, session):
    answer = as_page(client, "POST", "/api/cli/queues/simple/pause", session)

    assert answer.status_code == 200, answer.text
    assert r.exists(keys.paused("simple.default"))


@pytest.mark.parametrize("token, headers, says", [
    ("", SAME_SITE, "X-CSRF-Token"),
    ("forged", SAME_SITE, "X-CSRF-Token"),
    (None, {"Host": HOST, "Origin": "http://evil.example"}, "cross-site"),
    (None, {"Host": HOST, "Origin": "null"}, "cross-site"),
    (None, {"Host": HOST, "Origin": "http://" + HOST + ".evil.example"}, "cross-site"),
])
def test_a_change_with_the_cookie_from_another_site_is_403_and_changes_nothing(client, r, session, token, headers,
                                                                                says):
    before = snapshot(r)
    for method, path in (("POST", "/api/cli/queues/simple/pause"), ("DELETE", "/api/cli/configs/simple"),
                         ("POST", "/api/cli/configs/reload")):
        answer = as_page(client, method, path, session, token=token, headers=headers)
        assert answer.status_code == 403, (method, path)
        assert says in errors_of(answer)[0]
    assert {k: v for k, v in snapshot(r).items() if not k.startswith(b"runqy:session:")} == \
        {k: v for k, v in before.items() if not k.startswith(b"runqy:session:")}


def test_behind_a_proxy_the_origin_is_compared_with_the_forwarded_host(client, r, session):
    headers = {"Host": "127.0.0.1:3000", "X-Forwarded-Host": "queues.example.com",
               "Origin": "https://queues.example.com"}
    assert as_page(client, "POST", "/api/cli/queues/simple/pause", session, headers=headers).status_code == 200


def test_an_api_key_in_the_request_wins_over_the_cookie(client, session):
    answer = client.simulate_get("/api/cli/queues", cookies={COOKIE: session[0]},
                                 headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401
    assert errors_of(answer) == ["invalid API key"]


def test_a_session_counts_as_the_admin_key_on_the_routes_the_admin_key_may_call(client, r, session):
    answer = as_page(client, "POST", "/queue/add", session, json={"queue": "simple", "data": 1})

    assert answer.status_code == 200, answer.text
    assert r.llen(keys.pending("simple.default")) == 1


def test_an_expired_session_is_401_on_the_api(client, r, session):
    (key,) = session_keys(r)
    r.delete(key)

    answer = as_page(client, "GET", "/api/cli/queues", session)
    assert answer.status_code == 401
    assert "sign in" in errors_of(answer)[0]


def test_a_session_ends_a_day_after_signing_in_however_busy_it_is(settings, store, r):
    day_later = []
    clock = lambda: (day_later[0] if day_later else NOW)  # noqa: E731
    app = falcon.testing.TestClient(create_app(settings, store=Store(connect(settings), clock=clock)))
    answer = sign_in(app)
    session = (answer.cookies[COOKIE].value, answer.json["csrf_token"])
    day_later.append(NOW + defaults.SESSION_MAX_AGE - 1)
    assert as_page(app, "GET", "/api/cli/queues", session).status_code == 200

    day_later[0] = NOW + defaults.SESSION_MAX_AGE
    ended = as_page(app, "GET", "/api/cli/queues", session)

    assert ended.status_code == 401
    assert "24 hours old: sign in again" in errors_of(ended)[0]
    assert session_keys(r) == []


# --- signing out -----------------------------------------------------------------------------


def test_signing_out_ends_the_session_for_every_route_and_clears_the_cookie(client, r, session):
    answer = as_page(client, "DELETE", "/monitoring/session", session)

    assert answer.status_code == 204
    cleared = answer.cookies[COOKIE]
    assert cleared.value == "" and cleared.expires is not None
    assert session_keys(r) == []
    assert as_page(client, "GET", "/api/cli/queues", session).status_code == 401
    assert as_page(client, "GET", "/monitoring/session", session).status_code == 401


def test_signing_out_needs_the_token_too(client, r, session):
    assert as_page(client, "DELETE", "/monitoring/session", session, token="forged").status_code == 403
    assert len(session_keys(r)) == 1


# --- read-only and turned off ----------------------------------------------------------------


@pytest.fixture
def read_only(settings, store):
    return falcon.testing.TestClient(create_app(dataclasses.replace(settings, dashboard_read_only=True), store=store))


def test_a_read_only_dashboard_reads_but_refuses_every_change_and_still_signs_out(read_only, r):
    answer = sign_in(read_only)
    assert answer.json["read_only"] is True
    session = (answer.cookies[COOKIE].value, answer.json["csrf_token"])
    before = snapshot(r)

    assert as_page(read_only, "GET", "/api/cli/queues", session).status_code == 200
    for method, path in (("POST", "/api/cli/queues/simple/pause"), ("POST", "/api/cli/configs/reload"),
                         ("DELETE", "/api/cli/queues/simple.default/tasks?state=archived")):
        refused = as_page(read_only, method, path, session)
        assert refused.status_code == 403
        assert "RUNQY_DASHBOARD_READ_ONLY" in errors_of(refused)[0]
    assert {k: v for k, v in snapshot(r).items() if not k.startswith(b"runqy:session:")} == \
        {k: v for k, v in before.items() if not k.startswith(b"runqy:session:")}
    # the admin key itself is not read-only
    assert read_only.simulate_post("/api/cli/queues/simple/pause",
                                   headers={"Authorization": "Bearer " + ADMIN_KEY}).status_code == 200
    assert as_page(read_only, "DELETE", "/monitoring/session", session).status_code == 204


def test_a_turned_off_dashboard_serves_no_page_and_takes_no_cookie(settings, store, r, session):
    off = falcon.testing.TestClient(create_app(dataclasses.replace(settings, dashboard=False), store=store))

    for method, path in (("GET", "/monitoring"), ("GET", "/monitoring/queues/simple"),
                         ("GET", "/monitoring/assets/dashboard.js"), ("POST", "/monitoring/session")):
        answer = off.simulate_request(method, path, json={"api_key": ADMIN_KEY}, headers=SAME_SITE)
        assert answer.status_code == 404
        assert "RUNQY_DASHBOARD=false" in errors_of(answer)[0]
    # a session opened while it was on is worth nothing now
    answer = off.simulate_get("/api/cli/queues", cookies={COOKIE: session[0]})
    assert answer.status_code == 401
