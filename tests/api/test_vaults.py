"""Vaults (docs/product.md §7, docs/worker-protocol.md §1.4): the /api/vaults routes, the
AES-256-GCM values at rest in Redis, masking, the register answer's ``vaults``
and ``git_token``, and secrets that never reach an error, an answer or a log.

The routes run on a falcon TestClient built with a fresh master key; the start-up
and log checks run a real gunicorn. After each call the raw Redis hash
``runqy:vault:<name>`` and the index set ``runqy:vaults`` are read back.
"""

import base64
import dataclasses
import json
import os
import secrets

import falcon.testing
import pytest
import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runqy import config as runqy_config
from runqy.app import create_app
from tests.conftest import ADMIN, CLIENT, WORKER, Gunicorn, snapshot
from tests.helpers import errors_of, register

VAULTS = b"runqy:vaults"
REFUSED_KEYS = ["PATH", "HOME", "VIRTUAL_ENV", "PYTHONPATH", "LD_PRELOAD",
                "path", "home", "virtual_env", "pythonpath", "ld_preload"]
DEPLOYMENT = {"git_url": "https://github.com/example/secret-worker.git", "startup_cmd": "python main.py"}


# --- helpers -------------------------------------------------------------------------


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def vault_hash(name: str) -> bytes:
    return b"runqy:vault:" + name.encode()


def secret(label: str) -> str:
    """A value that cannot turn up anywhere by chance."""
    return "sk-%s-%s" % (label, secrets.token_hex(12))


def client_for(settings, store, master_key: str, **changes) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(
        create_app(dataclasses.replace(settings, vault_master_key=master_key, **changes), store=store))


def raw_entry(r, vault: str, key: str) -> dict:
    raw = r.hget(vault_hash(vault), "e:" + key)
    assert raw is not None, "no field e:%s in %s" % (key, vault_hash(vault))
    return json.loads(raw)


def decrypt_raw(r, master_key: str, vault: str, key: str) -> str:
    """Decrypt what Redis holds for one entry with nothing but the master key."""
    blob = base64.b64decode(raw_entry(r, vault, key)["value"], validate=True)
    aead = AESGCM(base64.b64decode(master_key))
    return aead.decrypt(blob[:12], blob[12:], ("%s/%s" % (vault, key)).encode()).decode()


def redis_dump(r) -> bytes:
    """Every key of the database and every value it holds, whatever its type."""
    parts = []
    for key in sorted(r.keys("*")):
        parts.append(key)
        kind = r.type(key).decode()
        if kind == "string":
            parts.append(r.get(key))
        elif kind == "hash":
            for field, value in r.hgetall(key).items():
                parts += [field, value]
        elif kind == "list":
            parts += r.lrange(key, 0, -1)
        elif kind == "set":
            parts += sorted(r.smembers(key))
        elif kind == "zset":
            parts += r.zrange(key, 0, -1)
        else:
            parts.append(r.dump(key))
    return b"\n".join(parts)


def create_vault(api, name: str, description: str = "") -> None:
    res = api.simulate_post("/api/vaults", json={"name": name, "description": description}, headers=ADMIN)
    assert res.status_code == 201, res.text


def put_entry(api, vault: str, key: str, value: str, is_secret: bool | None = None, status: int | None = None):
    body = {"key": key, "value": value}
    if is_secret is not None:
        body["is_secret"] = is_secret
    res = api.simulate_post("/api/vaults/%s/entries" % vault, json=body, headers=ADMIN)
    if status is not None:
        assert res.status_code == status, res.text
    return res


def vault_with(api, name: str, entries: dict[str, str]) -> None:
    create_vault(api, name)
    for key, value in entries.items():
        put_entry(api, name, key, value, status=201)


def add_queue(store, name: str, **deployment) -> None:
    store.configs.put({name: runqy_config.normalize_queue(name, {"deployment": {**DEPLOYMENT, **deployment}})})


@pytest.fixture
def master_key() -> str:
    return new_master_key()


@pytest.fixture
def api(settings, store, master_key) -> falcon.testing.TestClient:
    """The app with vaults enabled on a fresh master key."""
    return client_for(settings, store, master_key)


# --- routes and auth -------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/vaults", None),
    ("POST", "/api/vaults", {"name": "fresh", "description": ""}),
    ("GET", "/api/vaults/prod", None),
    ("DELETE", "/api/vaults/prod", None),
    ("POST", "/api/vaults/prod/entries", {"key": "NEW_KEY", "value": "sk-new-value"}),
    ("GET", "/api/vaults/prod/entries", None),
    ("DELETE", "/api/vaults/prod/entries/API_TOKEN", None),
]


@pytest.mark.parametrize("method, path, body", ROUTES)
@pytest.mark.parametrize("headers, status", [(WORKER, 403), (CLIENT, 403), ({}, 401),
                                             ({"Authorization": "Bearer wrong"}, 401)])
def test_vault_routes_are_admin_only_and_refused_calls_change_nothing(api, r, method, path, body, headers, status):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    before = snapshot(r)
    res = api.simulate_request(method, path, json=body, headers=headers)
    assert res.status_code == status, res.text
    assert "sk-live-abcdefyz" not in res.text and "abcdefyz" not in res.text
    errors_of(res)
    assert snapshot(r) == before


