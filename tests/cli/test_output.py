"""What every command prints the same way: --json, --watch, durations."""

import json
import signal
import subprocess

import pytest

from runqy.cli.output import CLEAR_SCREEN, duration
from tests.cli.helpers import bin_env, cli
from tests.conftest import ADMIN_KEY, ROOT


@pytest.mark.parametrize("argv, key", [
    (("queue", "list"), "queues"), (("queue", "inspect", "simple"), "sub_queues"),
    (("task", "list", "simple"), "tasks"), (("worker", "list"), "workers"), (("config", "list"), "configs"),
    (("vault", "list"), "vaults"), (("queue", "pause", "simple"), "paused"), (("config", "reload"), "loaded"),
])
def test_json_flag_prints_the_servers_json(url, capsys, argv, key):
    code, out, _ = cli(capsys, *argv, "--json")

    assert code == 0
    assert key in json.loads(out)


def test_queue_list_watch_clears_the_screen_and_redraws(url, capsys):
    code, out, _ = cli(capsys, "queue", "list", "--watch", "--interval", "0.01", "--count", "2")

    assert code == 0
    frames = out.split(CLEAR_SCREEN)
    assert frames[0] == "" and len(frames) == 3
    for frame in frames[1:]:
        assert frame.startswith("Every 0.01s: runqy queue list")
        assert "QUEUE  " in frame and "simple.default" in frame


def test_watch_stops_on_ctrl_c_with_exit_0(url, tmp_path):
    process = subprocess.Popen([str(ROOT / "bin" / "runqy"), "-s", url, "-k", ADMIN_KEY, "queue", "list", "--watch",
                                "--interval", "0.2"], env=bin_env(RUNQY_CONFIG_HOME=str(tmp_path)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        while "simple.default" not in seen:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            seen += line
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("seconds, shown", [(None, "-"), (-3, "0s"), (45.9, "45s"), (300, "5m0s"), (3723, "1h2m3s")])
def test_durations_read_as_go_prints_them(seconds, shown):
    assert duration(seconds) == shown
