"""The existing clients against a real gunicorn: the Python SDK's HTTP calls and the seed's curl examples.

``runqy_python.client`` (v0.2.0, docs/clients.md §1) cannot be installed here, so
``SdkClient`` makes exactly its requests with urllib: same URL building, same
headers (``Content-Type: application/json`` even on a GET without a body), same
``json.dumps`` body, and the same mapping of statuses to errors. What it reads
back is only what the SDK reads back.
"""

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from runqy import keys, protobuf
from runqy.queue_names import full_queue_name
from tests.conftest import ADMIN_KEY, CLIENT_KEY, WORKER_KEY

pytestmark = pytest.mark.e2e


class RunqyError(Exception):
    """Raised for any other HTTP error, as ``HTTP <code>: <body>``."""


class AuthenticationError(RunqyError):
    """Raised on a 401."""


class TaskNotFoundError(RunqyError):
    """Raised on any 404, including an unknown queue on enqueue."""


class SdkClient:
    """The HTTP behaviour of ``runqy_python.client.RunqyClient``."""

    def __init__(self, server_url: str, api_key: str, timeout: int = 30):
        self.server_url = server_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.content_type = None  # of the last 2xx answer, for the tests

    def request(self, method: str, path: str, data=None) -> dict:
        headers = {"Authorization": "Bearer " + self.api_key, "Content-Type": "application/json"}
        body = None if data is None else json.dumps(data).encode("utf-8")
        req = urllib.request.Request(self.server_url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                self.content_type = resp.headers.get("Content-Type")
                text = resp.read().decode("utf-8")
                return json.loads(text) if text else {}
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8") if exc.fp else ""
            if exc.code == 401:
                raise AuthenticationError("Authentication failed: " + text) from None
            if exc.code == 404:
                raise TaskNotFoundError("Task not found: " + text) from None
            raise RunqyError("HTTP %d: %s" % (exc.code, text)) from None

    def enqueue(self, queue: str, payload, timeout: int = 300) -> dict:
        info = self.request("POST", "/queue/add", {"queue": queue, "timeout": timeout, "data": payload}).get("info", {})
        return {"task_id": info.get("id", ""), "queue": info.get("queue", queue),
                "state": info.get("state", "pending"), "payload": payload}

    def get_task(self, task_id: str) -> dict:
        response = self.request("GET", "/queue/" + task_id)
        info = response.get("Info", response.get("info", {}))
        parsed = {}
        for name in ("result", "payload"):
            value = info.get(name.capitalize(), info.get(name))
            if isinstance(value, str) and value:
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            parsed[name] = value
        return {"task_id": info.get("ID", info.get("id", task_id)), "queue": info.get("Queue", info.get("queue", "")),
                "state": info.get("State", info.get("state", "")), "error": info.get("LastErr", info.get("last_err")),
                **parsed}

    def enqueue_batch(self, queue: str, jobs: list) -> dict:
        """Documented for the SDK, not in v0.2.0 yet: the three keys it is to read."""
        response = self.request("POST", "/queue/add-batch", {"queue": queue, "jobs": jobs})
        return {"enqueued": response["enqueued"], "failed": response["failed"], "task_ids": response["task_ids"]}


@pytest.fixture
def sdk(served) -> SdkClient:
    return SdkClient(served.url, CLIENT_KEY)


def error_body(exc: RunqyError) -> dict:
    """The JSON body the SDK puts after ``: `` in its message."""
    return json.loads(str(exc).split(": ", 1)[1])


def task_keys(r) -> list[bytes]:
    return sorted(r.scan_iter("asynq:*t:*"))


# --- enqueue and get_task ------------------------------------------------------------


def test_sdk_enqueue_writes_the_task_with_the_sdk_timeout_and_reads_id_queue_state(sdk, r):
    task = sdk.enqueue("inference.high", {"prompt": "Hello world", "width": 1024})

    assert (task["queue"], task["state"]) == ("inference.high", "pending")
    assert sdk.content_type.startswith("application/json")
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [task["task_id"].encode()]
    h = r.hgetall(keys.task("inference.high", task["task_id"]))
    msg = protobuf.decode(h[b"msg"])
    assert (msg.id, msg.queue, msg.timeout, json.loads(msg.payload)) == (
        task["task_id"], "inference.high", 300, {"prompt": "Hello world", "width": 1024})
    assert (h[b"state"], h[b"active_timeout"]) == (b"pending", b"300")
    assert r.hget(keys.task_queue(task["task_id"]), "queue") == b"inference.high"


def test_sdk_enqueue_to_a_parent_name_uses_its_default_sub_queue(sdk, r):
    task = sdk.enqueue("simple", "just a string")

    assert task["queue"] == "simple.default"
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task["task_id"].encode()]
    assert sdk.get_task(task["task_id"])["payload"] == "just a string"


