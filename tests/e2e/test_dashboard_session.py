"""The dashboard's session over a real gunicorn, as a browser's cookie jar holds it: sign in,
the cookie on the admin API, sign out; and nothing secret in the server's output, the access
log included (runqy/sessions.py, docs/product.md §11)."""

import pytest
import requests

from runqy.sessions import COOKIE
from tests.conftest import ADMIN_KEY, Gunicorn, served_env


@pytest.fixture
def logged(r, redis_server):
    """A gunicorn that logs every request and everything at debug level."""
    process = Gunicorn(served_env(redis_server, RUNQY_ACCESS_LOG="-", RUNQY_LOG_LEVEL="debug"), workers=1)
    yield process
    process.stop()


@pytest.mark.e2e
def test_a_session_signs_in_acts_and_signs_out_and_leaves_no_secret_in_the_log(logged):
    origin = {"Origin": logged.url}
    browser = requests.Session()

    signed_in = browser.post(logged.url + "/monitoring/session", json={"api_key": ADMIN_KEY}, headers=origin,
                             timeout=5)
    assert signed_in.status_code == 200, signed_in.text
    session_id, token = browser.cookies[COOKIE], signed_in.json()["csrf_token"]
    change = {**origin, "X-CSRF-Token": token}

    assert browser.get(logged.url + "/api/cli/queues", timeout=5).status_code == 200
    assert browser.post(logged.url + "/api/cli/queues/simple/pause", headers=change, timeout=5).status_code == 200
    forged = browser.post(logged.url + "/api/cli/queues/simple/unpause", timeout=5,
                          headers={"Origin": "http://evil.example", "X-CSRF-Token": token})
    assert forged.status_code == 403
    assert browser.get(logged.url + "/api/cli/queues/simple", timeout=5).json()["paused"] is True
    assert browser.delete(logged.url + "/monitoring/session", headers=change, timeout=5).status_code == 204
    assert COOKIE not in browser.cookies
    replayed = requests.get(logged.url + "/api/cli/queues", cookies={COOKIE: session_id}, timeout=5)
    assert replayed.status_code == 401

    output = logged.output()
    assert "POST /monitoring/session" in output  # the access log is on
    for secret in (ADMIN_KEY, session_id, token):
        assert secret not in output
