"""The monitoring dashboard in a real headless Chromium against a real gunicorn and Redis.

The page is loaded from ``http://runqy.test:<port>`` (mapped to the loopback address), so
that a request to localhost or 127.0.0.1 would count as leaving the server's origin too.
Every page is saved as a full-page screenshot under ``$RUNQY_TEST_ARTIFACTS`` (else
``test-artifacts/dashboard/`` at the checkout root) for a person to look at. Every wait is
bounded by a Playwright timeout of a few seconds; the page refreshes itself every 3 s.
"""

import base64
import os
import time
from pathlib import Path

import pytest
import requests

from runqy import config as runqy_config
from tests.conftest import ADMIN, ADMIN_KEY, ROOT, WORKER_KEY, Gunicorn, served_env
from tests.helpers import heartbeat, log_lines
from tests.worker_sim import SimWorker, register

sync_api = pytest.importorskip("playwright.sync_api")

#: Milliseconds any one wait of a test may take: a refresh comes every 3 s.
WAIT_MS = 8000
VAULT_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
#: The module's gunicorn has vaults enabled, so that their pages have something to show.
SERVED_ENV = {"RUNQY_VAULT_MASTER_KEY": VAULT_MASTER_KEY}
COOKIE = "runqy_session"
ARTIFACTS = Path(os.environ.get("RUNQY_TEST_ARTIFACTS") or ROOT / "test-artifacts" / "dashboard")


@pytest.fixture(scope="module")
def read_only_server(redis_server, module_server):
    """A second gunicorn on the same Redis whose dashboard may only read (and without vaults)."""
    process = Gunicorn(served_env(redis_server, RUNQY_DASHBOARD_READ_ONLY="true"), workers=1)
    yield process
    process.stop()


class Tab:
    """One browser page on one server's dashboard, with every URL it requested."""

    def __init__(self, browser, server: Gunicorn, width: int = 1280, height: int = 800):
        self.origin = "http://runqy.test:%d" % server.port
        self.api = server.url
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.requested: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, path: str) -> None:
        self.page.goto(self.origin + path)

    def sign_in(self, key: str = ADMIN_KEY, path: str = "/monitoring") -> None:
        self.open(path)
        self.page.get_by_test_id("signin-key").fill(key)
        self.page.get_by_test_id("signin-submit").click()
        self.page.get_by_test_id("nav").wait_for()

    def by(self, testid: str):
        return self.page.get_by_test_id(testid)

    def cookie(self) -> str:
        return next(c["value"] for c in self.context.cookies() if c["name"] == COOKIE)

    def confirm(self) -> None:
        """Confirm the open dialog, after checking it is the modal one."""
        dialog = self.by("confirm-dialog")
        dialog.wait_for()
        assert self.page.evaluate("document.querySelector('dialog').matches(':modal')")
        self.by("confirm-ok").click()
        dialog.wait_for(state="hidden")

    def shoot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / (name + ".png")
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, served):
    opened = Tab(browser, served)
    yield opened
    opened.close()
    assert opened.errors == [], "errors thrown in the page: %s" % opened.errors


def enqueue(server: Gunicorn, queue: str, data, **more) -> str:
    answer = requests.post(server.url + "/queue/add", headers=ADMIN, timeout=5,
                           json={"queue": queue, "data": data, **more})
    assert answer.status_code == 200, answer.text
    return answer.json()["info"]["id"]


