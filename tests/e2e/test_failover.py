"""Redis Sentinel failover with real processes on loopback: a primary, a replica and three
Sentinels (``redis-server --sentinel``), two runqy servers that find the primary through the
Sentinels, and a client that enqueues without pause while the primary is killed.

The test measures what an operator cares about and prints it: how long enqueues answered 503,
how long after the promotion the first 2xx came, and how many acknowledged tasks the new
primary lacks. With ``RUNQY_REDIS_WAIT_REPLICAS=1`` that number must be 0: an enqueue is
acknowledged only once the replica has it. Every wait is bounded.
"""

import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests

from runqy import keys
from tests.conftest import ADMIN, ADMIN_KEY, CONFIG_DIR, Gunicorn, free_port, wait_for

pytestmark = pytest.mark.e2e

MASTER = "runqy-primary"
#: Sentinel timing: the primary counts as down after 1 s without an answer; 2 of 3 must agree.
DOWN_AFTER_MS = 1000


class Node:
    """One redis-server process (a data node or, with ``sentinel``, a Sentinel) on loopback."""

    def __init__(self, directory: Path, port: int | None = None, *args: str, sentinel: bool = False):
        self.port = port or free_port()
        self.dir = directory / str(self.port)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.args, self.sentinel = args, sentinel
        self.process: subprocess.Popen | None = None

    def start(self) -> "Node":
        command = [shutil.which("redis-server") or "redis-server"]
        if self.sentinel:
            conf = self.dir / "sentinel.conf"
            conf.write_text("port %d\nbind 127.0.0.1\ndir %s\n%s\n" % (self.port, self.dir, "\n".join(self.args)))
            command += [str(conf), "--sentinel"]
        else:
            command += ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", str(self.dir), *self.args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.client().ping(), what="redis-server on %d" % self.port)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Deployment:
    """A primary, a replica and three Sentinels watching them."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="runqy-failover-"))
        # the first sync starts at once rather than after Redis's 5 s wait for more replicas
        self.primary = Node(self.dir, None, "--repl-diskless-sync-delay", "0").start()
        self.replica = Node(self.dir, None, "--replicaof", "127.0.0.1", str(self.primary.port),
                            "--repl-diskless-sync-delay", "0").start()
        monitor = ["sentinel monitor %s 127.0.0.1 %d 2" % (MASTER, self.primary.port),
                   "sentinel down-after-milliseconds %s %d" % (MASTER, DOWN_AFTER_MS),
                   "sentinel failover-timeout %s 5000" % MASTER,
                   "sentinel parallel-syncs %s 1" % MASTER]
        self.sentinels = [Node(self.dir, None, *monitor, sentinel=True).start() for _ in range(3)]
        wait_for(self._watching, timeout=20, what="the Sentinels to see the primary, the replica and each other")

    def _watching(self) -> bool:
        for sentinel in self.sentinels:
            state = sentinel.client().sentinel_master(MASTER)
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                return False
        return self.replica.client().info("replication")["master_link_status"] == "up"

    def primary_port(self) -> int:
        return int(self.sentinels[0].client().sentinel_get_master_addr_by_name(MASTER)[1])

    def env(self, **more: str) -> dict:
        return {"RUNQY_API_KEY": ADMIN_KEY, "RUNQY_CONFIG_DIR": str(CONFIG_DIR),
                "REDIS_SENTINELS": ",".join("127.0.0.1:%d" % s.port for s in self.sentinels),
                "REDIS_SENTINEL_MASTER": MASTER, **more}

    def stop(self) -> None:
        for node in (*self.sentinels, self.replica, self.primary):
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Enqueuer(threading.Thread):
    """Enqueues tasks with ids of its own, round-robin over the servers, as fast as they answer."""

    def __init__(self, urls: list[str]):
        super().__init__(daemon=True)
        self.urls = urls
        self.answers: list[tuple[float, int, str, str]] = []  # (time, status, task id, first error)
        self.stopping = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        n = 0
        while not self.stopping.is_set():
            task_id = str(uuid.uuid4())
            url = self.urls[n % len(self.urls)]
            n += 1
            try:
                answer = session.post(url + "/queue/add", json={"queue": "simple", "data": {"n": n},
                                                                 "task_id": task_id}, headers=ADMIN, timeout=5)
                status, error = answer.status_code, "" if answer.ok else answer.json()["errors"][0]
            except requests.RequestException as exc:
                status, error = 0, str(exc)
            self.answers.append((time.monotonic(), status, task_id, error))
            if status != 200:
                time.sleep(0.02)

    def acknowledged(self) -> list[str]:
        return [task_id for _, status, task_id, _ in self.answers if status == 200]


def registered_address(server: Gunicorn) -> str:
    answer = requests.post(server.url + "/worker/register", json={"queue": "simple"}, headers=ADMIN, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["redis"]["addr"]


@pytest.mark.parametrize("wait_replicas", [0, 1])
def test_a_primary_killed_under_load_fails_over_and_acknowledged_tasks_survive(wait_replicas):
    deployment = Deployment()
    servers: list[Gunicorn] = []
    enqueuer = None
    try:
        env = deployment.env(RUNQY_REDIS_WAIT_REPLICAS=str(wait_replicas))
        servers = [Gunicorn(env, workers=1), Gunicorn(env, workers=1)]
        enqueuer = Enqueuer([s.url for s in servers])
        enqueuer.start()
        wait_for(lambda: len(enqueuer.acknowledged()) >= 50, timeout=20, what="enqueues before the failover")

        old_port = deployment.primary.port
        assert registered_address(servers[0]) == "127.0.0.1:%d" % old_port
        killed = time.monotonic()
        deployment.primary.kill()
        wait_for(lambda: deployment.primary_port() != old_port, timeout=30, what="a promotion")
        promoted = time.monotonic()
        if wait_replicas:
            # the supervisor restarts the dead primary; the Sentinels make it a replica of the new one,
            # and enqueues can be acknowledged again once it has synced
            # (with the configuration Sentinel rewrote: a replica of the promoted one)
            deployment.primary = Node(deployment.dir, old_port, "--replicaof", "127.0.0.1",
                                      str(deployment.primary_port())).start()
        wait_for(lambda: any(t > promoted and s == 200 for t, s, _, _ in enqueuer.answers), timeout=30,
                 what="the first acknowledged enqueue after the promotion")
        first_after = min(t for t, s, _, _ in enqueuer.answers if t > promoted and s == 200)
        wait_for(lambda: sum(1 for t, s, _, _ in enqueuer.answers if t > first_after and s == 200) >= 50,
                 timeout=20, what="enqueues after the failover")
        # workers that register now are sent to the promoted primary
        assert registered_address(servers[1]) == "127.0.0.1:%d" % deployment.replica.port
    finally:
        if enqueuer:
            enqueuer.stopping.set()
            enqueuer.join(10)
        outputs = [server.output() for server in servers]
        for server in servers:
            server.stop()

    try:
        new_primary = redis.Redis(port=deployment.primary_port())
        acknowledged = enqueuer.acknowledged()
        lost = [task_id for task_id in acknowledged if not new_primary.exists(keys.task("simple.default", task_id))]
        refused = [(t, s, e) for t, s, _, e in enqueuer.answers if s != 200]
        window = (max(t for t, _, _ in refused) - min(t for t, _, _ in refused)) if refused else 0.0
        print("\nfailover with RUNQY_REDIS_WAIT_REPLICAS=%d: %d enqueues acknowledged, %d refused over %.2f s; "
              "promotion %.2f s after the kill; first 2xx %.2f s after the promotion; %d acknowledged tasks lost"
              % (wait_replicas, len(acknowledged), len(refused), window, promoted - killed, first_after - promoted,
                 len(lost)))
        assert {s for _, s, _ in refused} <= {503}, refused[:5]  # never a 500, a hang or a dropped connection
        unexpected = {e for _, _, e in refused if not e.startswith(("redis unavailable", "redis replicas"))}
        assert not unexpected, unexpected
        for output in outputs:
            assert "Traceback" not in output, output[-3000:]
        if wait_replicas:
            assert lost == []
        # the queue configs were replicated with everything else
        assert new_primary.hexists(keys.CONFIGS, "simple")
    finally:
        deployment.stop()
