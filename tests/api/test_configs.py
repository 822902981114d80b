"""Queue configurations under /api/cli/configs (docs/product.md §7): Redis is the one
source of truth, so a config made through one server process answers at once on
every other, and the YAML directory can be re-read without a restart.
"""

import dataclasses
import json

import falcon.testing
import pytest
import requests

from runqy import defaults, keys
from runqy.app import create_app
from tests.conftest import ADMIN, CLIENT, WORKER, Gunicorn
from tests.helpers import add, assert_json_405, assert_queue_not_found, errors_of

BODY = {"name": "vision", "priority": 5, "max_retry": 2, "timeout": 120, "result_ttl": 3600, "failed_ttl": 7200,
        "sub_queues": [{"name": "fast", "priority": 8}, {"name": "bulk"}],
        "deployment": {"git_url": "https://example.com/vision.git", "startup_cmd": "python serve.py"}}
STORED = {"name": "vision", "priority": 5, "mode": "long_running", "max_retry": 2, "timeout": 120,
          "result_ttl": 3600, "failed_ttl": 7200, "pending_timeout": 0,
          "sub_queues": [{"name": "fast", "priority": 8}, {"name": "bulk", "priority": 5}],
          "deployment": {"git_url": "https://example.com/vision.git", "startup_cmd": "python serve.py",
                         "mode": "long_running", "branch": "main", "redis_storage": True, "vaults": []},
          "source": "api"}


def stored_configs(r) -> dict:
    return {name.decode(): json.loads(raw) for name, raw in r.hgetall(keys.CONFIGS).items()}


def queue_defaults(r, queue: str) -> dict:
    return {k.decode(): int(v) for k, v in r.hgetall(keys.queue_config(queue)).items()}


def test_config_list_answers_every_config_with_its_defaults_filled_in(admin, queues):
    result = admin.simulate_get("/api/cli/configs", headers=ADMIN)

    assert result.status_code == 200, result.text
    assert result.json == {"configs": [queues["inference"], queues["simple"]], "count": 2}
    assert {c["source"] for c in result.json["configs"]} == {"yaml"}
    simple = result.json["configs"][1]
    assert simple["sub_queues"] == [{"name": "default", "priority": 1}]
    assert (simple["mode"], simple["deployment"]["mode"], simple["deployment"]["branch"]) == (
        "one_shot", "one_shot", "main")


def test_created_config_is_stored_and_at_once_registrable_and_enqueueable(admin, r):
    result = admin.simulate_post("/api/cli/configs", json=BODY, headers=ADMIN)

    assert result.status_code == 201, result.text
    assert result.json == {"config": STORED, "created": True}
    assert stored_configs(r)["vision"] == STORED
    for sub in ("fast", "bulk"):
        assert queue_defaults(r, "vision." + sub) == {"max_retry": 2, "timeout": 120, "result_ttl": 3600,
                                                       "failed_ttl": 7200, "pending_timeout": 0}
    assert {b"vision.fast", b"vision.bulk"} <= r.smembers(keys.QUEUES)
    listed = admin.simulate_get("/api/cli/configs", headers=ADMIN).json
    assert (listed["count"], [c["name"] for c in listed["configs"]]) == (3, ["inference", "simple", "vision"])

    registered = admin.simulate_post("/worker/register", json={"queue": "vision", "hostname": "h"}, headers=WORKER)
    assert registered.status_code == 200, registered.text
    assert registered.json["sub_queues"] == [{"name": "vision.fast", "priority": 8},
                                             {"name": "vision.bulk", "priority": 5}]
    assert registered.json["queue"]["priority"] == 5
    assert registered.json["deployment"]["git_url"] == "https://example.com/vision.git"

    enqueued = add(admin, {"queue": "vision.bulk", "data": {"x": 1}}, CLIENT)
    assert enqueued.status_code == 200, enqueued.text
    info = enqueued.json["info"]
    assert (info["max_retry"], info["timeout"]) == (2, 120)
    task = r.hgetall(keys.task("vision.bulk", info["id"]))
    assert (task[b"ttl_completed"], task[b"ttl_archived"], task[b"active_timeout"]) == (b"3600", b"7200", b"120")
    assert r.lrange(keys.pending("vision.bulk"), 0, -1) == [info["id"].encode()]
    stats = admin.simulate_get("/api/cli/queues/vision", headers=ADMIN).json
    assert (stats["pending"], stats["config"]) == (1, STORED)


