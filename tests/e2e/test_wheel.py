"""runqy installed from its wheel alone serves everything, with no checkout in sight.

The module builds a wheel from a copy of the checkout, installs it (dependencies from
PyPI, or pip's cache) into a fresh venv in a temporary directory, and runs the installed
servers from an empty working directory against the session's private Redis.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from runqy import keys
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, CLIENT_KEY, ROOT, WORKER, WORKER_KEY, free_port, wait_for

pytestmark = pytest.mark.e2e

#: What building and installing may take (pip's cache makes repeats fast).
INSTALL_TIMEOUT = 300
#: Not part of a wheel, and may be large or stale in a checkout.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", ".dev", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".ruff_cache")


def run(argv: list, **options) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=INSTALL_TIMEOUT, **options)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv holding runqy from the wheel and its dependencies, nothing of the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    # a copy, because setuptools builds inside the source tree and would reuse a stale build/ there
    shutil.copytree(ROOT, work / "source", symlinks=True, ignore=NOT_SOURCES)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", work / "source"])
    (wheel,) = (work / "dist").glob("runqy-*.whl")
    shutil.rmtree(work / "source")
    run([sys.executable, "-m", "venv", "--without-pip", work / "venv"])
    python = work / "venv" / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel])
    imported = run([python, "-c", "import runqy, sys; print(runqy.__file__); print(sys.path)"],
                   cwd=tmp_path_factory.mktemp("empty"), env=clean_env()).stdout
    assert imported.startswith(str(work / "venv")), imported
    assert str(ROOT) not in imported
    return work / "venv"


def clean_env(**settings: str) -> dict:
    """Only what the server needs: no PYTHONPATH, no virtualenv, nothing of the checkout."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **settings}


class Served:
    """One server process of the installed runqy, run from an empty directory, on a free port."""

    def __init__(self, argv: list, cwd: Path, env: dict, port: int):
        self.url = "http://127.0.0.1:%d" % port
        self.log = cwd.parent / ("%s.log" % cwd.name)
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=30, what="%s on port %d" % (argv[0], port))

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("the server exited:\n" + self.output())
        return requests.get(self.url + "/health", timeout=1).ok

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)

    def get(self, path: str, **options) -> requests.Response:
        return requests.get(self.url + path, timeout=5, **options)

    def post(self, path: str, body: dict, headers: dict) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=headers, timeout=5)


def enqueue_and_read(server: Served) -> str:
    added = server.post("/queue/add", {"queue": "inference.high", "timeout": 300, "data": {"prompt": "hi"}}, CLIENT)
    assert added.status_code == 200, added.text
    task_id = added.json()["info"]["id"]
    status = server.get("/queue/%s" % task_id, headers=CLIENT)
    assert status.status_code == 200, status.text
    assert status.json()["info"]["state"] == "pending"
    return task_id


def test_runqy_serve_from_the_wheel_serves_every_route_and_the_example_config(venv, redis_server, r, tmp_path):
    (tmp_path / "empty").mkdir()
    port = free_port()
    env = clean_env(RUNQY_API_KEY=ADMIN_KEY, RUNQY_WORKER_API_KEY=WORKER_KEY, RUNQY_CLIENT_API_KEY=CLIENT_KEY,
                    REDIS_URL="redis://127.0.0.1:%d/0" % redis_server.port, HOST="127.0.0.1", PORT=str(port),
                    WEB_CONCURRENCY="1")
    server = Served([venv / "bin" / "runqy", "serve"], tmp_path / "empty", env, port)
    try:
        contract = server.get("/openapi.yaml")
        swagger = server.get("/swagger/index.html")
        schema = server.get("/schemas/enqueue.json")
        dashboard = [server.get(path) for path in ("/monitoring", "/monitoring/assets/dashboard.js",
                                                    "/monitoring/assets/dashboard.css")]
        registered = server.post("/worker/register", {"queue": "inference", "hostname": "h"}, WORKER)
        task_id = enqueue_and_read(server)
        queues = server.get("/api/cli/queues", headers=ADMIN)
    finally:
        server.stop()

    assert (contract.status_code, contract.content) == (200, (ROOT / "openapi.yaml").read_bytes())
    assert swagger.status_code == 200 and "SwaggerUIBundle" in swagger.text
    for answer, shipped in zip(dashboard, ("index.html", "dashboard.js", "dashboard.css")):
        assert (answer.status_code, answer.content) == (200, (ROOT / "runqy" / "dashboard" / shipped).read_bytes())
    assert (schema.status_code, schema.json()) == (200, json.loads((ROOT / "schemas" / "enqueue.json").read_text()))
    assert registered.status_code == 200, registered.text
    assert [s["name"] for s in registered.json()["sub_queues"]] == ["inference.high", "inference.low"]
    assert queues.status_code == 200
    assert r.exists(keys.task("inference.high", task_id))
    assert "serving the example queue configs" in server.output()


def test_plain_gunicorn_serves_the_installed_app_and_its_example_config(venv, redis_server, tmp_path):
    fresh = redis.Redis(port=redis_server.port, db=1)  # empty: the app loads the configs itself
    fresh.flushdb()
    (tmp_path / "empty").mkdir()
    port = free_port()
    env = clean_env(RUNQY_API_KEY=ADMIN_KEY, RUNQY_CLIENT_API_KEY=CLIENT_KEY,
                    REDIS_URL="redis://127.0.0.1:%d/1" % redis_server.port)
    server = Served([venv / "bin" / "gunicorn", "runqy.wsgi:app", "--bind", "127.0.0.1:%d" % port],
                    tmp_path / "empty", env, port)
    try:
        contract = server.get("/openapi.yaml")
        task_id = enqueue_and_read(server)
        stored = fresh.exists(keys.task("inference.high", task_id))
        configs = {name.decode() for name in fresh.hkeys(keys.CONFIGS)}
    finally:
        server.stop()
        fresh.flushdb()

    assert contract.status_code == 200
    assert stored
    assert configs == {"hello", "inference", "inference_high", "simple"}  # the example configs
