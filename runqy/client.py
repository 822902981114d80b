"""The admin client: every ``/api/cli/*`` and ``/api/vaults`` call as one method.

Each method returns the server's JSON answer unchanged (the CLI's ``--json``).

It owns one ``requests.Session`` (one connection pool, the Bearer header set
once), passes an explicit timeout on every call, retries only GETs, and turns
every HTTP failure into its own exceptions in one place (``_request``).
"""

from typing import Any, Iterator
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from runqy import __version__, defaults

#: Answers worth a second try: a proxy or the server itself says "not now".
RETRY_STATUSES = frozenset((502, 503, 504))


class ClientError(Exception):
    """Base of every error the admin client raises."""


class InvalidServer(ClientError):
    """Raised when the server URL is not an http(s) URL."""


class ServerRefused(ClientError):
    """Raised when the server answers with a status of 400 or more (or an answer that is not JSON)."""

    def __init__(self, status: int, messages: list[str]):
        super().__init__("HTTP %d: %s" % (status, "; ".join(messages)))
        self.status = status
        self.messages = messages


class Unreachable(ClientError):
    """Raised when the server cannot be connected to or does not answer in time."""


def normalize_url(url: str) -> str:
    """``host:3000`` means ``http://host:3000``; no trailing slash."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidServer("invalid server URL %r: expected http(s)://host[:port]" % url)
    return url


def _segment(value: str) -> str:
    """One path segment, percent-encoded (worker ids hold ':')."""
    return quote(value, safe="")


def _messages(resp: requests.Response) -> list[str]:
    """The ``errors`` of a refusal, or what can be said about an answer without them."""
    try:
        errors = resp.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    if isinstance(errors, list) and errors:
        return [str(e) for e in errors]
    text = " ".join(resp.text.split())[:200]
    return ["HTTP %d %s%s" % (resp.status_code, resp.reason or "", ": " + text if text else "")]


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause of a connection failure, without urllib3's object reprs."""
    cause: Any = exc.args[0] if exc.args else exc
    cause = getattr(cause, "reason", cause)
    text = str(cause)
    for closing in (">: ", "): "):  # "<HTTPConnection object at 0x..>: " or "HTTPConnection(host=..): "
        head, found, rest = text.partition(closing)
        if found and (head[:1].isalpha() or head.startswith("<")):
            return rest
    return text