def test_a_config_without_sub_queues_gets_a_default_sub_queue(admin, r):
    body = {"name": "plain", "priority": 3, "mode": "one_shot",
            "deployment": {"git_url": "g", "startup_cmd": "c", "mode": "long_running"}}

    result = admin.simulate_post("/api/cli/configs", json=body, headers=ADMIN)

    assert result.status_code == 201, result.text
    stored = stored_configs(r)["plain"]
    assert stored["sub_queues"] == [{"name": "default", "priority": 3}]
    assert (stored["mode"], stored["deployment"]["mode"], stored["max_retry"]) == ("one_shot", "one_shot", 3)
    assert queue_defaults(r, "plain.default")["timeout"] == defaults.TIMEOUT
    assert add(admin, {"queue": "plain", "data": {"x": 1}}, CLIENT).json["info"]["queue"] == "plain.default"


@pytest.mark.parametrize("name", ["vision", "inference"])
def test_creating_an_existing_config_is_409_and_changes_nothing(admin, r, name):
    admin.simulate_post("/api/cli/configs", json=BODY, headers=ADMIN)
    before = stored_configs(r)

    result = admin.simulate_post("/api/cli/configs", json={**BODY, "name": name, "max_retry": 9}, headers=ADMIN)
    refused = admin.simulate_post("/api/cli/configs", json={**BODY, "name": name, "max_retry": 9},
                                  query_string="force=false", headers=ADMIN)

    assert (result.status_code, refused.status_code) == (409, 409)
    assert "already exists: %s" % name in errors_of(result)[0]
    assert stored_configs(r) == before


def test_force_replaces_a_config_and_a_dropped_sub_queue_refuses_enqueue_but_keeps_its_tasks(admin, r):
    admin.simulate_post("/api/cli/configs", json=BODY, headers=ADMIN)
    old_task = add(admin, {"queue": "vision.bulk", "data": {"x": 1}}, CLIENT).json["info"]["id"]
    replacement = {**BODY, "max_retry": 4, "sub_queues": [{"name": "fast", "priority": 8}]}

    result = admin.simulate_post("/api/cli/configs", json=replacement, query_string="force=true", headers=ADMIN)

    assert result.status_code == 200, result.text
    assert result.json["created"] is False
    assert stored_configs(r)["vision"] == {**STORED, "max_retry": 4, "sub_queues": [{"name": "fast", "priority": 8}]}
    assert queue_defaults(r, "vision.fast")["max_retry"] == 4
    assert r.exists(keys.queue_config("vision.bulk")) == 0
    refused = add(admin, {"queue": "vision.bulk", "data": {"x": 1}}, CLIENT)
    assert refused.status_code == 404
    assert_queue_not_found(errors_of(refused), "vision.bulk")
    assert add(admin, {"queue": "vision.fast", "data": {"x": 1}}, CLIENT).json["info"]["max_retry"] == 4
    # the dropped sub-queue's task is still there, readable and counted
    assert r.lrange(keys.pending("vision.bulk"), 0, -1) == [old_task.encode()]
    assert r.hget(keys.task("vision.bulk", old_task), "state") == b"pending"
    assert admin.simulate_get("/queue/" + old_task, headers=CLIENT).json["info"]["state"] == "pending"
    registered = admin.simulate_post("/worker/register", json={"queue": "vision"}, headers=WORKER).json
    assert registered["sub_queues"] == [{"name": "vision.fast", "priority": 8}]
    assert admin.simulate_post("/worker/register", json={"queue": "vision.bulk"}, headers=WORKER).status_code == 404