def test_sdk_get_task_reads_a_pending_task_back(sdk):
    task = sdk.enqueue("inference.low", {"n": [1, 2, 3]})

    assert sdk.get_task(task["task_id"]) == {"task_id": task["task_id"], "queue": "inference.low", "state": "pending",
                                              "error": None, "result": None, "payload": {"n": [1, 2, 3]}}
    assert sdk.content_type.startswith("application/json")


@pytest.mark.parametrize("stored, expected", [(b'{"text": "hi"}', {"text": "hi"}), (b'"hello"', "hello"),
                                              (b"1234", 1234), (b"null", None)])
def test_sdk_get_task_reads_the_result_a_worker_stored(sdk, r, stored, expected):
    task = sdk.enqueue("inference.high", {})
    # what runqy-worker writes on success (docs/worker-protocol.md §2.9)
    r.hset(keys.task("inference.high", task["task_id"]),
           mapping={"state": "completed", "result": stored, "completed_at": 1760000000})

    got = sdk.get_task(task["task_id"])
    assert (got["state"], got["result"], got["error"]) == ("completed", expected, None)


def test_sdk_get_task_reads_the_error_of_an_archived_task(sdk, r):
    task = sdk.enqueue("inference.high", {})
    r.hset(keys.task("inference.high", task["task_id"]),
           mapping={"state": "archived", "error_msg": "permanent failure: boom", "last_failed_at": 1760000000})

    got = sdk.get_task(task["task_id"])
    assert (got["state"], got["error"], got["result"]) == ("archived", "permanent failure: boom", None)


def test_sdk_enqueue_batch_reads_enqueued_failed_and_task_ids_in_job_order(sdk, r):
    jobs = [{"n": 1}, {"data": {"n": 2}}, "three"]
    batch = sdk.enqueue_batch("inference.low", jobs)

    assert (batch["enqueued"], batch["failed"], len(batch["task_ids"])) == (3, 0, 3)
    assert sdk.content_type.startswith("application/json")
    # LPUSH onto pending: the list holds the ids newest first
    assert r.lrange(keys.pending("inference.low"), 0, -1) == [i.encode() for i in reversed(batch["task_ids"])]
    assert [sdk.get_task(i)["payload"] for i in batch["task_ids"]] == [{"n": 1}, {"n": 2}, "three"]


# --- the SDK's status handling -------------------------------------------------------------


def test_sdk_with_a_bad_key_gets_401_as_authentication_error_and_nothing_is_written(served, r):
    bad = SdkClient(served.url, "not-a-key")
    with pytest.raises(AuthenticationError) as enqueue_error:
        bad.enqueue("inference.high", {"x": 1})
    with pytest.raises(AuthenticationError):
        bad.get_task("00000000-0000-4000-8000-000000000000")

    assert error_body(enqueue_error.value) == {"errors": ["invalid API key"]}
    assert r.llen(keys.pending("inference.high")) == 0 and task_keys(r) == []


@pytest.mark.parametrize("queue", ["nope", "inference", "inference.medium", "inference_default"])
def test_sdk_enqueue_to_an_unknown_queue_is_404_as_task_not_found(sdk, r, queue):
    full = full_queue_name(queue)
    with pytest.raises(TaskNotFoundError) as error:
        sdk.enqueue(queue, {"x": 1})

    assert error_body(error.value) == {"errors": ["queue not found: " + full]}
    assert task_keys(r) == [] and r.exists(keys.pending(full)) == 0


def test_sdk_get_of_an_unknown_task_is_404_as_task_not_found(sdk):
    with pytest.raises(TaskNotFoundError) as error:
        sdk.get_task("00000000-0000-4000-8000-000000000000")

    assert error_body(error.value)["errors"] == ["task not found: 00000000-0000-4000-8000-000000000000"]


def test_sdk_enqueue_with_an_invalid_timeout_is_400_with_a_json_body_naming_the_field(sdk, r):
    with pytest.raises(RunqyError) as error:
        sdk.enqueue("inference.high", {"x": 1}, timeout=0)

    assert str(error.value).startswith("HTTP 400: ")
    (message,) = error_body(error.value)["errors"]
    assert "timeout" in message
    assert task_keys(r) == []


