"""Liveness and readiness: GET /health and GET /healthz (runqy/resources/health.py)."""


def test_health_is_public_and_ok(client):
    res = client.simulate_get("/health")
    assert res.status_code == 200
    assert res.json == {"status": "ok"}


def test_healthz_is_public_and_reports_redis_up(client, r):
    r.set("probe", "1")
    res = client.simulate_get("/healthz")
    assert res.status_code == 200
    assert res.json == {"status": "ok", "redis": True}
    assert r.get("probe") == b"1"