def test_force_creates_a_config_that_does_not_exist_yet_with_201(admin, r):
    result = admin.simulate_post("/api/cli/configs", json=BODY, query_string="force=true", headers=ADMIN)

    assert (result.status_code, result.json["created"]) == (201, True)
    assert "vision" in stored_configs(r)


INVALID = [
    ({k: v for k, v in BODY.items() if k != "name"}, "$: 'name' is a required property"),
    ({k: v for k, v in BODY.items() if k != "deployment"}, "$: 'deployment' is a required property"),
    ({**BODY, "deployment": {"startup_cmd": "x"}}, "$.deployment: 'git_url' is a required property"),
    ({**BODY, "deployment": {**BODY["deployment"], "git_url": ""}}, "$.deployment.git_url"),
    ({**BODY, "deployment": {**BODY["deployment"], "colour": "red"}}, "$.deployment: Additional properties"),
    ({**BODY, "name": "vi.sion"}, "$.name"),
    ({**BODY, "name": "x" * 65}, "$.name"),
    ({**BODY, "name": "visión"}, "$.name"),
    ({**BODY, "name": 7}, "$.name: expected string, got integer"),
    ({**BODY, "priority": 0}, "$.priority"),
    ({**BODY, "priority": "high"}, "$.priority: expected integer, got string"),
    ({**BODY, "mode": "sometimes"}, "$.mode"),
    ({**BODY, "max_retry": -1}, "$.max_retry"),
    ({**BODY, "timeout": 0}, "$.timeout"),
    ({**BODY, "sub_queues": []}, "$.sub_queues"),
    ({**BODY, "sub_queues": [{"name": "a.b"}]}, "$.sub_queues[0].name"),
    ({**BODY, "sub_queues": [{"name": "a", "priority": 0}]}, "$.sub_queues[0].priority"),
    ({**BODY, "sub_queues": [{"name": "a"}, {"name": "a"}]}, "$.sub_queues: duplicate sub-queue name a"),
    ({**BODY, "colour": "red"}, "$: Additional properties are not allowed ('colour' was unexpected)"),
    ([BODY], "$: expected object, got array"),
    ("vision", "$: expected object, got string"),
]


def test_creating_an_invalid_config_is_400_naming_the_field_and_writes_nothing(admin, r):
    before = sorted(r.keys("*"))

    for body, message in INVALID:
        result = admin.simulate_post("/api/cli/configs", json=body, headers=ADMIN)

        assert result.status_code == 400, (body, result.text)
        assert any(m.startswith(message) for m in errors_of(result)), (message, result.json)
    assert sorted(r.keys("*")) == before


def test_creating_a_config_from_an_unreadable_body_is_400(admin, r):
    for raw, message in ((b"", "request body is empty"), (b"{", "malformed JSON"),
                         (b'{"name": "\xff"}', "request body is not UTF-8"), (b"null", "$: expected object, got null"),
                         (b"[" * 60000, "request body is nested too deeply")):
        result = admin.simulate_post("/api/cli/configs", body=raw,
                                     headers={**ADMIN, "Content-Type": "application/json"})

        assert result.status_code == 400, (raw[:20], result.text)
        assert errors_of(result)[0].startswith(message), raw[:20]
    assert "vision" not in stored_configs(r)


def test_an_unreadable_force_flag_is_400(admin, r):
    for force in ("maybe", "2", "%00"):
        result = admin.simulate_post("/api/cli/configs", json=BODY, query_string="force=" + force, headers=ADMIN)

        assert result.status_code == 400, force
        assert "force" in errors_of(result)[0], force
    assert "vision" not in stored_configs(r)


