"""Test harness: a real redis-server on a free port, started once per session.

Nothing here touches the machine's own Redis on 6379. Each test starts from an
empty database of the session's private server, with the example queue configs
loaded, and gets a falcon TestClient; end-to-end tests get a real gunicorn.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import falcon.testing
import pytest
import redis
import requests

from runqy import config as runqy_config
from runqy import keys
from runqy.app import create_app
from runqy.config import Settings
from runqy.store import Store, connect

ROOT = Path(__file__).resolve().parent.parent
#: The queue configs the tests run on (tests/config; the example configs of config/ are tested apart).
CONFIG_DIR = ROOT / "tests" / "config"
ADMIN_KEY, WORKER_KEY, CLIENT_KEY = "admin-test-key", "worker-test-key", "client-test-key"
ADMIN = {"Authorization": "Bearer " + ADMIN_KEY}
WORKER = {"Authorization": "Bearer " + WORKER_KEY}
CLIENT = {"Authorization": "Bearer " + CLIENT_KEY}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: BLE001 - polling until it works
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(0.05)


#: Keys a server's background loops write whatever the requests do (runqy.housekeeper).
BACKGROUND_KEYS = frozenset((keys.HOUSEKEEPER.encode(), keys.HOUSEKEEPING.encode()))


def snapshot(r: redis.Redis) -> dict:
    """Every key with its serialized value, but the background loops' own: equal snapshots mean no
    request wrote anything."""
    return {key: r.dump(key) for key in sorted(r.keys("*")) if key not in BACKGROUND_KEYS}


def strict_json(text: str):
    """``text`` parsed the way strict clients (JSON.parse, Go) parse it: NaN and Infinity are errors."""
    def refuse(word: str):
        raise ValueError("not JSON: %s" % word)

    return json.loads(text, parse_constant=refuse)


class RedisServer:
    """A private redis-server process that tests may stop and start again; ``args`` are more of
    its options (``--replicaof 127.0.0.1 <port>`` makes it a replica)."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="runqy-redis-")
        self.args = args
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir, *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: redis.Redis(port=self.port).ping(), what="redis-server")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def r(redis_server) -> redis.Redis:
    """A raw client on the private server, emptied before the test."""
    if redis_server.process is None:
        redis_server.start()
    client = redis_server.client()
    client.flushdb()
    client.script_flush()
    return client


@pytest.fixture
def settings(redis_server) -> Settings:
    return Settings(api_key=ADMIN_KEY, worker_api_key=WORKER_KEY, client_api_key=CLIENT_KEY,
                    redis_host="127.0.0.1", redis_port=redis_server.port, redis_password="",
                    config_dir=str(CONFIG_DIR), max_body_size=64 * 1024)


@pytest.fixture
def queues() -> dict:
    """The example queue configs of config/, normalised."""
    loaded, failures = runqy_config.load_dir(CONFIG_DIR)
    assert not failures
    return loaded


@pytest.fixture
def store(r, settings, queues) -> Store:
    store = Store(connect(settings))
    store.configs.put_yaml(queues)
    return store


@pytest.fixture
def client(settings, store) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(settings, store=store))


class Gunicorn:
    """runqy served by a real gunicorn process on a free loopback port."""

    def __init__(self, env: dict, workers: int = 2):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = tempfile.NamedTemporaryFile(prefix="runqy-gunicorn-", suffix=".log", delete=False)
        self.env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(self.port),
                    "WEB_CONCURRENCY": str(workers)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:runqy.gunicorn_conf", "runqy.wsgi:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=20, what="gunicorn on port %d" % self.port)

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("gunicorn exited:\n" + self.output())
        return requests.get(self.url + "/health", timeout=1).ok

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)
        os.unlink(self.log.name)


def serve(command: list[str], env: dict, port: int, cwd: Path = ROOT) -> subprocess.Popen:
    """A server started by ``command`` (any WSGI server), once it answers /health on ``port``."""
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError("server exited:\n" + process.stdout.read())
        return requests.get("http://127.0.0.1:%d/health" % port, timeout=1).ok

    wait_for(up, timeout=20, what="server on port %d" % port)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(15)


def raw_post(port: int, path: str, head: str, body: bytes) -> tuple[int, str, bytes]:
    """POST ``body`` with the admin key and the ``head`` lines exactly as given, then send no more;
    the status, content type and body answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        request = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nConnection: close\r\n%s\r\n" % (path, ADMIN_KEY, head))
        sock.sendall(request.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, answer.getheader("Content-Type") or "", answer.read()


def served_env(redis_server: RedisServer, **more: str) -> dict:
    """The environment of a runqy server on the private Redis with the example configs, and ``more``."""
    return {"RUNQY_API_KEY": ADMIN_KEY, "RUNQY_WORKER_API_KEY": WORKER_KEY, "RUNQY_CLIENT_API_KEY": CLIENT_KEY,
            "REDIS_URL": "redis://127.0.0.1:%d/0" % redis_server.port, "RUNQY_CONFIG_DIR": str(CONFIG_DIR),
            **more}


@pytest.fixture
def gunicorn_env(redis_server) -> dict:
    return served_env(redis_server)


@pytest.fixture
def server(r, gunicorn_env):
    """A gunicorn-served runqy on the private Redis, example configs loaded at start-up."""
    process = Gunicorn(gunicorn_env)
    yield process
    process.stop()