def api_get(server: Gunicorn, path: str) -> dict:
    answer = requests.get(server.url + path, headers=ADMIN, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def cell_values(row) -> dict[str, str]:
    return dict(row.locator("[data-col]").evaluate_all("cells => cells.map(c => [c.dataset.col, c.dataset.value])"))


# --- signing in and out ------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_wrong_key_is_refused_in_the_page_and_the_admin_key_opens_the_dashboard_without_being_kept(tab):
    tab.open("/monitoring/workers")
    tab.by("signin-form").wait_for()
    assert tab.page.title() == "Sign in · runqy"
    assert tab.by("signin-key").get_attribute("type") == "password"
    tab.shoot("sign-in")

    tab.by("signin-key").fill("not-the-key")
    tab.by("signin-submit").click()
    sync_api.expect(tab.by("signin-error")).to_have_text("invalid API key")
    assert tab.by("signin-key").input_value() == ""
    assert tab.context.cookies() == []

    tab.by("signin-key").fill(ADMIN_KEY)
    tab.by("signin-submit").click()
    tab.by("worker-table").wait_for()

    assert tab.page.url == tab.origin + "/monitoring/workers"  # the page asked for, after signing in
    assert tab.page.title() == "Workers · runqy"
    assert tab.page.evaluate("document.cookie") == ""  # HttpOnly: scripts never see the session
    stored = tab.page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert stored == "[[],[]]"
    assert ADMIN_KEY not in tab.page.content() and ADMIN_KEY not in tab.page.url
    assert not tab.by("read-only-badge").is_visible()


@pytest.mark.e2e
def test_sign_out_ends_the_session_and_its_cookie_no_longer_opens_the_api(tab, served):
    tab.sign_in()
    cookie = {COOKIE: tab.cookie()}
    assert requests.get(served.url + "/api/cli/queues", cookies=cookie, timeout=5).status_code == 200

    token = requests.get(served.url + "/monitoring/session", cookies=cookie, timeout=5).json()["csrf_token"]

    with tab.page.expect_request(lambda request: request.method == "DELETE") as sign_out:
        tab.by("sign-out").click()

    assert sign_out.value.url == tab.origin + "/monitoring/session"
    assert sign_out.value.headers["x-csrf-token"] == token
    tab.by("signin-form").wait_for()
    sync_api.expect(tab.by("signin-error")).to_have_text("You are signed out.")
    assert not tab.by("nav").is_visible()
    assert requests.get(served.url + "/api/cli/queues", cookies=cookie, timeout=5).status_code == 401
    assert requests.get(served.url + "/monitoring/session", cookies=cookie, timeout=5).status_code == 401


@pytest.mark.e2e
def test_a_cross_site_post_with_the_session_cookie_is_refused_with_or_without_the_token(tab, served):
    tab.sign_in()
    cookie = {COOKIE: tab.cookie()}
    token = requests.get(served.url + "/monitoring/session", cookies=cookie, timeout=5).json()["csrf_token"]
    pause = served.url + "/api/cli/queues/inference.high/pause"

    own_origin = "http://127.0.0.1:%d" % served.port  # the host these requests are sent to

    cross_site = requests.post(pause, cookies=cookie, timeout=5,
                               headers={"Origin": "http://evil.example", "X-CSRF-Token": token})
    no_token = requests.post(pause, cookies=cookie, timeout=5, headers={"Origin": own_origin})
    wrong_token = requests.post(pause, cookies=cookie, timeout=5, headers={"Origin": own_origin, "X-CSRF-Token": "x"})
    no_token_cross_site = requests.post(pause, cookies=cookie, timeout=5, headers={"Origin": "http://evil.example"})

    assert [a.status_code for a in (cross_site, no_token, wrong_token, no_token_cross_site)] == [403] * 4
    assert cross_site.json()["errors"] and no_token.json()["errors"]
    assert api_get(served, "/api/cli/queues/inference.high")["paused"] is False
    # the page's own way, for contrast: its origin and the token
    same_site = requests.post(served.url + "/api/cli/queues/inference.high/unpause", cookies=cookie, timeout=5,
                              headers={"Origin": own_origin, "X-CSRF-Token": token})
    assert same_site.status_code == 200, same_site.text


# --- the overview ------------------------------------------------------------------------------


def succeed_or_fail(payload):
    if payload.get("fail"):
        raise RuntimeError("failed on purpose")
    return {"ok": True}


def work_off(worker: SimWorker, count: int) -> None:
    """Let the simulated worker run ``count`` tasks to their end."""
    deadline = time.monotonic() + 5
    done = 0
    while done < count:
        assert time.monotonic() < deadline, "the worker ran %d of %d tasks" % (done, count)
        done += worker.run_once() is not None


@pytest.mark.e2e
def test_the_overview_shows_every_queue_with_the_counts_of_the_api_and_parents_summed(tab, served):
    for n in range(3):
        enqueue(served, "inference.high", {"n": n})
    for n in range(2):
        enqueue(served, "inference.low", {"n": n})
    for n in range(3):
        enqueue(served, "simple", {"n": n})
    enqueue(served, "simple", {"fail": True}, max_retry=0)
    worker = SimWorker(register(served.url, WORKER_KEY, "simple"), handler=succeed_or_fail)
    try:
        work_off(worker, 4)
    finally:
        worker.stop()
    enqueue(served, "simple", {"later": True}, delay=3600)
    queues = {q["name"]: q for q in api_get(served, "/api/cli/queues")["queues"]}
    assert (queues["simple.default"]["processed_today"], queues["simple.default"]["failed_today"]) == (3, 1)

    tab.sign_in()
    table = tab.by("queue-table")
    sync_api.expect(table.get_by_test_id("queue-row")).to_have_count(len(queues))

    for name, expected in queues.items():
        shown = cell_values(table.locator('[data-testid="queue-row"][data-queue="%s"]' % name))
        for state in ("pending", "held", "active", "scheduled", "retry", "archived", "completed",
                      "processed_today", "failed_today"):
            assert shown[state] == str(expected[state]), (name, state, shown)
    parent = cell_values(table.locator('[data-testid="queue-parent-row"][data-queue="inference"]'))
    assert parent["pending"] == "5"
    totals = cell_values(tab.by("queue-totals"))
    assert (totals["pending"], totals["scheduled"], totals["completed"], totals["archived"]) == ("5", "1", "3", "1")
    assert (totals["processed_today"], totals["failed_today"]) == ("3", "1")
    assert tab.by("redis-info").inner_text().count("Redis") == 1
    bars = tab.by("history-chart").locator("rect.bar")
    assert bars.count() == 14  # 7 days, processed and failed
    assert "3 processed" in bars.nth(12).text_content() and "1 failed" in bars.nth(13).text_content()  # today
    tab.by("live-chart").locator("polyline").first.wait_for(state="attached")  # a second sample, 3 s later
    assert tab.page.title() == "Overview · runqy"
    tab.shoot("overview")


@pytest.mark.e2e
def test_a_thousand_queues_are_all_rendered_and_the_time_it_took_is_reported(tab, served, store):
    before = api_get(served, "/api/cli/queues?limit=1")["total"]
    store.configs.put({"bulk-%04d" % i: runqy_config.queue_from_body({
        "name": "bulk-%04d" % i, "priority": 1,
        "deployment": {"git_url": "https://example.com/w.git", "startup_cmd": "python w.py"}}) for i in range(1000)})
    total = api_get(served, "/api/cli/queues?limit=1")["total"]
    assert total == before + 1000

    tab.sign_in()

    sync_api.expect(tab.by("queue-table").get_by_test_id("queue-row")).to_have_count(total)
    table = tab.by("queue-table")
    rebuilt_ms = float(table.get_attribute("data-rebuild-ms"))
    enqueue(served, "bulk-0500", {"n": 1})  # one row changes: a refresh replaces only it
    sync_api.expect(table.locator('[data-queue="bulk-0500.default"] [data-col="pending"]')).to_have_attribute(
        "data-value", "1")
    print("\n%d queues rendered in %.1f ms, from their data's arrival to laid out; a refresh that changed one"
          " row took %s ms" % (total, rebuilt_ms, table.get_attribute("data-render-ms")))
    assert table.get_attribute("data-rows") == str(total)
    assert table.get_attribute("data-rebuild-ms") == "%.1f" % rebuilt_ms  # no second full rebuild


@pytest.mark.e2e
def test_at_phone_width_the_overview_does_not_overflow_the_page(browser, served):
    enqueue(served, "inference.high", {"n": 1})
    phone = Tab(browser, served, width=390, height=844)
    try:
        phone.sign_in()
        phone.by("queue-row").first.wait_for()
        phone.by("live-chart").locator("polyline").first.wait_for(state="attached")

        assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
        assert phone.by("nav-vaults").is_visible()
        phone.shoot("overview-phone")
    finally:
        phone.close()


# --- queues and tasks ------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_task_reached_by_links_is_canceled_from_its_page_and_shown_archived(tab, served):
    ids = [enqueue(served, "inference.high", {"prompt": "<b>bold</b> & \"quoted\"", "n": n}) for n in range(3)]
    tab.sign_in()

    tab.by("queue-table").locator('a[href="/monitoring/queues/inference.high"]').click()
    tab.by("task-table").wait_for()
    assert tab.page.url == tab.origin + "/monitoring/queues/inference.high"
    sync_api.expect(tab.by("task-row")).to_have_count(3)
    tab.shoot("queue")
    tab.by("task-table").locator('a[href="/monitoring/queues/inference.high/tasks/%s"]' % ids[0]).click()
    sync_api.expect(tab.by("task-state")).to_have_attribute("data-state", "pending")
    assert tab.page.url == tab.origin + "/monitoring/queues/inference.high/tasks/" + ids[0]
    payload = tab.by("task-payload")
    assert '"<b>bold</b> & \\"quoted\\""' in payload.inner_text()  # shown as text, never as markup
    assert payload.locator("b").count() == 0
    tab.shoot("task")

    tab.by("task-cancel").click()  # Escape backs out of the dialog and changes nothing
    tab.by("confirm-dialog").wait_for()
    tab.page.keyboard.press("Escape")
    tab.by("confirm-dialog").wait_for(state="hidden")
    assert api_get(served, "/api/cli/queues/inference.high/tasks/" + ids[0])["task"]["state"] == "pending"
    tab.by("task-cancel").click()
    assert "Cancel task %s?" % ids[0] in tab.by("confirm-dialog").inner_text()
    tab.confirm()

    sync_api.expect(tab.by("task-state")).to_have_attribute("data-state", "archived")
    assert api_get(served, "/api/cli/queues/inference.high/tasks/" + ids[0])["task"]["state"] == "archived"
    assert "canceled" in tab.by("task-error").inner_text()
    tab.shoot("task-archived")
    task_url = tab.origin + "/api/cli/queues/inference.high/tasks/" + ids[0]
    asked = tab.requested.count(task_url)
    tab.page.wait_for_timeout(2500)  # more than the 2 s a task that may still change is refreshed at
    assert tab.requested.count(task_url) == asked  # archived is final: no more refreshing
    tab.page.go_back()  # the History API: back to the queue, by its URL
    sync_api.expect(tab.by("task-row")).to_have_count(2)
    assert tab.page.title() == "inference.high · pending · runqy"


@pytest.mark.e2e
def test_pausing_and_unpausing_a_queue_shows_in_the_page_and_in_the_api(tab, served):
    enqueue(served, "inference.high", {"n": 1})
    tab.sign_in(path="/monitoring/queues/inference.high?state=pending&page=1")

    tab.by("queue-pause").click()
    sync_api.expect(tab.by("queue-status")).to_have_text("paused")
    assert api_get(served, "/api/cli/queues/inference.high")["paused"] is True
    sync_api.expect(tab.by("count-held")).to_have_attribute("data-value", "1")
    tab.by("tab-held").click()
    sync_api.expect(tab.by("task-row")).to_have_count(1)
    assert tab.page.url.endswith("/monitoring/queues/inference.high?state=held&page=1")
    assert tab.by("tab-held").get_attribute("aria-current") == "page"

    tab.by("queue-unpause").click()
    sync_api.expect(tab.by("queue-status")).to_have_text("running")
    assert api_get(served, "/api/cli/queues/inference.high")["paused"] is False
    sync_api.expect(tab.by("count-pending")).to_have_attribute("data-value", "1")


@pytest.mark.e2e
def test_selected_tasks_and_then_every_archived_one_are_deleted_after_a_confirmation_with_their_number(tab, served):
    ids = [enqueue(served, "inference.low", {"n": n}) for n in range(5)]
    for task_id in ids:
        assert requests.delete(served.url + "/api/cli/tasks/" + task_id, headers=ADMIN, timeout=5).status_code == 200
    tab.sign_in(path="/monitoring/queues/inference.low?state=archived&page=1")
    sync_api.expect(tab.by("task-row")).to_have_count(5)

    for task_id in ids[:2]:
        tab.page.locator('[data-select="%s"]' % task_id).check()
    sync_api.expect(tab.by("selected-count")).to_have_text("2 tasks selected")
    tab.by("bulk-delete").click()
    assert "Delete 2 selected archived tasks of inference.low?" in tab.by("confirm-dialog").inner_text()
    tab.confirm()
    sync_api.expect(tab.by("task-row")).to_have_count(3)
    sync_api.expect(tab.by("selected-count")).to_have_text("0 tasks selected")

    tab.by("all-delete").click()
    assert "Delete 3 archived tasks of inference.low?" in tab.by("confirm-dialog").inner_text()
    tab.confirm()

    sync_api.expect(tab.by("task-row")).to_have_count(0)
    assert api_get(served, "/api/cli/queues/inference.low")["archived"] == 0


@pytest.mark.e2e
def test_refreshing_pauses_while_the_page_is_hidden_and_resumes_when_it_is_shown(tab):
    tab.sign_in()
    tab.by("queue-row").first.wait_for()
    queues_url = tab.origin + "/api/cli/queues?limit=1000&offset=0"
    # what the browser reports when the tab goes to the background
    tab.page.evaluate("""() => { window.hiddenForTest = true;
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => window.hiddenForTest});
        document.dispatchEvent(new Event('visibilitychange')); }""")
    asked = tab.requested.count(queues_url)
    tab.page.wait_for_timeout(4000)  # more than a refresh interval
    assert tab.requested.count(queues_url) == asked

    with tab.page.expect_request(queues_url, timeout=2000):
        tab.page.evaluate("() => { window.hiddenForTest = false;"
                          " document.dispatchEvent(new Event('visibilitychange')); }")


@pytest.mark.e2e
def test_a_session_that_ends_on_the_server_brings_the_sign_in_form_back(tab, r):
    tab.sign_in(path="/monitoring/workers")
    tab.by("worker-table").wait_for()

    for key in r.scan_iter("runqy:session:*"):  # what its expiry does
        r.delete(key)

    sync_api.expect(tab.by("signin-error")).to_have_text("Your session has ended: sign in again.")
    tab.by("signin-key").fill(ADMIN_KEY)
    tab.by("signin-submit").click()
    tab.by("worker-table").wait_for()  # back where it was


# --- workers, configs, vaults: every page, and nothing from another origin ----------------------------


@pytest.fixture
def beating_worker(served):
    """A worker registered over HTTP whose heartbeat hash and log lines are written as runqy-worker
    writes them (the simulated worker beats through this fixture)."""
    worker = SimWorker(register(served.url, WORKER_KEY, "inference"), handler=lambda payload: payload)
    worker_id = "sim-%d:%d" % (os.getpid(), 4242)
    now = int(time.time())
    polled = " ".join("%s:%d" % (q["name"], q["priority"]) for q in worker.registration["sub_queues"])
    heartbeat(worker.redis, worker_id, last_beat=now, started_at=now - 3725, queues="map[%s]" % polled)
    log_lines(worker.redis, worker_id, 12, start_ms=now * 1000)
    yield worker_id
    worker.stop()


@pytest.mark.e2e
def test_every_page_renders_and_no_request_leaves_the_servers_origin(tab, served, beating_worker):
    task_id = enqueue(served, "inference.high", {"prompt": "hello"})
    requests.post(served.url + "/api/vaults", headers=ADMIN, timeout=5,
                  json={"name": "ml-keys", "description": "model keys"}).raise_for_status()
    tab.sign_in()

    tab.by("nav-workers").click()
    row = tab.page.locator('[data-testid="worker-row"][data-worker="%s"]' % beating_worker)
    sync_api.expect(row).to_contain_text("running")
    assert "inference.high" in row.inner_text()
    tab.shoot("workers")
    row.get_by_role("link").click()
    sync_api.expect(tab.by("worker-logs")).to_contain_text("line 11")
    tab.shoot("worker")

    configs = api_get(served, "/api/cli/configs")["configs"]
    from_files = sorted(c["name"] for c in configs if c["source"] == "yaml")
    tab.by("nav-configs").click()
    sync_api.expect(tab.by("config-row")).to_have_count(len(configs))
    tab.by("configs-reload").click()
    tab.confirm()
    sync_api.expect(tab.by("reload-result")).to_contain_text(
        "Loaded %d configs: %s." % (len(from_files), ", ".join(from_files)))
    tab.shoot("configs")
    tab.page.locator('[data-testid="config-row"][data-config="inference"] a').click()
    yaml = tab.by("config-yaml")
    sync_api.expect(yaml).to_contain_text("queues:\n  inference:\n    priority: 5")
    assert "- name: high\n        priority: 10" in yaml.inner_text()
    tab.shoot("config")

    tab.by("nav-vaults").click()
    tab.page.locator('[data-testid="vault-row"][data-vault="ml-keys"] a').click()
    tab.by("entry-key").fill("OPENAI_API_KEY")
    tab.by("entry-value").fill("sk-live-0123456789yz")
    assert tab.by("entry-value").get_attribute("type") == "password"
    tab.by("entry-submit").click()
    entry = tab.page.locator('[data-testid="entry-row"][data-entry="OPENAI_API_KEY"]')
    sync_api.expect(entry.get_by_test_id("entry-value-shown")).to_have_text("sk****yz")
    assert tab.by("entry-value").input_value() == ""
    assert "sk-live-0123456789yz" not in tab.page.content()
    tab.shoot("vault")
    entry.get_by_test_id("entry-remove").click()
    assert "Remove OPENAI_API_KEY from vault ml-keys?" in tab.by("confirm-dialog").inner_text()
    tab.confirm()
    sync_api.expect(tab.by("entry-row")).to_have_count(0)
    tab.page.go_back()
    sync_api.expect(tab.page.locator('[data-testid="vault-row"][data-vault="ml-keys"]')).to_contain_text("model keys")
    tab.shoot("vaults")

    tab.open("/monitoring/queues/inference.high/tasks/" + task_id)  # a shared link, opened afresh
    sync_api.expect(tab.by("task-state")).to_have_attribute("data-state", "pending")

    assert tab.origin + "/monitoring/assets/dashboard.js" in tab.requested
    elsewhere = [url for url in tab.requested if not url.startswith(tab.origin + "/") and not url.startswith("data:")]
    assert elsewhere == []


@pytest.mark.e2e
def test_a_banner_tells_when_redis_is_down_or_the_server_unreachable_and_goes_when_it_recovers(tab):
    tab.sign_in()
    tab.by("queue-row").first.wait_for()
    banner = tab.by("banner")
    assert not banner.is_visible()

    tab.page.route("**/api/cli/**", lambda route: route.fulfill(
        status=503, json={"errors": ["redis unavailable: Error 111 connecting. Connection refused."]}))
    sync_api.expect(banner).to_contain_text("Redis is down")
    sync_api.expect(tab.by("health")).to_have_attribute("data-health", "redis")
    tab.page.unroute("**/api/cli/**")
    sync_api.expect(banner).to_be_hidden()

    tab.page.route("**/api/cli/**", lambda route: route.abort())
    sync_api.expect(banner).to_contain_text("cannot be reached")
    tab.page.unroute("**/api/cli/**")
    sync_api.expect(banner).to_be_hidden()
    sync_api.expect(tab.by("health")).to_have_attribute("data-health", "ok")


# --- read-only ---------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_read_only_dashboard_shows_no_action_and_the_server_refuses_them(browser, served, read_only_server):
    task_id = enqueue(served, "inference.high", {"n": 1})
    viewer = Tab(browser, read_only_server)
    try:
        viewer.sign_in(path="/monitoring/queues/inference.high?state=pending&page=1")
        viewer.by("task-row").first.wait_for()

        assert viewer.by("read-only-badge").is_visible()
        for hidden in ("queue-pause", "bulk-bar", "task-cancel", "task-delete"):
            assert viewer.by(hidden).count() == 0, hidden
        assert viewer.page.locator("main input[type=checkbox], main form").count() == 0
        viewer.open("/monitoring/queues/inference.high/tasks/" + task_id)
        viewer.by("task-payload").wait_for()
        assert viewer.page.locator("main button").count() == 0
        viewer.open("/monitoring/configs")
        viewer.by("config-table").wait_for()
        assert viewer.by("configs-reload").count() == 0
        viewer.open("/monitoring/vaults")  # this server has no vault master key
        sync_api.expect(viewer.by("page-error")).to_contain_text("vaults are disabled")

        cookie = {COOKIE: viewer.cookie()}
        token = requests.get(read_only_server.url + "/monitoring/session", cookies=cookie, timeout=5).json()
        assert token["read_only"] is True
        refused = requests.post(read_only_server.url + "/api/cli/queues/inference.high/pause", cookies=cookie,
                                timeout=5, headers={"X-CSRF-Token": token["csrf_token"]})
        assert refused.status_code == 403
    finally:
        viewer.close()


@pytest.mark.e2e
def test_behind_a_proxy_under_a_path_prefix_every_request_keeps_the_prefix(browser, served):
    """A proxy that serves runqy under /ops, stripping the prefix and saying so in X-Forwarded-Prefix,
    played by the browser context itself: a request without the prefix would not reach runqy."""
    enqueue(served, "inference.high", {"n": 1})
    tab = Tab(browser, served)
    prefix = "/ops"
    strayed = []

    def proxy(route):
        path = route.request.url[len(tab.origin):]
        if not path.startswith(prefix + "/"):
            strayed.append(path)
            route.fulfill(status=404, body="not behind the proxy's prefix")
            return
        headers = {**route.request.all_headers(), "x-forwarded-prefix": prefix,
                   "x-forwarded-host": tab.origin.removeprefix("http://")}
        answer = route.fetch(url=tab.api + path[len(prefix):], headers=headers)
        route.fulfill(response=answer)

    tab.context.route(tab.origin + "/**", proxy)
    try:
        tab.sign_in(path=prefix + "/monitoring")
        tab.by("queue-table").locator('[data-testid="queue-row"][data-queue="inference.high"] a').first.click()
        tab.page.wait_for_url(tab.origin + prefix + "/monitoring/queues/inference.high**")
        sync_api.expect(tab.by("task-row")).to_have_count(1)
        tab.by("nav-workers").click()
        tab.page.wait_for_url(tab.origin + prefix + "/monitoring/workers")
    finally:
        tab.context.unroute_all(behavior="ignoreErrors")  # a refresh may be in flight
        tab.close()

    assert strayed == []
    assert tab.errors == []
    assert any(url.startswith(tab.origin + prefix + "/api/cli/queues") for url in tab.requested)
