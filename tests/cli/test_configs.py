"""runqy config: list, create, remove, reload on the server; validate without one."""

import json

from runqy import defaults, keys
from tests.cli.helpers import cli, enqueue, nowhere
from tests.conftest import ROOT


def _configs(r) -> dict:
    return {k.decode(): json.loads(v) for k, v in r.hgetall(keys.CONFIGS).items()}


def test_config_list_shows_name_priority_mode_and_git_url(url, capsys):
    code, out, _ = cli(capsys, "config", "list")

    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "PRIORITY", "MODE", "GIT_URL"],
        ["inference", "5", "long_running", "https://github.com/example/inference-worker.git"],
        ["simple", "1", "one_shot", "https://github.com/example/simple-worker.git"]]


def test_config_create_from_flags_refuses_an_existing_one_unless_forced(url, capsys, r):
    code, out, _ = cli(capsys, "config", "create", "--name", "resize", "--priority", "4", "--git-url",
                       "https://example.com/r.git", "--startup-cmd", "python r.py", "--code-path", "svc")

    assert (code, out) == (0, "Created 1 queue configuration(s):\n  - resize\n")
    stored = _configs(r)["resize"]
    assert (stored["priority"], stored["mode"]) == (4, defaults.MODE)
    assert stored["deployment"]["code_path"] == "svc"
    assert r.hget(keys.queue_config("resize.default"), "max_retry") == b"%d" % defaults.MAX_RETRY

    code, out, err = cli(capsys, "config", "create", "--name", "resize", "--git-url", "g", "--startup-cmd", "s")

    assert (code, out) == (1, "")
    assert err == "Error: queue config already exists: resize (use --force to replace it)\n"
    assert _configs(r)["resize"]["priority"] == 4

    code, out, _ = cli(capsys, "config", "create", "--name", "resize", "--git-url", "g", "--startup-cmd", "s",
                       "--mode", "one_shot", "--force")

    assert (code, out) == (0, "Updated 1 queue configuration(s):\n  - resize\n")
    assert (_configs(r)["resize"]["mode"], _configs(r)["resize"]["priority"]) == ("one_shot", defaults.PRIORITY)


def test_config_create_from_a_yaml_file_creates_each_of_its_queues(url, capsys, r, tmp_path):
    path = tmp_path / "more.yaml"
    path.write_text("queues:\n"
                    "  thumbs:\n    priority: 3\n    sub_queues: [{name: fast, priority: 9}, {name: slow}]\n"
                    "    deployment: {git_url: https://example.com/t.git, startup_cmd: python t.py}\n"
                    "  ocr:\n    mode: one_shot\n"
                    "    deployment: {git_url: https://example.com/o.git, startup_cmd: python o.py}\n")

    code, out, _ = cli(capsys, "config", "create", "-f", str(path))

    assert code == 0
    assert out == "Created 2 queue configuration(s):\n  - thumbs\n  - ocr\n"
    configs = _configs(r)
    assert [s["name"] for s in configs["thumbs"]["sub_queues"]] == ["fast", "slow"]
    assert configs["ocr"]["mode"] == "one_shot"
    assert r.exists(*map(keys.queue_config, ("thumbs.fast", "thumbs.slow", "ocr.default"))) == 3


def test_config_create_from_an_invalid_yaml_file_names_the_field_and_changes_nothing(url, capsys, r, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("queues:\n  good:\n    deployment: {git_url: g, startup_cmd: s}\n"
                    "  broken:\n    priority: 0\n    deployment: {git_url: g, startup_cmd: s}\n")
    before = r.hgetall(keys.CONFIGS)

    code, out, err = cli(capsys, "config", "create", "-f", str(path))

    assert (code, out) == (1, "")
    assert str(path) in err and "queue 'broken'" in err and "priority" in err
    assert r.hgetall(keys.CONFIGS) == before


def test_config_create_with_both_a_file_and_flags_is_a_usage_error(url, capsys, tmp_path):
    code, _, err = cli(capsys, "config", "create", "-f", str(tmp_path / "x.yaml"), "--name", "x")

    assert code == 2
    assert "either -f FILE or the flags --name" in err


def test_config_remove_deletes_the_config_and_keeps_the_tasks(url, capsys, r):
    task_id = enqueue(capsys, "simple")

    code, out, _ = cli(capsys, "config", "remove", "simple")

    assert code == 0 and "'simple' deleted" in out
    assert "simple" not in _configs(r)
    assert not r.exists(keys.queue_config("simple.default"))
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task_id.encode()]
    assert cli(capsys, "config", "remove", "simple")[0] == 1


def test_config_reload_puts_the_yaml_configs_back(url, capsys, r):
    r.delete(keys.CONFIGS)

    code, out, _ = cli(capsys, "config", "reload")

    assert (code, out) == (0, "Reloaded 2 queue configuration(s):\n  - inference\n  - simple\n")
    assert set(_configs(r)) == {"inference", "simple"}


# --- config validate ---------------------------------------------------------------------


def test_config_validate_checks_the_example_configs_without_a_server(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)

    code, out, _ = cli(capsys, "-s", nowhere(), "config", "validate")

    assert code == 0
    assert out.startswith("Validated %s:\n  - hello.default (priority=1)\n  - inference.high (priority=10)\n"
                          "  - inference.low (priority=2)\n  - inference_high.default (priority=10)\n"
                          "  - simple.default (priority=1)\n" % defaults.CONFIG_DIR)
    assert out.endswith("Total: 4 queue(s), 5 sub-queue(s)\nValidation successful!\n")


def test_config_validate_of_a_bad_directory_names_file_queue_and_field_and_exits_1(capsys, tmp_path):
    (tmp_path / "good.yaml").write_text("queues:\n  a:\n    deployment: {git_url: g, startup_cmd: s}\n")
    (tmp_path / "bad.yaml").write_text("queues:\n  b:\n    mode: sometimes\n    deployment: {git_url: g}\n")

    code, out, err = cli(capsys, "config", "validate", "--dir", str(tmp_path))

    assert (code, out) == (1, "")
    assert "%s: queue 'b': field 'mode'" % (tmp_path / "bad.yaml") in err
    assert "startup_cmd" in err
    assert err.startswith("Error: ")
    assert err.endswith("\nValidation failed: 1 file(s) with errors. Fix them and run 'runqy config validate' again.\n")


def test_config_validate_json_reports_queues_and_errors(capsys, tmp_path):
    (tmp_path / "bad.yaml").write_text("queues: [not, a, map]\n")

    code, out, _ = cli(capsys, "config", "validate", "--dir", str(tmp_path), "--json")

    assert code == 1
    answer = json.loads(out)
    assert answer["valid"] is False and list(answer["errors"]) == [str(tmp_path / "bad.yaml")]


def test_config_validate_of_a_missing_directory_is_a_usage_error(capsys, tmp_path):
    code, _, err = cli(capsys, "config", "validate", "--dir", str(tmp_path / "nope"))

    assert code == 2
    assert err.startswith("Error: %s is not a directory (looked in %s)\n" % (tmp_path / "nope", tmp_path / "nope"))


def test_config_validate_outside_a_checkout_names_the_directory_it_looked_in_and_dir(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    code, out, err = cli(capsys, "config", "validate")

    assert (code, out) == (2, "")
    assert err == ("Error: %s is not a directory (looked in %s, the default)\n"
                   "Point it at the directory of your queue configs' *.yaml files: runqy config validate --dir DIR\n"
                   % (defaults.CONFIG_DIR, tmp_path / defaults.CONFIG_DIR))