def test_deleting_a_config_refuses_enqueue_and_register_but_keeps_the_tasks(admin, r):
    admin.simulate_post("/api/cli/configs", json=BODY, headers=ADMIN)
    task_id = add(admin, {"queue": "vision.fast", "data": {"x": 1}}, CLIENT).json["info"]["id"]

    result = admin.simulate_delete("/api/cli/configs/vision", headers=ADMIN)

    assert result.status_code == 200, result.text
    assert result.json == {"name": "vision", "deleted": True}
    assert "vision" not in stored_configs(r)
    assert r.exists(keys.queue_config("vision.fast"), keys.queue_config("vision.bulk")) == 0
    assert r.lrange(keys.pending("vision.fast"), 0, -1) == [task_id.encode()]
    assert r.hget(keys.task("vision.fast", task_id), "state") == b"pending"
    assert r.hget(keys.task_queue(task_id), "queue") == b"vision.fast"
    assert add(admin, {"queue": "vision.fast", "data": {"x": 1}}, CLIENT).status_code == 404
    assert admin.simulate_post("/worker/register", json={"queue": "vision"}, headers=WORKER).status_code == 404
    assert admin.simulate_get("/queue/" + task_id, headers=CLIENT).json["info"]["state"] == "pending"
    assert [c["name"] for c in admin.simulate_get("/api/cli/configs", headers=ADMIN).json["configs"]] == [
        "inference", "simple"]

    again = admin.simulate_delete("/api/cli/configs/vision", headers=ADMIN)

    assert again.status_code == 404
    assert errors_of(again) == ["queue config not found: vision"]


def test_a_deleted_config_can_be_created_again(admin, r):
    admin.simulate_post("/api/cli/configs", json=BODY, headers=ADMIN)
    admin.simulate_delete("/api/cli/configs/vision", headers=ADMIN)

    result = admin.simulate_post("/api/cli/configs", json=BODY, headers=ADMIN)

    assert result.status_code == 201
    assert add(admin, {"queue": "vision.bulk", "data": {"x": 1}}, CLIENT).status_code == 200


def test_deleting_a_config_by_a_malformed_name_is_400(admin, r):
    before = stored_configs(r)

    for name in ("inference.high", "x" * 65, "%00", "vi%20sion", "%C3%A9", "-x", "..", "%FF"):
        result = admin.simulate_delete("/api/cli/configs/" + name, headers=ADMIN)

        assert result.status_code == 400, (name, result.text)
        assert errors_of(result)[0].startswith("name: "), name
    assert stored_configs(r) == before


def test_deleting_an_unknown_config_is_404(admin, r):
    result = admin.simulate_delete("/api/cli/configs/nosuch", headers=ADMIN)

    assert result.status_code == 404
    assert errors_of(result) == ["queue config not found: nosuch"]


# --- reload -------------------------------------------------------------------------------------

GOOD_YAML = """
queues:
  alpha:
    priority: 4
    max_retry: 6
    sub_queues:
      - name: one
      - name: two
        priority: 9
    deployment:
      git_url: https://example.com/alpha.git
      startup_cmd: python alpha.py
"""
BAD_YAML = """
queues:
  simple:
    max_retry: 7
    deployment:
      git_url: https://example.com/simple.git
      startup_cmd: python simple.py
  broken:
    priority: 0
    deployment:
      startup_cmd: python broken.py
"""


@pytest.fixture
def reload_dir(tmp_path, settings, store):
    """An admin TestClient whose YAML directory is an empty temporary one."""
    app = create_app(dataclasses.replace(settings, config_dir=str(tmp_path)), store=store)
    return tmp_path, falcon.testing.TestClient(app)


