"""The keeper of the YAML queue configs (runqy.server) against the private Redis."""

import json
import shutil
import textwrap

import pytest

from runqy import config as runqy_config
from runqy import keys
from runqy.server import ConfigKeeper
from runqy.store import Store, connect
from tests.conftest import ADMIN, CLIENT, CONFIG_DIR, WORKER
from tests.helpers import assert_queue_not_found

DEPLOYMENT = {"git_url": "https://example.com/a.git", "startup_cmd": "python a.py"}


@pytest.fixture
def config_dir(tmp_path):
    directory = tmp_path / "config"
    directory.mkdir()
    shutil.copy(CONFIG_DIR / "queues.yaml", directory)
    return directory


@pytest.fixture
def fresh_store(r, settings) -> Store:
    """A store on an empty database: nothing written yet."""
    return Store(connect(settings))


def keeper(store: Store, directory) -> ConfigKeeper:
    return ConfigKeeper(store, str(directory), runqy_config.load_configs(directory))


def stored(r) -> dict:
    return {k.decode(): json.loads(v) for k, v in r.hgetall(keys.CONFIGS).items()}


def test_first_check_writes_the_yaml_configs_and_their_digest(fresh_store, r, config_dir):
    keeper(fresh_store, config_dir).check()

    assert set(stored(r)) == {"inference", "simple"}
    assert {c["source"] for c in stored(r).values()} == {"yaml"}
    assert r.get(keys.CONFIGS_YAML).decode() == runqy_config.digest(runqy_config.load_configs(config_dir))
    assert r.hget(keys.queue_config("inference.high"), "timeout") == b"300"


def test_a_restarted_process_does_not_undo_api_changes_to_yaml_configs(fresh_store, r, config_dir):
    keeper(fresh_store, config_dir).check()
    replaced = runqy_config.normalize_queue("simple", {"max_retry": 9, "deployment": DEPLOYMENT})
    fresh_store.configs.put({"simple": replaced})

    keeper(fresh_store, config_dir).check()  # a new process, the same files

    assert stored(r)["simple"] == replaced


def test_changed_yaml_files_win_at_the_next_start(fresh_store, r, config_dir):
    keeper(fresh_store, config_dir).check()
    fresh_store.configs.put({"simple": runqy_config.normalize_queue("simple", {"deployment": DEPLOYMENT})})
    (config_dir / "more.yaml").write_text(textwrap.dedent("""\
        queues:
          extra:
            deployment: {git_url: https://example.com/x.git, startup_cmd: python x.py}
        """))

    keeper(fresh_store, config_dir).check()

    assert set(stored(r)) == {"inference", "simple", "extra"}
    assert stored(r)["simple"]["source"] == "yaml"


def test_after_redis_lost_everything_the_next_check_restores_the_yaml_configs_read_again(
        fresh_store, r, config_dir):
    running = keeper(fresh_store, config_dir)
    running.check()
    fresh_store.configs.put({"byapi": runqy_config.normalize_queue("byapi", {"deployment": DEPLOYMENT})})
    (config_dir / "more.yaml").write_text("queues:\n  extra:\n    deployment: %s\n" % json.dumps(DEPLOYMENT))
    r.flushdb()

    running.check()

    # what the directory holds now, as a reload would; a config made through the API is gone
    assert set(stored(r)) == {"inference", "simple", "extra"}
    assert r.exists(keys.CONFIGS_YAML) and r.sismember(keys.QUEUES, "extra.default")


def test_a_check_with_the_digest_in_place_writes_nothing(fresh_store, r, config_dir):
    running = keeper(fresh_store, config_dir)
    running.check()
    r.hdel(keys.CONFIGS, "simple")  # as DELETE /api/cli/configs/simple does

    running.check()

    assert set(stored(r)) == {"inference"}


@pytest.mark.parametrize("call", [
    lambda c: c.simulate_post("/queue/add", json={"queue": "simple", "data": 1}, headers=CLIENT),
    lambda c: c.simulate_post("/worker/register", json={"queue": "inference"}, headers=WORKER),
    lambda c: c.simulate_get("/api/cli/queues/inference", headers=ADMIN),
], ids=["enqueue", "register", "queue"])
def test_a_queue_redis_has_lost_is_a_retryable_503_and_not_a_404(client, r, call):
    r.flushdb()  # configs and digest gone, as after a restart without persistence

    result = call(client)

    assert result.status_code == 503, result.text
    assert result.headers["Retry-After"] == "1"
    assert result.json == {"errors": ["redis has lost its data: the queue configs are being restored; "
                                      "retry in a second"]}
    assert r.llen(keys.pending("simple.default")) == 0 and not r.exists(keys.QUEUES)


def test_an_unknown_queue_with_the_configs_in_place_is_still_404(client, r):
    result = client.simulate_post("/queue/add", json={"queue": "nope", "data": 1}, headers=CLIENT)

    assert result.status_code == 404
    assert_queue_not_found(result.json["errors"], "nope.default")