def test_sdk_with_the_worker_key_is_403_with_a_json_body(served, r):
    with pytest.raises(RunqyError) as error:
        SdkClient(served.url, WORKER_KEY).enqueue("inference.high", {"x": 1})

    assert str(error.value).startswith("HTTP 403: ")
    assert len(error_body(error.value)["errors"]) == 1
    assert task_keys(r) == []


def test_a_wrong_method_is_405_with_a_json_body(sdk):
    with pytest.raises(RunqyError) as error:
        sdk.request("GET", "/queue/add")

    assert str(error.value).startswith("HTTP 405: ")
    assert len(error_body(error.value)["errors"]) == 1


# --- the seed's examples, verbatim, with curl ------------------------------------------------


def curl(served, method: str, path: str, key: str, body: str | None = None) -> tuple[int, str, dict]:
    """``curl -X METHOD URL -H 'Authorization: Bearer KEY' -H 'Content-Type: application/json' [-d BODY]``."""
    args = ["curl", "-sS", "-X", method, served.url + path, "-H", "Authorization: Bearer " + key,
            "-H", "Content-Type: application/json", "-w", "\n%{http_code} %{content_type}"]
    if body is not None:
        args += ["-d", body]
    out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=True).stdout
    text, _, trailer = out.rpartition("\n")
    code, content_type = trailer.split(" ", 1)
    assert content_type.startswith("application/json"), content_type
    return int(code), content_type, json.loads(text)


SEED_ENQUEUE = """{
  "queue": "%s",
  "timeout": 300,
  "data": {
    "prompt": "Hello world",
    "width": 1024
  }
}"""


def test_seed_enqueue_example_with_curl_answers_info_id_queue_state(served, r):
    code, _, body = curl(served, "POST", "/queue/add", ADMIN_KEY, SEED_ENQUEUE % "inference.high")

    assert code == 200
    info = body["info"]
    assert (info["queue"], info["state"]) == ("inference.high", "pending")
    msg = protobuf.decode(r.hget(keys.task("inference.high", info["id"]), "msg"))
    assert json.loads(msg.payload) == {"prompt": "Hello world", "width": 1024}


def test_seed_enqueue_example_with_its_own_queue_name_is_404_here(served, r):
    # the seed writes "inference_high"; our example config calls that sub-queue "inference.high"
    code, _, body = curl(served, "POST", "/queue/add", ADMIN_KEY, SEED_ENQUEUE % "inference_high")

    assert (code, body) == (404, {"errors": ["queue not found: inference_high.default"]})
    assert task_keys(r) == []


def test_seed_status_form_with_queue_name_reads_the_task_and_its_result(served, r):
    _, _, body = curl(served, "POST", "/queue/add", CLIENT_KEY, SEED_ENQUEUE % "simple")
    task_id = body["info"]["id"]
    r.hset(keys.task("simple.default", task_id), mapping={"state": "completed", "result": '"done"'})

    for queue_name in ("simple.default", "simple"):  # a parent name means its .default
        code, _, got = curl(served, "GET", "/queue/%s/%s" % (task_id, queue_name), CLIENT_KEY)
        assert code == 200
        assert (got["info"]["id"], got["info"]["state"], got["info"]["result"]) == (task_id, "completed", "done")


def test_seed_status_form_with_another_queue_is_404_and_a_malformed_name_400(served):
    _, _, body = curl(served, "POST", "/queue/add", CLIENT_KEY, SEED_ENQUEUE % "simple")
    task_id = body["info"]["id"]

    assert curl(served, "GET", "/queue/%s/inference.high" % task_id, CLIENT_KEY)[0] == 404
    assert curl(served, "GET", "/queue/%s/unknown" % task_id, CLIENT_KEY)[0] == 404
    code, _, error = curl(served, "GET", "/queue/%s/bad..name" % task_id, CLIENT_KEY)
    assert code == 400 and len(error["errors"]) == 1


def test_seed_register_example_with_curl_answers_redis_queue_and_deployment(served, redis_server):
    code, _, body = curl(served, "POST", "/worker/register", WORKER_KEY,
                         '{\n  "worker_id": "worker-abc123",\n  "queue": "inference"\n}')

    assert code == 200
    assert body["redis"] == {"addr": "127.0.0.1:%d" % redis_server.port, "password": "", "db": 0, "use_tls": False}
    assert (body["queue"]["name"], body["queue"]["priority"], body["queue"]["mode"]) == ("inference", 5, "long_running")
    deployment = body["deployment"]
    assert (deployment["git_url"], deployment["branch"], deployment["startup_cmd"]) == (
        "https://github.com/example/inference-worker.git", "main", "python main.py")
    assert (deployment["startup_timeout_secs"], deployment["requirements_file"]) == (300, "requirements.txt")