def test_reload_loads_a_good_file_and_a_bad_file_in_the_same_directory_changes_nothing(reload_dir, r, queues):
    directory, client = reload_dir
    (directory / "good.yaml").write_text(GOOD_YAML)
    (directory / "bad.yml").write_text(BAD_YAML)
    (directory / "notes.txt").write_text("not a config: ignored")

    result = client.simulate_post("/api/cli/configs/reload", headers=ADMIN)

    assert result.status_code == 200, result.text
    assert (result.json["loaded"], result.json["count"]) == (["alpha"], 1)
    assert list(result.json["errors"]) == ["bad.yml"]
    problems = result.json["errors"]["bad.yml"]
    assert any("bad.yml" in p and "queue 'broken'" in p and "field 'priority'" in p for p in problems), problems
    assert any("queue 'broken'" in p and "field 'deployment'" in p and "git_url" in p for p in problems), problems
    configs = stored_configs(r)
    assert configs["simple"] == queues["simple"]
    assert "broken" not in configs
    assert queue_defaults(r, "simple.default")["max_retry"] == 1
    assert configs["alpha"]["sub_queues"] == [{"name": "one", "priority": 4}, {"name": "two", "priority": 9}]
    assert queue_defaults(r, "alpha.two")["max_retry"] == 6
    assert add(client, {"queue": "alpha.one", "data": {"x": 1}}, CLIENT).json["info"]["max_retry"] == 6
    assert client.simulate_post("/worker/register", json={"queue": "alpha"}, headers=WORKER).status_code == 200
    assert configs["inference"] == queues["inference"]  # a reload upserts: other configs stay


def test_reload_applies_a_changed_file_and_drops_its_removed_sub_queues(reload_dir, r):
    directory, client = reload_dir
    (directory / "good.yaml").write_text(GOOD_YAML)
    client.simulate_post("/api/cli/configs/reload", headers=ADMIN)
    (directory / "good.yaml").write_text(GOOD_YAML.replace("max_retry: 6", "max_retry: 2")
                                         .replace("      - name: two\n        priority: 9\n", ""))

    result = client.simulate_post("/api/cli/configs/reload", headers=ADMIN)

    assert (result.status_code, result.json["errors"]) == (200, {})
    assert stored_configs(r)["alpha"]["sub_queues"] == [{"name": "one", "priority": 4}]
    assert queue_defaults(r, "alpha.one")["max_retry"] == 2
    assert r.exists(keys.queue_config("alpha.two")) == 0
    assert add(client, {"queue": "alpha.two", "data": {"x": 1}}, CLIENT).status_code == 404


@pytest.mark.parametrize("content, expected", [
    ("queues: [unclosed", "cannot read YAML"),
    ("queues:\n  bad.name:\n    deployment: {git_url: g, startup_cmd: c}\n", "bad.name"),
    ("colour: red\n", "Additional properties"),
    ("", "expected object, got null"),
    ("queues:\n  simple:\n    max_retry: 7\n    sub_queues: [{name: a}, {name: a}]\n"
     "    deployment: {git_url: g, startup_cmd: c}\n", "duplicate sub-queue name a"),
])
def test_reload_reports_each_broken_file_and_changes_nothing(reload_dir, r, content, expected):
    directory, client = reload_dir
    (directory / "broken.yaml").write_text(content)
    before = stored_configs(r)

    result = client.simulate_post("/api/cli/configs/reload", headers=ADMIN)

    assert result.status_code == 200, result.text
    assert result.json["loaded"] == []
    (problems,) = result.json["errors"].values()
    assert any(expected in p for p in problems), problems
    assert stored_configs(r) == before


def test_reload_refuses_a_queue_defined_in_two_files(reload_dir, r):
    directory, client = reload_dir
    (directory / "a.yaml").write_text(GOOD_YAML)
    (directory / "b.yaml").write_text(GOOD_YAML.replace("max_retry: 6", "max_retry: 1"))

    result = client.simulate_post("/api/cli/configs/reload", headers=ADMIN)

    assert result.json["loaded"] == ["alpha"]
    assert "queue 'alpha' is already defined in" in result.json["errors"]["b.yaml"][0]
    assert queue_defaults(r, "alpha.one")["max_retry"] == 6


