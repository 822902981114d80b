"""The serving model over real processes: slow and hostile clients, taken ports, and the app
under WSGI servers other than runqy's gunicorn settings. Loopback only, every wait bounded.
"""

import os
import re
import select
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests

from runqy import __version__, defaults, keys
from tests.conftest import (
    ADMIN,
    ADMIN_KEY,
    CONFIG_DIR,
    ROOT,
    WORKER,
    Gunicorn,
    free_port,
    serve,
    served_env,
    stop,
    wait_for,
)

pytestmark = pytest.mark.e2e

SLOW_CONNECTIONS = 64
#: A trickling connection is cut this long after its limit (scheduling slack).
CUT_SLACK = 3.0
#: A refused connection gets its answer this fast.
AT_ONCE = 1.0

ENQUEUE = b'{"queue": "simple", "data": {"slow": true}}'


def request_head(body: bytes = ENQUEUE) -> bytes:
    return (b"POST /queue/add HTTP/1.1\r\nHost: test\r\nAuthorization: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (ADMIN["Authorization"].encode(), len(body)))


class Trickle(threading.Thread):
    """A client that sends ``data`` one byte a second until done or cut; records when it was cut."""

    def __init__(self, port: int, data: bytes, fast_prefix: int = 0):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.data, self.fast_prefix = data, fast_prefix
        self.started = time.monotonic()
        self.cut_after: float | None = None
        self.answer = b""

    def run(self) -> None:
        try:
            if self.fast_prefix:
                self.sock.sendall(self.data[:self.fast_prefix])
                self.started = time.monotonic()  # the body's clock starts once the headers are in
            for byte in self.data[self.fast_prefix:]:
                self.sock.sendall(bytes([byte]))
                if select.select([self.sock], [], [], 1.0)[0]:  # an answer, or the close
                    break
            self.answer = self.sock.recv(4096)
        except OSError:
            pass
        self.cut_after = time.monotonic() - self.started
        self.sock.close()


def test_slow_clients_cannot_shut_out_others_and_are_cut_in_bounded_time(server, r):
    port = server.port
    # half trickle their headers, half send headers at once and trickle the body
    slow = [Trickle(port, request_head() + ENQUEUE) for _ in range(SLOW_CONNECTIONS // 2)]
    slow += [Trickle(port, request_head() + ENQUEUE, fast_prefix=len(request_head()))
             for _ in range(SLOW_CONNECTIONS // 2)]
    for client in slow:
        client.start()
    time.sleep(1.0)

    latencies, failures = [], []
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:  # a fresh connection each time
            answer = requests.post(server.url + "/queue/add", data=b'{"queue": "simple", "data": 1}',
                                   headers=ADMIN, timeout=1)
            assert answer.status_code == 200, answer.text
            latencies.append(time.monotonic() - started)
        except requests.RequestException as exc:
            failures.append(repr(exc))
        time.sleep(0.02)
    answered = len(latencies) / (len(latencies) + len(failures))
    p99 = statistics.quantiles(latencies, n=100)[98]
    print("\nfresh requests beside %d slow connections: %d answered (%.1f%%), p50 %.1f ms, p99 %.1f ms"
          % (SLOW_CONNECTIONS, len(latencies), 100 * answered, 1000 * statistics.median(latencies), 1000 * p99))
    assert answered >= 0.99, failures[:5]

    for client in slow:
        client.join(defaults.HEADER_TIMEOUT + defaults.BODY_TIMEOUT + CUT_SLACK)
    header_cuts = [c.cut_after for c in slow[:SLOW_CONNECTIONS // 2]]
    body_cuts = [c.cut_after for c in slow[SLOW_CONNECTIONS // 2:]]
    assert all(t is not None and t <= defaults.HEADER_TIMEOUT + CUT_SLACK for t in header_cuts), header_cuts
    assert all(t is not None and t <= defaults.BODY_TIMEOUT + CUT_SLACK for t in body_cuts), body_cuts
    assert all(b"408 Request Timeout" in c.answer for c in slow[SLOW_CONNECTIONS // 2:])
    # none of the trickled tasks was written; every fresh one was
    assert r.llen(keys.pending("simple.default")) == len(latencies)


TLS_CLIENT_HELLO = bytes.fromhex("160301020001000200fc03036a2b") + os.urandom(200)


@pytest.mark.parametrize("garbage", [TLS_CLIENT_HELLO, b"\x00\xff" + os.urandom(64), b"get / http/1.1\r\n\r\n",
                                     b"{\"queue\": \"simple\"}"],
                         ids=["tls-client-hello", "binary", "lower-case", "json-without-request-line"])
def test_bytes_that_cannot_start_a_request_get_an_immediate_json_400_and_a_close(server, garbage):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(garbage)
        answer = b""
        while chunk := sock.recv(4096):  # the server closes after its answer
            answer += chunk
        took = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"Content-Type: application/json" in head and body.startswith(b'{"errors": ['), answer
    assert took < AT_ONCE
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_a_second_server_on_a_taken_port_refuses_to_start_and_the_first_keeps_every_connection(server,
                                                                                                gunicorn_env):
    assert "Listening at: http://127.0.0.1:%d" % server.port in server.output()
    env = {**os.environ, **gunicorn_env, "HOST": "127.0.0.1", "PORT": str(server.port),
           "RUNQY_API_KEY": "another-key"}
    done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:runqy.gunicorn_conf", "runqy.wsgi:app"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "cannot listen on 127.0.0.1:%d" % server.port in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    statuses = {requests.get(server.url + "/api/cli/queues", headers=ADMIN, timeout=5).status_code
                for _ in range(24)}
    assert statuses == {200}


def assert_serves_the_configured_queues(port: int, r) -> None:
    url = "http://127.0.0.1:%d" % port
    answer = requests.post(url + "/queue/add", json={"queue": "inference.high", "data": {"n": 1}}, headers=ADMIN,
                           timeout=5)
    assert answer.status_code == 200, answer.text
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [answer.json()["info"]["id"].encode()]
    reg = requests.post(url + "/worker/register", json={"queue": "inference"}, headers=WORKER, timeout=5)
    assert reg.status_code == 200, reg.text


def test_plain_gunicorn_without_runqy_settings_serves_the_configured_queues(r, gunicorn_env):
    port = free_port()
    process = serve([sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:%d" % port, "runqy.wsgi:app"],
                    gunicorn_env, port)
    try:
        assert_serves_the_configured_queues(port, r)
    finally:
        stop(process)


def test_another_wsgi_server_serves_the_configured_queues(r, gunicorn_env):
    port = free_port()
    script = ("from wsgiref.simple_server import make_server; import runqy.wsgi; "
              "make_server('127.0.0.1', %d, runqy.wsgi.app).serve_forever()" % port)
    process = serve([sys.executable, "-c", script], gunicorn_env, port)
    try:
        assert_serves_the_configured_queues(port, r)
    finally:
        stop(process)


def test_plain_gunicorn_with_a_bad_queue_config_stops_naming_file_queue_and_field(r, gunicorn_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""\
        queues:
          gpu:
            max_retry: lots
            deployment: {git_url: https://example.com/b.git, startup_cmd: python b.py}
        """))
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:%d" % free_port(),
                           "runqy.wsgi:app"], cwd=ROOT, env={**os.environ, **gunicorn_env,
                                                              "RUNQY_CONFIG_DIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "%s: queue 'gpu': field 'max_retry'" % bad in done.stderr, done.stderr
    assert r.hlen(keys.CONFIGS) == 0


@pytest.mark.e2e
def test_the_server_says_what_it_is_once_and_its_access_log_times_requests_and_shows_no_secret(r, redis_server):
    env = served_env(redis_server, RUNQY_ACCESS_LOG="-", REDIS_URL="redis://:redis-secret@127.0.0.1:%d/0"
                     % redis_server.port, RUNQY_VAULT_MASTER_KEY="")
    process = Gunicorn(env, workers=2)
    try:
        requests.get(process.url + "/health?probe=1", timeout=5)
        requests.get(process.url + "/api/cli/queues", headers=ADMIN, timeout=5)
        wait_for(lambda: "/api/cli/queues HTTP/1.1" in process.output(), timeout=5, what="the access log line")
        output = process.output()
    finally:
        process.stop()

    (summary,) = [line for line in output.splitlines() if "listening at" in line]
    assert "runqy %s listening at http://127.0.0.1:%d" % (__version__, process.port) in summary
    assert "2 gevent worker process(es), %d connections each" % defaults.WORKER_CONNECTIONS in summary
    assert "Redis 127.0.0.1:%d db 0" % redis_server.port in summary
    assert "2 queue config(s) from %s: inference, simple" % CONFIG_DIR in summary
    assert "vaults off (" in summary and "dashboard on (/monitoring)" in summary
    assert output.count("vaults are disabled") == 1  # in the summary, not once per worker process
    assert "MonkeyPatchWarning" not in output
    assert re.search(r'"GET /health\?probe=1 HTTP/1.1" 200 \d+ \d+ms ', output), output
    for secret in ("redis-secret", ADMIN_KEY):
        assert secret not in output
