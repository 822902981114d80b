"""Settings from the environment and queue configs from YAML (docs/product.md §2 and §7)."""

import logging
from pathlib import Path

import pytest

from runqy import defaults
from runqy.config import Settings, load_dir, load_file, normalize_queue
from runqy.errors import ConfigError
from runqy.queue_names import full_queue_name
from tests.conftest import CONFIG_DIR, ROOT

KEY = {"RUNQY_API_KEY": "k"}
DEPLOYMENT = {"git_url": "https://example.com/worker.git", "startup_cmd": "python main.py"}

GOOD_YAML = """\
queues:
  simple:
    deployment:
      git_url: https://example.com/simple.git
      startup_cmd: python task.py
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def config_errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    return caught.value.messages


# --- Settings.from_env --------------------------------------------------------------------------


def test_defaults_with_only_the_api_key(monkeypatch):
    monkeypatch.chdir(ROOT)
    settings = Settings.from_env(KEY)
    assert (settings.api_key, settings.worker_api_key, settings.client_api_key) == ("k", "", "")
    assert (settings.redis_host, settings.redis_port, settings.redis_db, settings.redis_password,
            settings.redis_tls) == (defaults.REDIS_HOST, defaults.REDIS_PORT, defaults.REDIS_DB, "", False)
    assert (settings.port, settings.config_dir, settings.max_body_size) == (
        defaults.PORT, defaults.CONFIG_DIR, defaults.MAX_BODY_SIZE)


def test_redis_url_with_password_port_and_db():
    settings = Settings.from_env({**KEY, "REDIS_URL": "redis://:s3cret@redis.example:6380/2"})
    assert (settings.redis_host, settings.redis_port, settings.redis_password, settings.redis_db,
            settings.redis_tls) == ("redis.example", 6380, "s3cret", 2, False)


def test_rediss_url_means_tls_and_the_password_is_unquoted():
    settings = Settings.from_env({**KEY, "REDIS_URL": "rediss://:p%40ss%2Fw0rd@cache.example/5"})
    assert (settings.redis_host, settings.redis_port, settings.redis_password, settings.redis_db,
            settings.redis_tls) == ("cache.example", 6379, "p@ss/w0rd", 5, True)


def test_redis_url_with_a_user_name_keeps_the_password():
    settings = Settings.from_env({**KEY, "REDIS_URL": "redis://default:pw@10.0.0.7:7000"})
    assert (settings.redis_host, settings.redis_port, settings.redis_password, settings.redis_db) == (
        "10.0.0.7", 7000, "pw", 0)


def test_redis_url_without_port_or_db_uses_6379_and_db_0():
    settings = Settings.from_env({**KEY, "REDIS_URL": "redis://localhost/"})
    assert (settings.redis_port, settings.redis_db, settings.redis_password) == (6379, 0, "")


def test_redis_url_wins_over_redis_host():
    settings = Settings.from_env({**KEY, "REDIS_URL": "redis://from-url:1234/1", "REDIS_HOST": "from-host",
                                  "REDIS_PORT": "9999"})
    assert (settings.redis_host, settings.redis_port, settings.redis_db) == ("from-url", 1234, 1)


def test_redis_host_port_password_db_tls_variables():
    settings = Settings.from_env({**KEY, "REDIS_HOST": "db.internal", "REDIS_PORT": "6390",
                                  "REDIS_PASSWORD": "pw", "REDIS_DB": "3", "REDIS_TLS": "true"})
    assert (settings.redis_host, settings.redis_port, settings.redis_password, settings.redis_db,
            settings.redis_tls) == ("db.internal", 6390, "pw", 3, True)


@pytest.mark.parametrize("value, tls", [("1", True), ("yes", True), ("TRUE", True), ("false", False),
                                        ("0", False), ("", False)])
def test_redis_tls_flag(value, tls):
    assert Settings.from_env({**KEY, "REDIS_TLS": value}).redis_tls is tls


@pytest.mark.parametrize("url", ["http://host:6379/0", "host:6379", "redis://", "redis://host:port/0",
                                 "redis://host:6379/zero", "redis://host:99999/0"])
def test_malformed_redis_url_is_a_config_error(url):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**KEY, "REDIS_URL": url})
    assert "REDIS_URL" in caught.value.messages[0]


def test_config_error_for_a_bad_redis_url_does_not_show_the_password():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**KEY, "REDIS_URL": "redis://:hunter2@host:bad/0"})
    assert "hunter2" not in " ".join(caught.value.messages)


def test_the_redis_password_and_vault_key_are_not_in_repr():
    settings = Settings.from_env({**KEY, "REDIS_URL": "redis://:hunter2@host/0", "RUNQY_VAULT_MASTER_KEY": "vk-9"})
    assert "hunter2" not in repr(settings) and "vk-9" not in repr(settings)


@pytest.mark.parametrize("env", [{}, {"RUNQY_API_KEY": ""}])
def test_missing_api_key_is_a_config_error_that_says_so(env):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**env, "REDIS_URL": "redis://localhost/0"})
    (message,) = caught.value.messages
    assert message.startswith("RUNQY_API_KEY is not set")
    assert "RUNQY_API_KEY=" in message


@pytest.mark.parametrize("name", ["PORT", "REDIS_PORT", "REDIS_DB", "RUNQY_MAX_BODY_SIZE"])
def test_non_integer_number_variable_is_a_config_error_naming_it(name):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**KEY, name: "3k"})
    assert caught.value.messages == ["%s must be an integer, not '3k'" % name]


def test_other_variables_are_read():
    settings = Settings.from_env({**KEY, "RUNQY_WORKER_API_KEY": "w", "RUNQY_CLIENT_API_KEY": "c", "PORT": "8080",
                                  "RUNQY_CONFIG_DIR": "/etc/runqy", "RUNQY_MAX_BODY_SIZE": "1024",
                                  "RUNQY_REDIS_PUBLIC_ADDR": "redis.public:6379"})
    assert (settings.worker_api_key, settings.client_api_key, settings.port, settings.config_dir,
            settings.max_body_size) == ("w", "c", 8080, "/etc/runqy", 1024)
    assert settings.redis_public_addr == "redis.public:6379"


def test_config_dir_is_the_example_config_of_the_package_where_there_is_no_config_dir(monkeypatch, tmp_path, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="runqy.config"):
        settings = Settings.from_env(KEY)

    assert settings.config_dir == str(defaults.EXAMPLE_CONFIG_DIR)
    assert load_dir(settings.config_dir) == load_dir(ROOT / "config")
    assert "serving the example queue configs of %s" % defaults.EXAMPLE_CONFIG_DIR in caplog.text


def test_an_empty_runqy_config_dir_counts_as_unset(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert Settings.from_env({**KEY, "RUNQY_CONFIG_DIR": ""}).config_dir == "config"


def test_sentinels_are_read_with_the_primary_they_watch_and_their_password():
    settings = Settings.from_env({**KEY, "REDIS_SENTINELS": "10.0.0.1:26379, s2.example:26380,[::1]:26381",
                                  "REDIS_SENTINEL_MASTER": "main", "REDIS_SENTINEL_PASSWORD": "sp",
                                  "REDIS_PASSWORD": "rp", "REDIS_DB": "2", "RUNQY_REDIS_WAIT_REPLICAS": "1"})

    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("s2.example", 26380), ("::1", 26381))
    assert (settings.redis_sentinel_master, settings.redis_sentinel_password) == ("main", "sp")
    assert (settings.redis_password, settings.redis_db, settings.redis_wait_replicas) == ("rp", 2, 1)
    assert "sp" not in repr(settings) and "rp" not in repr(settings)
    assert settings.redis_location == "Sentinels 10.0.0.1:26379,s2.example:26380,::1:26381 (primary 'main') db 2"


@pytest.mark.parametrize("env, says", [
    ({"REDIS_SENTINELS": "10.0.0.1:26379"}, "REDIS_SENTINEL_MASTER must name the primary"),
    ({"REDIS_SENTINELS": "10.0.0.1", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS must be host:port"),
    ({"REDIS_SENTINELS": "h:99999", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS must be host:port"),
    ({"RUNQY_REDIS_WAIT_REPLICAS": "-1"}, "RUNQY_REDIS_WAIT_REPLICAS must be 0 or more"),
])
def test_bad_sentinel_and_replica_settings_stop_the_start_saying_what_to_set(env, says):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**KEY, **env})
    assert says in caught.value.messages[0]


# --- normalize_queue ---------------------------------------------------------------------------------


def test_normalize_fills_every_default():
    assert normalize_queue("simple", {"deployment": DEPLOYMENT}) == {
        "name": "simple", "priority": 1, "mode": "long_running", "max_retry": 3, "timeout": defaults.TIMEOUT,
        "result_ttl": defaults.RESULT_TTL, "failed_ttl": defaults.FAILED_TTL,
        "pending_timeout": defaults.PENDING_TIMEOUT,
        "sub_queues": [{"name": "default", "priority": 1}],
        "deployment": {**DEPLOYMENT, "mode": "long_running", "branch": "main", "redis_storage": True, "vaults": []},
        "source": "api",
    }


def test_default_sub_queue_takes_the_queue_priority():
    queue = normalize_queue("q", {"priority": 7, "deployment": DEPLOYMENT})
    assert queue["sub_queues"] == [{"name": "default", "priority": 7}]
    assert full_queue_name("q") == "q.default"


def test_listed_sub_queues_are_exactly_those_and_inherit_the_queue_priority():
    queue = normalize_queue("q", {"priority": 4, "sub_queues": [{"name": "high", "priority": 9}, {"name": "low"}],
                                  "deployment": DEPLOYMENT})
    assert queue["sub_queues"] == [{"name": "high", "priority": 9}, {"name": "low", "priority": 4}]


def test_mode_comes_from_deployment_mode_when_the_queue_has_none():
    queue = normalize_queue("q", {"deployment": {**DEPLOYMENT, "mode": "one_shot"}})
    assert queue["mode"] == queue["deployment"]["mode"] == "one_shot"


def test_queue_level_mode_wins_over_deployment_mode():
    queue = normalize_queue("q", {"mode": "long_running", "deployment": {**DEPLOYMENT, "mode": "one_shot"}})
    assert queue["mode"] == queue["deployment"]["mode"] == "long_running"


def test_given_deployment_values_are_kept():
    queue = normalize_queue("q", {"max_retry": 0, "deployment": {**DEPLOYMENT, "branch": "dev",
                                                                 "redis_storage": False, "vaults": ["v1"]}})
    assert queue["max_retry"] == 0
    assert (queue["deployment"]["branch"], queue["deployment"]["redis_storage"], queue["deployment"]["vaults"]) == (
        "dev", False, ["v1"])


def test_normalize_does_not_change_its_input():
    entry = {"deployment": dict(DEPLOYMENT)}
    normalize_queue("q", entry)
    assert entry == {"deployment": DEPLOYMENT}


def test_full_queue_name_keeps_a_given_sub_queue():
    assert full_queue_name("inference.high") == "inference.high"


# --- load_file errors --------------------------------------------------------------------------------


def test_priority_zero_sub_queue_names_file_queue_and_field(tmp_path):
    path = write(tmp_path, "q.yaml", """\