def test_reload_of_a_missing_directory_reports_it_and_keeps_every_config(settings, store, r, tmp_path, queues):
    client = falcon.testing.TestClient(create_app(
        dataclasses.replace(settings, config_dir=str(tmp_path / "nowhere")), store=store))

    result = client.simulate_post("/api/cli/configs/reload", headers=ADMIN)

    assert result.status_code == 200
    assert result.json["loaded"] == []
    assert list(result.json["errors"].values()) == [["%s: not a directory" % (tmp_path / "nowhere")]]
    assert stored_configs(r) == queues


# --- many server processes ----------------------------------------------------------------------


@pytest.mark.e2e
def test_a_config_created_on_one_server_answers_at_once_on_another(r, gunicorn_env):
    first = Gunicorn(gunicorn_env, workers=1)
    second = None
    try:
        assert requests.post(first.url + "/api/cli/configs", json={**BODY, "name": "early"}, headers=ADMIN,
                             timeout=5).status_code == 201
        # the second server loads the YAML directory at start-up, which upserts: the API-made config survives
        second = Gunicorn(gunicorn_env, workers=1)
        listed = requests.get(second.url + "/api/cli/configs", headers=ADMIN, timeout=5).json()
        assert [c["name"] for c in listed["configs"]] == ["early", "inference", "simple"]

        created = requests.post(first.url + "/api/cli/configs", json=BODY, headers=ADMIN, timeout=5)
        assert created.status_code == 201, created.text
        registered = requests.post(second.url + "/worker/register", json={"queue": "vision.fast"},
                                   headers=WORKER, timeout=5)
        assert registered.status_code == 200, registered.text
        assert registered.json()["sub_queues"] == [{"name": "vision.fast", "priority": 8}]
        enqueued = requests.post(second.url + "/queue/add", json={"queue": "vision.fast", "data": 1},
                                 headers=CLIENT, timeout=5)
        assert enqueued.status_code == 200, enqueued.text
        assert enqueued.json()["info"]["max_retry"] == 2
        task_id = enqueued.json()["info"]["id"]
        assert r.lrange(keys.pending("vision.fast"), 0, -1) == [task_id.encode()]

        deleted = requests.delete(second.url + "/api/cli/configs/vision", headers=ADMIN, timeout=5)
        assert deleted.status_code == 200
        refused = requests.post(first.url + "/queue/add", json={"queue": "vision.fast", "data": 2},
                                headers=CLIENT, timeout=5)
        assert refused.status_code == 404
        assert requests.post(first.url + "/worker/register", json={"queue": "vision"}, headers=WORKER,
                             timeout=5).status_code == 404
        assert r.lrange(keys.pending("vision.fast"), 0, -1) == [task_id.encode()]
    finally:
        first.stop()
        if second is not None:
            second.stop()


# --- auth ---------------------------------------------------------------------------------------

ROUTES = [("GET", "/api/cli/configs"), ("POST", "/api/cli/configs"), ("POST", "/api/cli/configs/reload"),
          ("DELETE", "/api/cli/configs/inference")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_config_routes_are_admin_only_and_a_refused_call_changes_nothing(admin, r, method, path):
    before = stored_configs(r)

    for headers, status in ((WORKER, 403), (CLIENT, 403), ({}, 401), ({"Authorization": "Basic YWRtaW4="}, 401)):
        result = admin.simulate_request(method, path, headers=headers, json=BODY if method == "POST" else None)

        assert result.status_code == status, headers
        errors_of(result)
    assert stored_configs(r) == before


def test_wrong_methods_on_config_routes_are_json_405(admin):
    for method, path in (("PUT", "/api/cli/configs"), ("GET", "/api/cli/configs/reload"),
                         ("GET", "/api/cli/configs/inference")):
        assert_json_405(admin, method, path)

