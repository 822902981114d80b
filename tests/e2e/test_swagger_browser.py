"""The Swagger UI page in a real headless Chromium against a real gunicorn.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages ending in a NUL byte on file descriptors 3 and 4), so no driver
and no websocket library is needed. Buttons are clicked and the page is read
with ``Runtime.evaluate``; every wait is bounded.

The tests are skipped only when no Chromium can be found (set CHROME_BIN to
point at one).
"""

import fcntl
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ADMIN_KEY, wait_for

#: Operations of the seed's API reference that the page must list.
SEED_OPERATIONS = {
    ("GET", "/health"),
    ("POST", "/worker/register"),
    ("POST", "/queue/add"),
    ("POST", "/queue/add-batch"),
    ("GET", "/queue/{task_id}"),
    ("GET", "/queue/{task_id}/{queue_name}"),
    ("GET", "/api/cli/queues"),
    ("POST", "/api/cli/queues/{queue}/pause"),
    ("POST", "/api/cli/queues/{queue}/unpause"),
    ("GET", "/api/cli/workers"),
    ("GET", "/api/cli/configs"),
}
WAIT = 20.0
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--no-default-browser-check",
                  "--disable-dev-shm-usage", "--disable-background-timer-throttling",
                  "--disable-backgrounding-occluded-windows", "--disable-renderer-backgrounding")


def find_chromium() -> str | None:
    candidates = [os.environ.get("CHROME_BIN"), "chromium", "chromium-browser", "google-chrome",
                  "google-chrome-stable"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    return None


class DevToolsError(Exception):
    """Raised when Chromium answers a DevTools command with an error."""


class Chromium:
    """A headless Chromium and its DevTools pipe."""

    def __init__(self, executable: str, profile: Path, *extra_flags: str):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def pipes_on_3_and_4() -> None:  # in the child: the DevTools pipe ends where Chromium expects them
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)
            os.close(read_end)
            os.close(write_end)

        self.log = profile.parent / (profile.name + ".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [executable, *CHROMIUM_FLAGS, *extra_flags, "--user-data-dir=%s" % profile,
                 "--remote-debugging-pipe", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                close_fds=False, preexec_fn=pipes_on_3_and_4)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = WAIT) -> dict:
        with self._cond:
            self._next_id += 1
            message_id = self._next_id
        message = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._cond:
            answered = self._cond.wait_for(
                lambda: message_id in self._answers or not self._reader.is_alive(), timeout)
            answer = self._answers.pop(message_id, None)
        if answer is None:
            raise DevToolsError("%s: no answer (%s)\n%s" % (
                method, "timed out" if not answered else "chromium exited", self.output()))
        if "error" in answer:
            raise DevToolsError("%s: %s" % (method, answer["error"]))
        return answer["result"]

    def new_page(self) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, target, session)

    def requests_sent(self, session: str) -> list[str]:
        with self._cond:
            return [e["params"]["request"]["url"] for e in self.events
                    if e.get("sessionId") == session and e["method"] == "Network.requestWillBeSent"]

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (DevToolsError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        os.close(self._to_browser)
        self._reader.join(5)
        os.close(self._from_browser)


class Page:
    """One tab, attached through a flat DevTools session."""

    def __init__(self, browser: Chromium, target: str, session: str):
        self.browser = browser
        self.target = target
        self.session = session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise DevToolsError("%s\n%s" % (expression, json.dumps(result["exceptionDetails"])[:2000]))
        return result["result"].get("value")

    def wait(self, expression: str, what: str, timeout: float = WAIT) -> Any:
        try:
            return wait_for(lambda: self.evaluate(expression), timeout=timeout, what=what)
        except TimeoutError:
            raise AssertionError("%s; the page shows:\n%s\nerrors: %s" % (
                what, self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''"),
                self.evaluate(SWAGGER_ERRORS))) from None

    def open(self, url: str) -> None:
        self.send("Network.enable")
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait("window.ui !== undefined && document.querySelectorAll('.opblock').length > 0",
                  "Swagger UI rendering the operations of " + url)

    def type_into(self, selector: str, text: str) -> None:
        """Focuses an input and types into it as a keyboard would (React sees the change)."""
        assert self.evaluate("(() => { const e = document.querySelector(%s); if (!e) return false;"
                             " e.focus(); return document.activeElement === e })()" % json.dumps(selector)), selector
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str, within: str = "document") -> None:
        clicked = self.evaluate("(() => { const e = (%s).querySelector(%s); if (!e) return false; e.click();"
                                " return true })()" % (within, json.dumps(selector)))
        assert clicked, "nothing to click at %s in %s" % (selector, within)


#: The errors Swagger UI collected while loading and resolving the document.
SWAGGER_ERRORS = ("window.ui ? window.ui.errSelectors.allErrors().toJS()"
                  ".map(e => (e.path ? [].concat(e.path).join('.') + ': ' : '') + e.message) : null")

#: "METHOD path" of every operation the page lists.
OPERATIONS = """Array.from(document.querySelectorAll('.opblock')).map(op => [
  op.querySelector('.opblock-summary-method').innerText.trim(),
  op.querySelector('.opblock-summary-path').getAttribute('data-path')])"""


def operation(method: str, path: str) -> str:
    """A JS expression for the operation block of ``method path``."""
    return ("Array.from(document.querySelectorAll('.opblock')).find(op =>"
            " op.querySelector('.opblock-summary-method').innerText.trim() === %s &&"
            " op.querySelector('.opblock-summary-path').getAttribute('data-path') === %s)"
            % (json.dumps(method), json.dumps(path)))


