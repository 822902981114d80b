"""API keys and roles (runqy/auth.py, docs/product.md §2) on the core routes: a missing or
unknown key is 401, a key of another role 403, and a refused call writes nothing."""

import pytest

from runqy import keys
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, CLIENT_KEY, WORKER, WORKER_KEY, snapshot
from tests.helpers import add, enqueue, errors_of

ROUTES = [
    ("POST", "/queue/add", {"queue": "simple", "data": 1}),
    ("POST", "/queue/add-batch", {"queue": "simple", "jobs": [1]}),
    ("GET", "/queue/some-id", None),
    ("GET", "/queue/some-id/simple", None),
    ("POST", "/worker/register", {"queue": "simple"}),
    ("POST", "/api/cli/tasks", {"queue": "simple", "data": 1}),
    ("GET", "/healthz", None),
]


def call(client, method, path, body, headers):
    return client.simulate_request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("method, path, body", [route for route in ROUTES if route[1] != "/healthz"])
def test_missing_key_is_401_with_www_authenticate_and_writes_nothing(client, r, method, path, body):
    before = snapshot(r)
    res = call(client, method, path, body, {})
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == "Bearer"
    assert errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"},
                                     {"Authorization": "Basic " + ADMIN_KEY}, {"Authorization": "Bearer"},
                                     {"Authorization": "Bearer " + ADMIN_KEY + "x"}])
def test_unknown_key_is_401_and_writes_nothing(client, r, headers):
    before = snapshot(r)
    res = add(client, {"queue": "simple", "data": 1}, headers=headers)
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == "Bearer"
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer " + CLIENT_KEY}, {"X-API-Key": CLIENT_KEY}])
def test_bearer_and_x_api_key_both_authenticate(client, r, headers):
    res = add(client, {"queue": "simple", "data": 1}, headers=headers)
    assert res.status_code == 200, res.text
    assert r.llen(keys.pending("simple.default")) == 1


@pytest.mark.parametrize("headers, method, path, body", [
    (WORKER, "POST", "/queue/add", {"queue": "simple", "data": 1}),
    (WORKER, "POST", "/queue/add-batch", {"queue": "simple", "jobs": [1]}),
    (WORKER, "GET", "/queue/some-id", None),
    (WORKER, "POST", "/api/cli/tasks", {"queue": "simple", "data": 1}),
    (CLIENT, "POST", "/worker/register", {"queue": "simple"}),
    (CLIENT, "POST", "/api/cli/tasks", {"queue": "simple", "data": 1}),
])
def test_known_key_on_a_route_of_another_role_is_403_and_writes_nothing(client, r, headers, method, path, body):
    before = snapshot(r)
    res = call(client, method, path, body, headers)
    assert res.status_code == 403
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("headers, method, path, body", [
    (WORKER, "POST", "/worker/register", {"queue": "simple"}),
    (CLIENT, "POST", "/queue/add", {"queue": "simple", "data": 1}),
    (CLIENT, "POST", "/queue/add-batch", {"queue": "simple", "jobs": [1]}),
    (ADMIN, "POST", "/queue/add", {"queue": "simple", "data": 1}),
    (ADMIN, "POST", "/queue/add-batch", {"queue": "simple", "jobs": [1]}),
    (ADMIN, "POST", "/worker/register", {"queue": "simple"}),
    (ADMIN, "POST", "/api/cli/tasks", {"queue": "simple", "data": 1}),
    ({"X-API-Key": WORKER_KEY}, "POST", "/worker/register", {"queue": "simple"}),
])
def test_key_of_an_allowed_role_is_served(client, r, headers, method, path, body):
    res = call(client, method, path, body, headers)
    assert res.status_code == 200, res.text
    if path != "/worker/register":
        assert r.llen(keys.pending("simple.default")) == 1


@pytest.mark.parametrize("headers", [ADMIN, CLIENT])
def test_task_status_is_served_to_admin_and_client_keys(client, r, headers):
    (task_id,) = enqueue(client, "inference.high")
    res = client.simulate_get("/queue/" + task_id, headers=headers)
    assert res.status_code == 200 and res.json["info"]["id"] == task_id


def test_health_routes_need_no_key(client, r):
    assert client.simulate_get("/health").status_code == 200
    assert client.simulate_get("/healthz").status_code == 200