def test_create_vault_is_201_and_writes_its_meta_and_the_index(api, r):
    res = api.simulate_post("/api/vaults", json={"name": "prod", "description": "production secrets"}, headers=ADMIN)
    assert res.status_code == 201, res.text
    assert res.json["name"] == "prod" and res.json["description"] == "production secrets"
    assert res.json["entry_count"] == 0
    assert res.json["created_at"].endswith("Z")
    assert r.smembers(VAULTS) == {b"prod"}
    stored = r.hgetall(vault_hash("prod"))
    assert list(stored) == [b":meta"]
    meta = json.loads(stored[b":meta"])
    assert (meta["name"], meta["description"]) == ("prod", "production secrets")


def test_description_is_optional(api, r):
    res = api.simulate_post("/api/vaults", json={"name": "bare"}, headers=ADMIN)
    assert res.status_code == 201, res.text
    assert json.loads(r.hget(vault_hash("bare"), ":meta"))["description"] == ""


def test_creating_an_existing_vault_is_409_and_keeps_it_unchanged(api, r):
    create_vault(api, "prod", "first")
    put_entry(api, "prod", "API_TOKEN", "sk-live-abcdefyz", status=201)
    before = snapshot(r)
    res = api.simulate_post("/api/vaults", json={"name": "prod", "description": "second"}, headers=ADMIN)
    assert res.status_code == 409, res.text
    assert "prod" in errors_of(res)[0]
    assert snapshot(r) == before


@pytest.mark.parametrize("name", ["", "-prod", "_prod", "a.b", "a/b", "a b", "prod!", "é", "x" * 65, 7, None])
def test_creating_a_vault_with_a_bad_name_is_400_and_writes_nothing(api, r, name):
    before = snapshot(r)
    res = api.simulate_post("/api/vaults", json={"name": name}, headers=ADMIN)
    assert res.status_code == 400, res.text
    assert "$.name" in errors_of(res)[0]
    assert snapshot(r) == before


@pytest.mark.parametrize("body", [{}, {"description": "x"}, {"name": "ok", "extra": 1},
                                  {"name": "ok", "description": 5}, {"name": "ok", "description": "d" * 1025},
                                  ["ok"], "ok"])
def test_creating_a_vault_with_a_bad_body_is_400_and_writes_nothing(api, r, body):
    before = snapshot(r)
    res = api.simulate_post("/api/vaults", json=body, headers=ADMIN)
    assert res.status_code == 400, res.text
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("name", ["x" * 64, "0", "Prod_2-b"])
def test_vault_names_up_to_64_characters_of_letters_digits_dash_underscore_are_accepted(api, r, name):
    create_vault(api, name)
    assert r.sismember(VAULTS, name)
    assert api.simulate_get("/api/vaults/" + name, headers=ADMIN).status_code == 200