def execute(page: Page, method: str, path: str) -> dict:
    """Expands an operation, presses "Try it out" (once) and "Execute"; the live response shown."""
    block = operation(method, path)
    if not page.evaluate("%s.classList.contains('is-open')" % block):
        page.click(".opblock-summary-control", within=block)
        page.wait("%s.querySelector('.opblock-body') !== null" % block, "the %s %s panel" % (method, path))
    if page.evaluate("%s.querySelector('.try-out__btn.cancel') === null" % block):
        page.click(".try-out__btn", within=block)
    if page.evaluate("%s.querySelector('.btn-clear') !== null" % block):  # the response of an earlier Execute
        page.click(".btn-clear", within=block)
        page.wait("%s.querySelector('.live-responses-table') === null" % block, "the old response cleared")
    page.wait("%s.querySelector('button.execute') !== null" % block, "the Execute button of %s %s" % (method, path))
    page.click("button.execute", within=block)
    return page.wait(
        """(() => { const op = %s; const status = op.querySelector('.live-responses-table tbody .response-col_status');
        if (!status || !status.innerText.trim()) return null;
        const curl = op.querySelector('.curl-command .curl');
        const body = op.querySelector('.live-responses-table tbody .response-col_description');
        return {status: status.innerText.trim(), curl: curl ? curl.innerText : '',
                body: body ? body.innerText : ''} })()""" % block,
        "a live response to %s %s" % (method, path))


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium not found: install Debian's 'chromium' package or set CHROME_BIN")
    # runqy.test resolves to the loopback address, for a page that is not on "localhost"
    browser = Chromium(executable, tmp_path_factory.mktemp("chromium") / "profile",
                       "--host-resolver-rules=MAP runqy.test 127.0.0.1")
    yield browser
    browser.close()


@pytest.fixture
def page(chromium):
    page = chromium.new_page()
    yield page
    chromium.send("Target.closeTarget", {"targetId": page.target})


@pytest.mark.e2e
def test_swagger_page_lists_the_operations_of_the_seed_and_resolves_them_without_errors(page, module_server):
    page.open(module_server.url + "/swagger/index.html")

    listed = {tuple(op) for op in page.evaluate(OPERATIONS)}
    assert SEED_OPERATIONS <= listed, "missing: %s" % sorted(SEED_OPERATIONS - listed)
    assert page.evaluate("document.title") == "runqy API"
    # what expanding each operation does: Swagger UI resolves the $refs of its subtree
    subtrees = json.dumps([["paths", path, method.lower()] for method, path in sorted(SEED_OPERATIONS)])
    page.evaluate("%s.forEach(subtree => window.ui.specActions.requestResolvedSubtree(subtree))" % subtrees)
    page.wait("window.ui.errSelectors.allErrors().size > 0 ||"
              " %s.every(subtree => window.ui.specSelectors.specResolvedSubtree(subtree) !== undefined)" % subtrees,
              "every operation of the seed resolved")
    assert page.evaluate(SWAGGER_ERRORS) == []
    assert page.evaluate("document.querySelector('.errors-wrapper') === null")


@pytest.mark.e2e
def test_try_it_out_on_get_health_shows_200_in_the_page(page, module_server):
    page.open(module_server.url + "/swagger/index.html")

    shown = execute(page, "GET", "/health")

    assert shown["status"] == "200", shown
    assert '"status": "ok"' in shown["body"], shown
    assert module_server.url + "/health" in shown["curl"], shown


@pytest.mark.e2e
def test_authorize_with_the_bearer_key_lets_try_it_out_call_an_admin_route(page, module_server):
    page.open(module_server.url + "/swagger/index.html")
    refused = execute(page, "GET", "/api/cli/queues")
    assert refused["status"] == "401", refused

    page.click(".auth-wrapper .btn.authorize")
    page.wait("document.querySelector('#auth-bearer-value') !== null", "the Bearer field of the Authorize dialog")
    page.type_into("#auth-bearer-value", ADMIN_KEY)
    bearer_form = "document.querySelector('#auth-bearer-value').closest('form')"
    page.click("button[type=submit].authorize", within=bearer_form)
    page.wait("document.querySelector('.auth-container h6') !== null", "the dialog saying Authorized")
    page.click(".btn-done, .close-modal")
    page.wait("document.querySelector('.dialog-ux') === null", "the Authorize dialog closing")
    shown = execute(page, "GET", "/api/cli/queues")

    assert page.evaluate("document.querySelector('.auth-wrapper .btn.authorize').classList.contains('locked')")
    assert shown["status"] == "200", shown
    assert "Authorization: Bearer %s" % ADMIN_KEY in shown["curl"], shown
    assert "inference.high" in shown["body"] and "simple.default" in shown["body"], shown


@pytest.mark.e2e
def test_swagger_page_loads_nothing_from_other_origins(page, module_server):
    origin = "http://runqy.test:%d" % module_server.port
    assert requests.get(module_server.url + "/swagger/index.html", timeout=5).status_code == 200

    page.open(origin + "/swagger/index.html")
    page.wait("document.querySelector('.info .title') !== null", "the document's title")

    # what the rendered page refers to (an <img> outside the origin would be fetched from the internet)
    referenced = page.evaluate("Array.from(document.querySelectorAll('img[src], script[src], link[href], iframe[src]'))"
                               ".map(e => e.src || e.href)")
    sent = page.browser.requests_sent(page.session)
    assert origin + "/openapi.yaml" in sent
    assert origin + "/swagger/swagger-ui-bundle.js" in sent
    assert [url for url in referenced + sent if not url.startswith((origin + "/", "data:"))] == []
