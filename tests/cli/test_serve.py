"""runqy serve, as bin/runqy-server runs it."""

import subprocess
from pathlib import Path

import pytest
import requests

from runqy import keys
from tests.cli.helpers import bin_env
from tests.conftest import ADMIN_KEY, CONFIG_DIR, ROOT, free_port, wait_for


@pytest.mark.e2e
def test_bin_runqy_server_is_runqy_serve_with_its_arguments_for_gunicorn(redis_server, r, tmp_path):
    port = free_port()
    env = bin_env(RUNQY_API_KEY=ADMIN_KEY, REDIS_URL="redis://127.0.0.1:%d/0" % redis_server.port,
                   RUNQY_CONFIG_DIR=str(CONFIG_DIR), WEB_CONCURRENCY="1")
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen([str(ROOT / "bin" / "runqy-server"), "--bind", "127.0.0.1:%d" % port], cwd=tmp_path,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: requests.get("http://127.0.0.1:%d/health" % port, timeout=1).ok, timeout=20,
                 what="runqy serve on port %d" % port)
        assert r.hexists(keys.CONFIGS, "inference")  # the gunicorn master loaded config/ at start-up
    finally:
        process.terminate()
        process.wait(15)
        log.close()
    assert "gunicorn" in Path(tmp_path / "serve.log").read_text().lower()