queues:
  inference:
    sub_queues:
      - name: high
        priority: 0
    deployment: {git_url: https://example.com/w.git, startup_cmd: python main.py}
""")
    (message,) = config_errors(path)
    assert message.startswith(str(path) + ": ")
    assert "queue 'inference'" in message
    assert "field 'sub_queues.0.priority'" in message
    assert "minimum of 1" in message


def test_queue_priority_zero_is_refused(tmp_path):
    path = write(tmp_path, "q.yaml", GOOD_YAML.replace("  simple:\n", "  simple:\n    priority: 0\n"))
    (message,) = config_errors(path)
    assert str(path) in message and "queue 'simple'" in message and "field 'priority'" in message


def test_missing_git_url_names_file_queue_and_field(tmp_path):
    path = write(tmp_path, "q.yaml", "queues:\n  worker:\n    deployment:\n      startup_cmd: run\n")
    (message,) = config_errors(path)
    assert str(path) in message and "queue 'worker'" in message
    assert "deployment" in message and "'git_url' is a required property" in message


def test_missing_deployment_names_the_queue(tmp_path):
    path = write(tmp_path, "q.yaml", "queues:\n  worker:\n    priority: 2\n")
    (message,) = config_errors(path)
    assert str(path) in message and "queue 'worker'" in message and "'deployment'" in message


def test_unknown_field_names_file_queue_and_the_field(tmp_path):
    path = write(tmp_path, "q.yaml", GOOD_YAML.replace("  simple:\n", "  simple:\n    colour: blue\n"))
    (message,) = config_errors(path)
    assert str(path) in message and "queue 'simple'" in message and "'colour'" in message


def test_unknown_deployment_field_names_it(tmp_path):
    path = write(tmp_path, "q.yaml", GOOD_YAML + "      gitt_url: typo\n")
    (message,) = config_errors(path)
    assert "queue 'simple'" in message and "field 'deployment'" in message and "'gitt_url'" in message


def test_wrong_type_names_the_field(tmp_path):
    path = write(tmp_path, "q.yaml", GOOD_YAML.replace("  simple:\n", "  simple:\n    max_retry: lots\n"))
    (message,) = config_errors(path)
    assert "queue 'simple'" in message and "field 'max_retry'" in message and "expected integer" in message


def test_every_problem_of_a_file_is_reported(tmp_path):
    path = write(tmp_path, "q.yaml", """\
queues:
  a:
    priority: 0
    deployment: {git_url: https://example.com/w.git, startup_cmd: run}
  b:
    mode: sometimes
    deployment: {startup_cmd: run}
""")
    messages = config_errors(path)
    assert len(messages) == 3
    assert any("queue 'a'" in m and "field 'priority'" in m for m in messages)
    assert any("queue 'b'" in m and "field 'mode'" in m and "sometimes" in m for m in messages)
    assert any("queue 'b'" in m and "git_url" in m for m in messages)
    assert all(m.startswith(str(path)) for m in messages)


def test_invalid_yaml_syntax_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "broken.yaml", "queues:\n  simple:\n    deployment: {git_url: x, startup_cmd: y\n  other")
    (message,) = config_errors(path)
    assert message.startswith(str(path) + ": cannot read YAML")
    assert "line" in message
    assert "\n" not in message


def test_an_integer_of_too_many_digits_is_a_config_error_naming_the_file(tmp_path):
    path = write(tmp_path, "huge.yaml", "queues:\n  q:\n    max_retry: %s\n" % ("9" * 5000))
    (message,) = config_errors(path)
    assert message.startswith(str(path) + ": cannot read YAML") and "4300 digits" in message


def test_duplicate_sub_queue_name_names_file_queue_and_sub_queue(tmp_path):
    path = write(tmp_path, "q.yaml", """\
queues:
  inference:
    sub_queues: [{name: high, priority: 3}, {name: low}, {name: high}]
    deployment: {git_url: https://example.com/w.git, startup_cmd: python main.py}
""")
    (message,) = config_errors(path)
    assert str(path) in message and "queue 'inference'" in message
    assert "sub_queues" in message and "duplicate sub-queue name high" in message


def test_queue_defined_twice_in_one_file_is_an_error(tmp_path):
    path = write(tmp_path, "q.yaml", GOOD_YAML + GOOD_YAML.split("\n", 1)[1].replace("simple.git", "other.git"))
    messages = config_errors(path)
    assert any(str(path) in m and "simple" in m for m in messages)


def test_queue_name_with_a_dot_is_refused(tmp_path):
    path = write(tmp_path, "q.yaml", GOOD_YAML.replace("  simple:", "  simple.fast:"))
    (message,) = config_errors(path)
    assert str(path) in message and "simple.fast" in message


@pytest.mark.parametrize("text", ["", "just a string\n", "queues: []\n", "other: {}\n"])
def test_file_without_a_queues_map_is_an_error(tmp_path, text):
    path = write(tmp_path, "q.yaml", text)
    messages = config_errors(path)
    assert messages and all(m.startswith(str(path)) for m in messages)


def test_missing_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "absent.yaml"
    (message,) = config_errors(path)
    assert message.startswith(str(path) + ": cannot read YAML")


def test_good_file_loads_normalised(tmp_path):
    queues = load_file(write(tmp_path, "q.yml", GOOD_YAML))
    assert list(queues) == ["simple"]
    assert queues["simple"]["sub_queues"] == [{"name": "default", "priority": 1}]
    assert queues["simple"]["deployment"]["branch"] == "main"


# --- load_dir ------------------------------------------------------------------------------------------


def test_directory_with_one_bad_file_reports_only_that_files_errors(tmp_path):
    write(tmp_path, "a-good.yaml", GOOD_YAML)
    bad = write(tmp_path, "b-bad.yaml", "queues:\n  broken:\n    priority: 0\n    deployment: {startup_cmd: x}\n")
    queues, failures = load_dir(tmp_path)
    assert list(queues) == ["simple"]
    assert list(failures) == [str(bad)]
    assert len(failures[str(bad)]) == 2
    assert all(m.startswith(str(bad)) and "queue 'broken'" in m for m in failures[str(bad)])


def test_same_queue_in_two_files_is_an_error_of_the_second_file(tmp_path):
    write(tmp_path, "1.yaml", GOOD_YAML)
    second = write(tmp_path, "2.yml", GOOD_YAML.replace("simple.git", "fork.git"))
    queues, failures = load_dir(tmp_path)
    assert queues["simple"]["deployment"]["git_url"] == "https://example.com/simple.git"
    assert failures == {str(second): ["%s: queue 'simple' is already defined in 1.yaml" % second]}


def test_load_dir_reads_yaml_and_yml_and_ignores_other_files(tmp_path):
    write(tmp_path, "a.yaml", GOOD_YAML)
    write(tmp_path, "b.yml", GOOD_YAML.replace("simple", "other"))
    write(tmp_path, "README.md", "queues: [this is not read]\n")
    write(tmp_path, "c.yaml.bak", "::: broken")
    queues, failures = load_dir(tmp_path)
    assert (sorted(queues), failures) == (["other", "simple"], {})


def test_load_dir_of_a_missing_directory_reports_it(tmp_path):
    queues, failures = load_dir(tmp_path / "nope")
    assert queues == {}
    assert list(failures) == [str(tmp_path / "nope")]


def test_empty_directory_loads_nothing(tmp_path):
    assert load_dir(tmp_path) == ({}, {})


# --- the example config ----------------------------------------------------------------------------------


def test_example_config_loads_cleanly():
    queues, failures = load_dir(ROOT / "config")
    assert failures == {}
    assert sorted(queues) == ["hello", "inference", "inference_high", "simple"]
    inference, simple, hello = queues["inference"], queues["simple"], queues["hello"]
    assert inference["sub_queues"] == [{"name": "high", "priority": 10}, {"name": "low", "priority": 2}]
    assert (inference["priority"], inference["mode"], inference["max_retry"], inference["timeout"]) == (
        5, "long_running", 3, 300)
    assert inference["deployment"]["redis_storage"] is True
    assert simple["sub_queues"] == [{"name": "default", "priority": 1}]
    assert (simple["mode"], simple["max_retry"], simple["timeout"]) == ("one_shot", 1, defaults.TIMEOUT)
    assert (simple["deployment"]["mode"], simple["deployment"]["branch"]) == ("one_shot", "main")
    # the quick-start's queue: examples/hello, deployed from the repository the worker starts in
    assert hello["deployment"]["code_path"] == "examples/hello"
    assert (ROOT / hello["deployment"]["code_path"] / "main.py").is_file()
    assert (ROOT / hello["deployment"]["code_path"] / hello["deployment"]["requirements_file"]).is_file()
    # the seed's examples: its enqueue names "inference_high", its registration "inference"
    assert queues["inference_high"]["sub_queues"] == [{"name": "default", "priority": 10}]


def test_the_test_configs_are_the_example_configs_the_tests_were_written_for():
    examples, _ = load_dir(ROOT / "config")
    tests, _ = load_dir(CONFIG_DIR)
    assert tests == {name: examples[name] for name in ("inference", "simple")}