class AdminClient:
    """A runqy server seen through its admin API, with the admin key."""

    def __init__(self, server_url: str, api_key: str, timeout: float = defaults.CLI_TIMEOUT,
                 retries: int = defaults.CLI_RETRIES):
        self.server_url = normalize_url(server_url)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "runqy-cli/%s" % __version__
        self.session.headers["Accept"] = "application/json"
        if api_key:
            self.session.headers["Authorization"] = "Bearer " + api_key
        # Connection failures are retried for every method (nothing was sent);
        # read timeouts and gateway errors only for GET, which changes nothing.
        retry = Retry(total=retries, connect=retries, read=retries, status=retries, other=0,
                      allowed_methods=frozenset(("GET",)), status_forcelist=RETRY_STATUSES,
                      backoff_factor=defaults.CLI_RETRY_BACKOFF, raise_on_status=False,
                      respect_retry_after_header=False)
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "AdminClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                 headers: dict | None = None, wait: int = 0) -> Any:
        """The one place that talks HTTP: the decoded JSON answer, or one of our exceptions.

        ``wait``: seconds the server may hold the answer back (``?wait=``), on top of the timeout.
        """
        timeout = self.timeout + wait
        try:
            resp = self.session.request(method, self.server_url + path, params=params, json=body,
                                        headers=headers, timeout=timeout)
        except requests.Timeout:
            raise Unreachable("the runqy server at %s did not answer within %gs"
                              % (self.server_url, timeout)) from None
        except requests.ConnectionError as exc:
            raise Unreachable("cannot reach the runqy server at %s: %s" % (self.server_url, _reason(exc))) from None
        except requests.RequestException as exc:
            raise ClientError("request to %s failed: %s" % (self.server_url, exc)) from None
        if resp.status_code >= 400:
            raise ServerRefused(resp.status_code, _messages(resp))
        try:
            return resp.json()
        except ValueError:
            raise ServerRefused(resp.status_code, ["the answer of %s%s is not JSON: is this a runqy server?"
                                                   % (self.server_url, path)]) from None

    # --- queues ------------------------------------------------------------------------

    def queues(self, limit: int | None = None) -> dict:
        """One page of the queues: at most ``limit``, else the server's largest page (1000)."""
        return self._request("GET", "/api/cli/queues", params={"limit": limit} if limit else None)

    def queue(self, name: str) -> dict:
        return self._request("GET", "/api/cli/queues/" + _segment(name))

    def pause(self, name: str) -> dict:
        return self._request("POST", "/api/cli/queues/%s/pause" % _segment(name))

    def unpause(self, name: str) -> dict:
        return self._request("POST", "/api/cli/queues/%s/unpause" % _segment(name))

    def run_queue(self, name: str, state: str) -> dict:
        """Every ``state`` (archived, retry or scheduled) task of the queue to pending:
        ``{queue, state, moved, sub_queues: [{name, moved}]}``."""
        return self._request("POST", "/api/cli/queues/%s/run" % _segment(name), params={"state": state})

    def stats(self) -> dict:
        """Redis (version, mode, memory, clients, uptime) and the tasks processed and failed per UTC day
        over every queue, the last 7 days, oldest first: ``{redis: {...}, history: [{date, processed,
        failed}], time}``."""
        return self._request("GET", "/api/cli/stats")

    # --- tasks -------------------------------------------------------------------------

    def enqueue(self, queue: str, payload: Any, timeout: int | None = None, *, delay: int | None = None,
                process_at: str | float | None = None, unique_for: int | None = None,
                idempotency_key: str | None = None) -> dict:
        """``delay`` or ``process_at`` (RFC 3339 or Unix seconds) schedules the task; ``unique_for``
        refuses the same payload on the queue for that many seconds (409)."""
        options = {"timeout": timeout, "delay": delay, "process_at": process_at, "unique_for": unique_for}
        body = {"queue": queue, "data": payload, **{k: v for k, v in options.items() if v is not None}}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._request("POST", "/api/cli/tasks", body=body, headers=headers)

    def list_tasks(self, queue: str, state: str = defaults.TASK_STATE, limit: int = defaults.PAGE,
                   offset: int = 0) -> dict:
        """One page: ``{queue, state, total, limit, offset, tasks}``."""
        return self._request("GET", "/api/cli/queues/%s/tasks" % _segment(queue),
                             params={"state": state, "limit": limit, "offset": offset})

    def iter_pages(self, queue: str, state: str = defaults.TASK_STATE, limit: int | None = None,
                   page_size: int = defaults.MAX_PAGE) -> Iterator[dict]:
        """Pages of at most ``page_size`` until ``limit`` tasks (or all of them) are read."""
        offset, remaining = 0, limit
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            page = self.list_tasks(queue, state, size, offset)
            yield page
            if remaining is not None:
                remaining -= len(page["tasks"])
            offset += size
            if offset >= page["total"] or not page["tasks"]:
                return

    def get_task(self, queue: str, task_id: str) -> dict:
        """``{"task": {...}}``."""
        return self._request("GET", "/api/cli/queues/%s/tasks/%s" % (_segment(queue), _segment(task_id)))

    def wait_task(self, queue: str, task_id: str, wait: int) -> dict:
        """``{"info": {...}}`` once the task has completed or been archived, or after ``wait``
        seconds (1 to 60) with the task as it is then; ``queue`` is its sub-queue."""
        return self._request("GET", "/queue/%s/%s" % (_segment(task_id), _segment(queue)),
                             params={"wait": wait}, wait=wait)

    def run_task(self, queue: str, task_id: str) -> dict:
        """A scheduled, retry or archived task to pending: ``{id, queue, state, was}`` (409 otherwise)."""
        return self._request("POST", "/api/cli/queues/%s/tasks/%s/run" % (_segment(queue), _segment(task_id)))

    def cancel_task(self, task_id: str) -> dict:
        """``canceled`` is false when the task is running (the server answers 202)."""
        return self._request("DELETE", "/api/cli/tasks/" + _segment(task_id))

    def delete_task(self, queue: str, task_id: str) -> dict:
        return self._request("DELETE", "/api/cli/queues/%s/tasks/%s" % (_segment(queue), _segment(task_id)))

    # --- workers -----------------------------------------------------------------------

    def workers(self) -> dict:
        return self._request("GET", "/api/cli/workers")

    def worker(self, worker_id: str) -> dict:
        return self._request("GET", "/api/cli/workers/" + _segment(worker_id))

    # --- queue configs -----------------------------------------------------------------

    def configs(self) -> dict:
        return self._request("GET", "/api/cli/configs")

    def reload_configs(self) -> dict:
        return self._request("POST", "/api/cli/configs/reload")

    def create_config(self, body: dict, force: bool = False) -> dict:
        """``body`` is one YAML queue entry plus its ``name``; ``force`` replaces an existing one."""
        return self._request("POST", "/api/cli/configs", params={"force": "true"} if force else None, body=body)

    def delete_config(self, name: str) -> dict:
        return self._request("DELETE", "/api/cli/configs/" + _segment(name))

    # --- vaults ------------------------------------------------------------------------

    def vaults(self) -> dict:
        return self._request("GET", "/api/vaults")

    def create_vault(self, name: str, description: str = "") -> dict:
        return self._request("POST", "/api/vaults", body={"name": name, "description": description})

    def vault(self, name: str) -> dict:
        return self._request("GET", "/api/vaults/" + _segment(name))

    def delete_vault(self, name: str) -> dict:
        return self._request("DELETE", "/api/vaults/" + _segment(name))

    def entries(self, vault: str) -> dict:
        return self._request("GET", "/api/vaults/%s/entries" % _segment(vault))

    def set_entry(self, vault: str, key: str, value: str, secret: bool = True) -> dict:
        return self._request("POST", "/api/vaults/%s/entries" % _segment(vault),
                             body={"key": key, "value": value, "is_secret": secret})

    def unset_entry(self, vault: str, key: str) -> dict:
        return self._request("DELETE", "/api/vaults/%s/entries/%s" % (_segment(vault), _segment(key)))