def test_list_vaults_shows_every_vault_with_its_entry_count_and_no_values(api):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz", "DB_PASSWORD": "hunter2-hunter2"})
    vault_with(api, "empty", {})
    res = api.simulate_get("/api/vaults", headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json["count"] == 2
    counts = {v["name"]: v["entry_count"] for v in res.json["vaults"]}
    assert counts == {"prod": 2, "empty": 0}
    assert "abcdefyz" not in res.text and "hunter2" not in res.text


def test_list_vaults_is_empty_on_a_fresh_database(api):
    res = api.simulate_get("/api/vaults", headers=ADMIN)
    assert (res.status_code, res.json) == (200, {"vaults": [], "count": 0})


def test_get_vault_shows_its_meta_and_masked_entries(api):
    create_vault(api, "prod", "production")
    put_entry(api, "prod", "API_TOKEN", "sk-live-abcdefyz", status=201)
    put_entry(api, "prod", "REGION", "eu-west-1", is_secret=False, status=201)
    res = api.simulate_get("/api/vaults/prod", headers=ADMIN)
    assert res.status_code == 200, res.text
    assert (res.json["name"], res.json["description"], res.json["entry_count"]) == ("prod", "production", 2)
    shown = {e["key"]: (e["value"], e["is_secret"]) for e in res.json["entries"]}
    assert shown == {"API_TOKEN": ("sk****yz", True), "REGION": ("eu-west-1", False)}
    assert all(e["updated_at"].endswith("Z") for e in res.json["entries"])


def test_get_unknown_vault_is_404(api):
    res = api.simulate_get("/api/vaults/nope", headers=ADMIN)
    assert res.status_code == 404, res.text
    assert "nope" in errors_of(res)[0]


@pytest.mark.parametrize("path", ["/api/vaults/-bad", "/api/vaults/a.b", "/api/vaults/" + "x" * 65,
                                  "/api/vaults/-bad/entries"])
def test_a_bad_vault_name_in_the_path_is_400(api, path):
    assert api.simulate_get(path, headers=ADMIN).status_code == 400


def test_delete_vault_removes_its_hash_and_its_index_entry(api, r):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    vault_with(api, "keep", {"OTHER": "sk-keep-abcdefyz"})
    res = api.simulate_delete("/api/vaults/prod", headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json == {"name": "prod", "deleted": True}
    assert not r.exists(vault_hash("prod"))
    assert r.smembers(VAULTS) == {b"keep"}
    assert r.hlen(vault_hash("keep")) == 2
    assert api.simulate_get("/api/vaults/prod", headers=ADMIN).status_code == 404
    assert [v["name"] for v in api.simulate_get("/api/vaults", headers=ADMIN).json["vaults"]] == ["keep"]


def test_delete_unknown_vault_is_404_and_a_second_delete_too(api, r):
    assert api.simulate_delete("/api/vaults/nope", headers=ADMIN).status_code == 404
    create_vault(api, "once")
    assert api.simulate_delete("/api/vaults/once", headers=ADMIN).status_code == 200
    res = api.simulate_delete("/api/vaults/once", headers=ADMIN)
    assert res.status_code == 404
    assert "once" in errors_of(res)[0]
    assert r.keys("runqy:vault*") == []


def test_a_deleted_vault_can_be_created_again_empty(api, r):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    api.simulate_delete("/api/vaults/prod", headers=ADMIN)
    create_vault(api, "prod")
    assert list(r.hgetall(vault_hash("prod"))) == [b":meta"]
    assert api.simulate_get("/api/vaults/prod/entries", headers=ADMIN).json["entries"] == []


def test_a_vault_name_with_a_trailing_newline_is_400(api, r):
    res = api.simulate_post("/api/vaults", json={"name": "prod\n"}, headers=ADMIN)
    assert res.status_code == 400, res.text
    assert r.smembers(VAULTS) == set()
    assert r.keys("runqy:vault*") == []
    create_vault(api, "prod")
    assert api.simulate_get("/api/vaults/prod%0A", headers=ADMIN).status_code == 400


def test_a_description_with_an_unpaired_surrogate_is_400_and_the_vault_list_keeps_working(api, r):
    res = api.simulate_post("/api/vaults", body='{"name": "odd", "description": "x\\ud800y"}',
                            headers={**ADMIN, "Content-Type": "application/json"})
    listed = api.simulate_get("/api/vaults", headers=ADMIN)
    assert (res.status_code, listed.status_code) == (400, 200), (res.text, listed.text)
    assert not r.exists(vault_hash("odd"))


# --- entries ------------------------------------------------------------------------------


def test_put_entry_creates_with_201_then_replaces_with_200(api, r, master_key):
    create_vault(api, "prod")
    first = put_entry(api, "prod", "API_TOKEN", "sk-live-first-01", status=201)
    assert first.json["created"] is True
    assert (first.json["vault"], first.json["key"], first.json["is_secret"]) == ("prod", "API_TOKEN", True)
    assert decrypt_raw(r, master_key, "prod", "API_TOKEN") == "sk-live-first-01"
    second = put_entry(api, "prod", "API_TOKEN", "sk-live-second-02", status=200)
    assert second.json["created"] is False
    assert second.json["value"] == "sk****02"
    assert decrypt_raw(r, master_key, "prod", "API_TOKEN") == "sk-live-second-02"
    assert sorted(r.hkeys(vault_hash("prod"))) == [b":meta", b"e:API_TOKEN"]


def test_put_entry_stores_is_secret_defaulting_to_true(api, r):
    create_vault(api, "prod")
    put_entry(api, "prod", "SECRET", "sk-live-abcdefyz", status=201)
    put_entry(api, "prod", "PLAIN", "eu-west-1", is_secret=False, status=201)
    assert raw_entry(r, "prod", "SECRET")["is_secret"] is True
    assert raw_entry(r, "prod", "PLAIN")["is_secret"] is False


def test_replacing_a_secret_with_a_non_secret_shows_it_in_clear(api, r, master_key):
    create_vault(api, "prod")
    put_entry(api, "prod", "REGION", "eu-central-1", status=201)
    res = put_entry(api, "prod", "REGION", "eu-west-1", is_secret=False, status=200)
    assert res.json["value"] == "eu-west-1"
    assert raw_entry(r, "prod", "REGION")["is_secret"] is False
    assert decrypt_raw(r, master_key, "prod", "REGION") == "eu-west-1"


def test_put_entry_into_a_missing_vault_is_404_and_creates_no_hash(api, r):
    before = snapshot(r)
    res = put_entry(api, "nope", "API_TOKEN", "sk-live-abcdefyz")
    assert res.status_code == 404, res.text
    assert "nope" in errors_of(res)[0]
    assert "abcdefyz" not in res.text
    assert snapshot(r) == before
    assert not r.exists(vault_hash("nope"))


def test_list_entries_shows_every_entry_masked_in_key_order(api):
    vault_with(api, "prod", {"ZETA": "zz-secret-value-zz", "ALPHA": "aa-secret-value-aa", "SHORT": "abcd"})
    res = api.simulate_get("/api/vaults/prod/entries", headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json["vault"] == "prod" and res.json["count"] == 3
    assert [(e["key"], e["value"]) for e in res.json["entries"]] == [
        ("ALPHA", "aa****aa"), ("SHORT", "****"), ("ZETA", "zz****zz")]
    assert "secret-value" not in res.text


def test_list_entries_of_a_missing_vault_is_404(api):
    assert api.simulate_get("/api/vaults/nope/entries", headers=ADMIN).status_code == 404


def test_delete_entry_removes_only_its_field(api, r):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz", "DB_PASSWORD": "hunter2-hunter2"})
    res = api.simulate_delete("/api/vaults/prod/entries/API_TOKEN", headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json == {"vault": "prod", "key": "API_TOKEN", "deleted": True}
    assert sorted(r.hkeys(vault_hash("prod"))) == [b":meta", b"e:DB_PASSWORD"]
    assert r.sismember(VAULTS, "prod")
    listed = api.simulate_get("/api/vaults/prod/entries", headers=ADMIN).json
    assert [e["key"] for e in listed["entries"]] == ["DB_PASSWORD"]


def test_deleting_the_last_entry_keeps_the_empty_vault(api, r):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    assert api.simulate_delete("/api/vaults/prod/entries/API_TOKEN", headers=ADMIN).status_code == 200
    assert list(r.hgetall(vault_hash("prod"))) == [b":meta"]
    assert api.simulate_get("/api/vaults/prod", headers=ADMIN).json["entry_count"] == 0


def test_delete_missing_entry_or_entry_of_missing_vault_is_404_and_changes_nothing(api, r):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    before = snapshot(r)
    missing_entry = api.simulate_delete("/api/vaults/prod/entries/NOPE", headers=ADMIN)
    assert missing_entry.status_code == 404
    assert "NOPE" in errors_of(missing_entry)[0]
    missing_vault = api.simulate_delete("/api/vaults/nope/entries/API_TOKEN", headers=ADMIN)
    assert missing_vault.status_code == 404
    assert "nope" in errors_of(missing_vault)[0]
    assert snapshot(r) == before


@pytest.mark.parametrize("key", ["1ABC", "A-B", "", "A B", "A=B", "A.B", "X" * 129, 5, None])
def test_an_entry_key_that_is_not_an_environment_variable_name_is_400(api, r, key):
    create_vault(api, "prod")
    before = snapshot(r)
    res = api.simulate_post("/api/vaults/prod/entries", json={"key": key, "value": "sk-live-abcdefyz"}, headers=ADMIN)
    assert res.status_code == 400, res.text
    errors_of(res)
    assert "abcdefyz" not in res.text
    assert snapshot(r) == before


@pytest.mark.parametrize("key", REFUSED_KEYS)
def test_reserved_entry_keys_are_refused_with_400(api, r, key):
    create_vault(api, "prod")
    before = snapshot(r)
    res = put_entry(api, "prod", key, "/opt/evil")
    assert res.status_code == 400, res.text
    (message,) = errors_of(res)
    assert key in message and "reserved" in message
    assert snapshot(r) == before


@pytest.mark.parametrize("key", ["_X", "lower_case", "A1", "X" * 128, "MY_PATH", "HOME_DIR"])
def test_entry_keys_that_are_environment_variable_names_are_accepted(api, r, key):
    create_vault(api, "prod")
    put_entry(api, "prod", key, "value-1234", status=201)
    assert r.hexists(vault_hash("prod"), "e:" + key)


def test_an_empty_value_is_stored_and_masked_as_four_stars(api, r, master_key):
    create_vault(api, "prod")
    res = put_entry(api, "prod", "EMPTY", "", status=201)
    assert res.json["value"] == "****"
    assert decrypt_raw(r, master_key, "prod", "EMPTY") == ""


def test_a_value_with_an_unpaired_surrogate_is_400_not_500(api, r):
    create_vault(api, "prod")
    before = snapshot(r)
    raw = '{"key": "API_TOKEN", "value": "sk-live-\\ud800-abcdefyz"}'
    res = api.simulate_post("/api/vaults/prod/entries", body=raw, headers={**ADMIN, "Content-Type": "application/json"})
    assert res.status_code == 400, res.text
    assert "abcdefyz" not in res.text
    assert snapshot(r) == before


# --- feature off ---------------------------------------------------------------------------


MALFORMED_KEYS = ["", "not base64!", base64.b64encode(os.urandom(16)).decode(),
                  base64.b64encode(os.urandom(33)).decode()]


@pytest.mark.parametrize("method, path, body", ROUTES + [
    ("POST", "/api/vaults", {"bad": "body"}), ("GET", "/api/vaults/-bad-name", None)])
@pytest.mark.parametrize("bad_key", MALFORMED_KEYS, ids=["unset", "not-base64", "16-bytes", "33-bytes"])
def test_every_vault_route_is_503_with_a_key_generation_hint_when_vaults_are_off(settings, store, r, method, path,
                                                                                 body, bad_key):
    r.hset(vault_hash("prod"), mapping={":meta": json.dumps({"name": "prod", "description": ""})})
    r.sadd(VAULTS, "prod")
    before = snapshot(r)
    off = client_for(settings, store, bad_key)
    res = off.simulate_request(method, path, json=body, headers=ADMIN)
    assert res.status_code == 503, res.text
    (message,) = errors_of(res)
    assert "RUNQY_VAULT_MASTER_KEY" in message
    assert "os.urandom(32)" in message and "base64" in message
    if bad_key:
        assert bad_key not in message
    assert snapshot(r) == before


def test_with_vaults_off_the_rest_of_the_api_still_works(settings, store):
    off = client_for(settings, store, "")
    assert off.simulate_get("/health").status_code == 200
    res = register(off, {"queue": "inference"})
    assert res.status_code == 200, res.text
    assert res.json["vaults"] == {} and "git_token" not in res.json
    assert off.simulate_post("/queue/add", json={"queue": "simple", "data": {}}, headers=ADMIN).status_code == 200


def test_vault_auth_comes_before_the_vaults_off_answer(settings, store):
    off = client_for(settings, store, "")
    assert off.simulate_get("/api/vaults", headers=WORKER).status_code == 403
    assert off.simulate_get("/api/vaults").status_code == 401


# --- encryption at rest ------------------------------------------------------------------


def test_no_value_appears_in_clear_anywhere_in_redis(api, r, master_key):
    values = {"API_TOKEN": secret("api"), "DB_PASSWORD": secret("db"), "REGION": "region-eu-west-1-plain"}
    create_vault(api, "prod", "production")
    for key, value in values.items():
        put_entry(api, "prod", key, value, is_secret=key != "REGION", status=201)
    put_entry(api, "prod", "API_TOKEN", values["API_TOKEN"], status=200)
    dump = redis_dump(r)
    assert b"e:API_TOKEN" in dump  # the dump does reach the vault hash
    for value in values.values():
        assert value.encode() not in dump
        assert base64.b64encode(value.encode()) not in dump
        assert value.encode().hex().encode() not in dump
    for key, value in values.items():
        assert decrypt_raw(r, master_key, "prod", key) == value


def test_the_stored_value_is_nonce_then_aes_gcm_ciphertext_bound_to_vault_and_key(api, r, master_key):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    stored = raw_entry(r, "prod", "API_TOKEN")
    assert set(stored) >= {"value", "is_secret", "updated_at"}
    blob = base64.b64decode(stored["value"], validate=True)
    assert len(blob) == 12 + len("sk-live-abcdefyz") + 16
    aead = AESGCM(base64.b64decode(master_key))
    assert aead.decrypt(blob[:12], blob[12:], b"prod/API_TOKEN") == b"sk-live-abcdefyz"


def test_equal_values_get_different_ciphertexts(api, r):
    value = secret("same")
    vault_with(api, "prod", {"FIRST": value, "SECOND": value})
    vault_with(api, "other", {"FIRST": value})
    first = raw_entry(r, "prod", "FIRST")["value"]
    put_entry(api, "prod", "FIRST", value, status=200)
    ciphertexts = [first, raw_entry(r, "prod", "FIRST")["value"], raw_entry(r, "prod", "SECOND")["value"],
                   raw_entry(r, "other", "FIRST")["value"]]
    assert len(set(ciphertexts)) == 4
    assert len({base64.b64decode(c)[:12] for c in ciphertexts}) == 4


@pytest.mark.parametrize("target_vault, target_key", [("prod", "DB_PASSWORD"), ("other", "API_TOKEN")])
def test_a_ciphertext_copied_to_another_entry_is_503_never_garbage(api, r, store, target_vault, target_key):
    token = secret("api")
    vault_with(api, "prod", {"API_TOKEN": token, "DB_PASSWORD": secret("db")})
    vault_with(api, "other", {"API_TOKEN": secret("other")})
    r.hset(vault_hash(target_vault), "e:" + target_key, r.hget(vault_hash("prod"), "e:API_TOKEN"))
    for path in ("/api/vaults/%s/entries" % target_vault, "/api/vaults/%s" % target_vault):
        res = api.simulate_get(path, headers=ADMIN)
        assert res.status_code == 503, res.text
        (message,) = errors_of(res)
        assert target_key in message and target_vault in message
        assert token not in res.text and "sk****" not in res.text
    add_queue(store, "copied", vaults=[target_vault])
    res = register(api, {"queue": "copied"})
    assert res.status_code == 503, res.text
    assert token not in res.text
    errors_of(res)


# --- masking --------------------------------------------------------------------------------


@pytest.mark.parametrize("value, shown", [("sk-live-abcdefyz", "sk****yz"), ("abcde", "ab****de"),
                                          ("abcd", "****"), ("a", "****"), ("pässwörd-ü", "pä****-ü")])
def test_secret_values_are_masked_in_every_answer(api, value, shown):
    create_vault(api, "prod")
    answers = [put_entry(api, "prod", "TOKEN", value, status=201),
               put_entry(api, "prod", "TOKEN", value, status=200)]
    assert [a.json["value"] for a in answers] == [shown, shown]
    vault = api.simulate_get("/api/vaults/prod", headers=ADMIN)
    entries = api.simulate_get("/api/vaults/prod/entries", headers=ADMIN)
    assert [e["value"] for e in vault.json["entries"]] == [shown]
    assert [e["value"] for e in entries.json["entries"]] == [shown]
    listed = api.simulate_get("/api/vaults", headers=ADMIN)
    for res in answers + [vault, entries, listed]:
        assert res.status_code in (200, 201)
        if len(value) > 4:
            assert value not in res.text and json.dumps(value) not in res.text


def test_non_secret_values_are_shown_in_clear_everywhere(api):
    create_vault(api, "prod")
    assert put_entry(api, "prod", "REGION", "eu-west-1", is_secret=False, status=201).json["value"] == "eu-west-1"
    vault = api.simulate_get("/api/vaults/prod", headers=ADMIN).json
    entries = api.simulate_get("/api/vaults/prod/entries", headers=ADMIN).json
    assert vault["entries"][0]["value"] == entries["entries"][0]["value"] == "eu-west-1"
    assert entries["entries"][0]["is_secret"] is False


# --- register injection ---------------------------------------------------------------------


def test_register_merges_the_named_vaults_with_later_vaults_overriding_earlier_keys(api, store):
    vault_with(api, "base", {"SHARED": "from-base", "ONLY_BASE": "base-value"})
    vault_with(api, "prod", {"SHARED": "from-prod", "ONLY_PROD": "prod-value"})
    vault_with(api, "unused", {"UNUSED": "unused-value"})
    add_queue(store, "forward", vaults=["base", "prod"])
    add_queue(store, "backward", vaults=["prod", "base"])
    forward = register(api, {"queue": "forward"})
    assert forward.status_code == 200, forward.text
    assert forward.json["vaults"] == {"SHARED": "from-prod", "ONLY_BASE": "base-value", "ONLY_PROD": "prod-value"}
    assert forward.json["deployment"]["vaults"] == ["base", "prod"]
    assert "git_token" not in forward.json and "git_token" not in forward.json["deployment"]
    backward = register(api, {"queue": "backward"})
    assert backward.status_code == 200, backward.text
    assert backward.json["vaults"]["SHARED"] == "from-base"
    assert backward.json["deployment"]["vaults"] == ["prod", "base"]


def test_register_gives_non_secret_entries_and_the_admin_key_the_same_answer(api, store):
    create_vault(api, "prod")
    put_entry(api, "prod", "REGION", "eu-west-1", is_secret=False, status=201)
    put_entry(api, "prod", "API_TOKEN", "sk-live-abcdefyz", status=201)
    add_queue(store, "mixed", vaults=["prod"])
    by_worker, by_admin = register(api, {"queue": "mixed"}), register(api, {"queue": "mixed"}, headers=ADMIN)
    assert by_worker.status_code == by_admin.status_code == 200
    expected = {"REGION": "eu-west-1", "API_TOKEN": "sk-live-abcdefyz"}
    assert by_worker.json["vaults"] == by_admin.json["vaults"] == expected
    assert register(api, {"queue": "mixed"}, headers=CLIENT).status_code == 403


def test_register_of_a_sub_queue_gets_the_parents_vaults(api, store):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    add_queue(store, "subbed", vaults=["prod"])
    res = register(api, {"queue": "subbed.default"})
    assert res.status_code == 200, res.text
    assert res.json["vaults"] == {"API_TOKEN": "sk-live-abcdefyz"}


def test_register_resolves_a_vault_git_token_into_the_top_level_git_token(api, store):
    token = secret("ghp")
    vault_with(api, "git", {"GITHUB_TOKEN": token})
    add_queue(store, "cloned", git_token="vault://git/GITHUB_TOKEN")
    res = register(api, {"queue": "cloned"})
    assert res.status_code == 200, res.text
    assert res.json["git_token"] == token
    assert "git_token" not in res.json["deployment"]
    assert res.json["vaults"] == {}
    assert res.json["deployment"]["vaults"] == []


def test_register_resolves_the_git_token_from_one_of_the_injected_vaults(api, store):
    token = secret("ghp")
    vault_with(api, "prod", {"GITHUB_TOKEN": token, "API_TOKEN": "sk-live-abcdefyz"})
    add_queue(store, "both", vaults=["prod"], git_token="vault://prod/GITHUB_TOKEN")
    res = register(api, {"queue": "both"})
    assert res.status_code == 200, res.text
    assert res.json["git_token"] == token
    assert res.json["vaults"] == {"GITHUB_TOKEN": token, "API_TOKEN": "sk-live-abcdefyz"}


@pytest.mark.parametrize("master_key_of_app", ["on", ""])
def test_register_passes_a_plain_git_token_through_and_keeps_it_out_of_deployment(settings, store, master_key,
                                                                                  master_key_of_app):
    app = client_for(settings, store, master_key if master_key_of_app else "")
    add_queue(store, "plain", git_token="ghp_plainTokenValue123")
    res = register(app, {"queue": "plain"})
    assert res.status_code == 200, res.text
    assert res.json["git_token"] == "ghp_plainTokenValue123"
    assert "git_token" not in res.json["deployment"]


def assert_clear_register_error(res, secrets_held: list[str], *named: str) -> str:
    assert res.status_code != 200 and res.status_code >= 400, res.text
    (message,) = errors_of(res)
    for word in named:
        assert word in message, message
    for value in secrets_held:
        assert value not in res.text and value[2:] not in res.text
    return message


def test_register_for_a_queue_naming_a_missing_vault_is_an_error_without_a_partial_answer(api, store):
    held = [secret("api")]
    vault_with(api, "prod", {"API_TOKEN": held[0]})
    add_queue(store, "broken", vaults=["prod", "ghost"])
    assert_clear_register_error(register(api, {"queue": "broken"}), held, "ghost", "broken")


def test_register_with_a_git_token_naming_a_missing_key_is_an_error(api, store):
    held = [secret("api"), secret("other")]
    vault_with(api, "git", {"OTHER": held[1]})
    vault_with(api, "prod", {"API_TOKEN": held[0]})
    add_queue(store, "badtoken", vaults=["prod"], git_token="vault://git/GITHUB_TOKEN")
    assert_clear_register_error(register(api, {"queue": "badtoken"}), held, "GITHUB_TOKEN")


def test_register_with_a_git_token_naming_a_missing_vault_is_an_error(api, store):
    held = [secret("api")]
    vault_with(api, "prod", {"API_TOKEN": held[0]})
    add_queue(store, "badvault", vaults=["prod"], git_token="vault://ghost/GITHUB_TOKEN")
    assert_clear_register_error(register(api, {"queue": "badvault"}), held, "ghost")


@pytest.mark.parametrize("deployment", [{"vaults": ["prod"]}, {"git_token": "vault://prod/API_TOKEN"}])
def test_register_needing_vaults_while_vaults_are_off_is_an_error_with_the_hint(api, settings, store, deployment):
    held = [secret("api")]
    vault_with(api, "prod", {"API_TOKEN": held[0]})
    add_queue(store, "needsvault", **deployment)
    res = register(client_for(settings, store, ""), {"queue": "needsvault"})
    message = assert_clear_register_error(res, held, "prod", "RUNQY_VAULT_MASTER_KEY")
    assert "os.urandom(32)" in message


def test_register_after_a_vault_is_deleted_is_an_error(api, store):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    add_queue(store, "orphan", vaults=["prod"])
    assert register(api, {"queue": "orphan"}).status_code == 200
    api.simulate_delete("/api/vaults/prod", headers=ADMIN)
    assert_clear_register_error(register(api, {"queue": "orphan"}), ["sk-live-abcdefyz"], "prod")


# --- a wrong master key ---------------------------------------------------------------------


def test_a_different_master_key_is_503_naming_the_master_key_on_entries_and_register(api, settings, store, r):
    held = [secret("api"), secret("db")]
    vault_with(api, "prod", {"API_TOKEN": held[0], "DB_PASSWORD": held[1]})
    add_queue(store, "wrongkey", vaults=["prod"])
    before = snapshot(r)
    other = client_for(settings, store, new_master_key())
    for res in (other.simulate_get("/api/vaults/prod/entries", headers=ADMIN),
                other.simulate_get("/api/vaults/prod", headers=ADMIN),
                register(other, {"queue": "wrongkey"})):
        assert res.status_code == 503, res.text
        (message,) = errors_of(res)
        assert "RUNQY_VAULT_MASTER_KEY is not the key" in message and "written with" in message
        for value in held:
            assert value not in res.text and value[2:] not in res.text
    assert snapshot(r) == before
    assert register(api, {"queue": "wrongkey"}).json["vaults"] == {"API_TOKEN": held[0], "DB_PASSWORD": held[1]}


def test_a_different_master_key_still_lists_vault_names(api, settings, store):
    vault_with(api, "prod", {"API_TOKEN": "sk-live-abcdefyz"})
    other = client_for(settings, store, new_master_key())
    res = other.simulate_get("/api/vaults", headers=ADMIN)
    assert res.status_code == 200 and res.json["vaults"][0]["name"] == "prod"


# --- secrets in error answers ---------------------------------------------------------------


def bodies_carrying(value: str) -> list:
    return [
        {"key": "API_TOKEN", "value": value + "x" * 65536},
        {"key": "API_TOKEN", "value": value, "note": "hello"},
        {"key": "API_TOKEN", "value": "ok", "note": value},
        {"key": "API_TOKEN", "value": [value]},
        {"key": "API_TOKEN", "value": {"nested": value}},
        {"key": "API_TOKEN", "value": value, "is_secret": value},
        {"key": "API_TOKEN", "value": value, "is_secret": [value]},
        {"key": "PATH", "value": value},
        {"key": "ld_preload", "value": value},
        {"key": "1BAD", "value": value},
        {"key": "", "value": value},
        {"key": 12, "value": value},
        {"value": value},
        [value],
        value,
    ]


@pytest.mark.parametrize("index", range(len(bodies_carrying("x"))))
def test_error_answers_for_bodies_carrying_a_secret_never_echo_it(settings, store, r, master_key, index):
    api = client_for(settings, store, master_key, max_body_size=1024 * 1024)
    create_vault(api, "prod")
    value = secret("leak")
    body = bodies_carrying(value)[index]
    before = snapshot(r)
    res = api.simulate_post("/api/vaults/prod/entries", json=body, headers=ADMIN)
    assert res.status_code == 400, res.text
    errors_of(res)
    assert value not in res.text and value[3:20] not in res.text
    assert snapshot(r) == before


def test_a_malformed_json_body_carrying_a_secret_is_400_without_echo(api, r):
    create_vault(api, "prod")
    value = secret("leak")
    for raw in ('{"key": "API_TOKEN", "value": "%s"' % value, '{"key": "API_TOKEN", "value": %s}' % value,
                "{'key': 'API_TOKEN', 'value': '%s'}" % value):
        res = api.simulate_post("/api/vaults/prod/entries", body=raw,
                                headers={**ADMIN, "Content-Type": "application/json"})
        assert res.status_code == 400, res.text
        assert value not in res.text and value[3:20] not in res.text
    assert value.encode() not in redis_dump(r)


def test_an_oversized_body_carrying_a_secret_is_413_without_echo(api, r, settings):
    create_vault(api, "prod")
    value = secret("leak")
    res = put_entry(api, "prod", "API_TOKEN", value + "x" * settings.max_body_size)
    assert res.status_code == 413, res.text
    assert value not in res.text
    assert not r.hexists(vault_hash("prod"), "e:API_TOKEN")


# --- over gunicorn -------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("master_key_env", [None, base64.b64encode(os.urandom(16)).decode()], ids=["unset", "16-bytes"])
def test_gunicorn_starts_without_a_usable_master_key_and_answers_503_on_vaults(r, gunicorn_env, monkeypatch,
                                                                               master_key_env):
    monkeypatch.delenv("RUNQY_VAULT_MASTER_KEY", raising=False)
    env = dict(gunicorn_env)
    if master_key_env is not None:
        env["RUNQY_VAULT_MASTER_KEY"] = master_key_env
    server = Gunicorn(env, workers=1)
    try:
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
        res = requests.get(server.url + "/api/vaults", headers=ADMIN, timeout=5)
        assert res.status_code == 503, res.text
        (message,) = res.json()["errors"]
        assert "RUNQY_VAULT_MASTER_KEY" in message and "os.urandom(32)" in message
        created = requests.post(server.url + "/api/vaults", json={"name": "prod"}, headers=ADMIN, timeout=5)
        assert created.status_code == 503
        assert not r.exists(vault_hash("prod"))
        registered = requests.post(server.url + "/worker/register", json={"queue": "simple"}, headers=WORKER, timeout=5)
        assert registered.status_code == 200, registered.text
        if master_key_env:
            assert master_key_env not in server.output()
    finally:
        server.stop()


@pytest.mark.e2e
def test_secrets_reach_no_log_line_and_no_answer_but_the_register_answer(r, gunicorn_env, monkeypatch):
    """The whole vault flow on a real gunicorn with debug and access logs, then a
    second server on another master key; every secret is looked for everywhere."""
    monkeypatch.delenv("RUNQY_VAULT_MASTER_KEY", raising=False)
    held = {"API_TOKEN": secret("api"), "DB_PASSWORD": secret("db"), "GITHUB_TOKEN": secret("ghp")}
    key_a, key_b = new_master_key(), new_master_key()
    logged = {"RUNQY_ACCESS_LOG": "-", "RUNQY_LOG_LEVEL": "debug"}
    answers: list[str] = []
    outputs: list[str] = []

    def call(server, method, path, expect, headers=ADMIN, **kwargs):
        res = requests.request(method, server.url + path, headers=headers, timeout=10, **kwargs)
        assert res.status_code == expect, (method, path, res.status_code, res.text)
        return res

    first = Gunicorn({**gunicorn_env, **logged, "RUNQY_VAULT_MASTER_KEY": key_a}, workers=1)
    try:
        answers.append(call(first, "POST", "/api/vaults", 201, json={"name": "prod", "description": "p"}).text)
        for key, value in held.items():
            answers.append(call(first, "POST", "/api/vaults/prod/entries", 201, json={"key": key, "value": value}).text)
        answers.append(call(first, "POST", "/api/vaults/prod/entries", 200,
                            json={"key": "API_TOKEN", "value": held["API_TOKEN"], "is_secret": True}).text)
        answers.append(call(first, "POST", "/api/vaults/prod/entries", 201,
                            json={"key": "REGION", "value": "eu-west-1", "is_secret": False}).text)
        for path in ("/api/vaults", "/api/vaults/prod", "/api/vaults/prod/entries"):
            answers.append(call(first, "GET", path, 200).text)
        queue = {"name": "secretq", "deployment": {**DEPLOYMENT, "vaults": ["prod"],
                                                   "git_token": "vault://prod/GITHUB_TOKEN"}}
        answers.append(call(first, "POST", "/api/cli/configs", 201, json=queue).text)
        answers.append(call(first, "GET", "/api/cli/configs", 200).text)
        answers.append(call(first, "GET", "/api/cli/queues/secretq", 200).text)
        registered = call(first, "POST", "/worker/register", 200, headers=WORKER, json={"queue": "secretq"}).json()
        assert registered["vaults"] == {**held, "REGION": "eu-west-1"}
        assert registered["git_token"] == held["GITHUB_TOKEN"]
        assert "git_token" not in registered["deployment"]
        token = held["API_TOKEN"]
        for body in ({"key": "API_TOKEN", "value": [token]}, {"key": "API_TOKEN", "value": {"v": token}},
                     {"key": "PATH", "value": token}, {"key": "LD_PRELOAD", "value": token},
                     {"key": "1BAD", "value": token}, {"key": "API_TOKEN", "value": token, "extra": token},
                     {"key": "API_TOKEN", "value": token + "y" * 65536}, {"key": "API_TOKEN", "value": token,
                                                                         "is_secret": token}):
            answers.append(call(first, "POST", "/api/vaults/prod/entries", 400, json=body).text)
        answers.append(call(first, "POST", "/api/vaults/prod/entries", 400,
                            data='{"key": "API_TOKEN", "value": "%s"' % token,
                            headers={**ADMIN, "Content-Type": "application/json"}).text)
        answers.append(call(first, "POST", "/api/vaults/ghost/entries", 404, json={"key": "K", "value": token}).text)
        answers.append(call(first, "POST", "/api/vaults/prod/entries", 403, headers=WORKER,
                            json={"key": "K", "value": token}).text)
        answers.append(call(first, "POST", "/api/vaults/prod/entries", 401, headers={},
                            json={"key": "K", "value": token}).text)
        answers.append(call(first, "DELETE", "/api/vaults/prod/entries/REGION", 200).text)
        outputs.append(first.output())
    finally:
        first.stop()

    second = Gunicorn({**gunicorn_env, **logged, "RUNQY_VAULT_MASTER_KEY": key_b}, workers=1)
    try:
        for path in ("/api/vaults/prod", "/api/vaults/prod/entries"):
            answers.append(call(second, "GET", path, 503).text)
        answers.append(call(second, "POST", "/worker/register", 503, headers=WORKER, json={"queue": "secretq"}).text)
        assert "not the key" in answers[-1]
        outputs.append(second.output())
    finally:
        second.stop()

    assert "POST /api/vaults/prod/entries" in outputs[0], "the access log is not in the output"
    assert "DEBUG" in outputs[0] or "[DEBUG]" in outputs[0], "debug logging is not on"
    assert "GET /api/vaults/prod/entries" in outputs[1]
    for name, value in held.items():
        for where, text in [("answer %d" % i, a) for i, a in enumerate(answers)] + [
                ("log of the first server", outputs[0]), ("log of the second server", outputs[1])]:
            assert value not in text, "%s leaks %s" % (where, name)
            assert value[3:] not in text, "%s leaks %s" % (where, name)
    for master in (key_a, key_b):
        assert master not in "".join(outputs) and master not in "".join(answers)
    dump = redis_dump(r)
    assert all(value.encode() not in dump for value in held.values())
