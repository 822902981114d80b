"""The Swagger UI page in a real headless Chromium against a real gunicorn.

The page is driven with Playwright (the ``browser`` fixture of this package's conftest): its
buttons are clicked through locators and every wait is bounded by a timeout of a few seconds.
"""

import re

import pytest
import requests

from tests.conftest import ADMIN_KEY

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

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
#: Milliseconds any one wait of a test may take.
WAIT_MS = 8000
#: Milliseconds for resolving every operation of the seed: Swagger UI resolves them one after
#: another, about half a second each on a busy two-core machine.
RESOLVE_MS = 20000

#: The errors Swagger UI collected while loading and resolving the document.
SWAGGER_ERRORS = ("() => window.ui.errSelectors.allErrors().toJS()"
                  ".map(e => (e.path ? [].concat(e.path).join('.') + ': ' : '') + e.message)")

#: "METHOD path" of every operation block.
OPERATIONS = """ops => ops.map(op => [
  op.querySelector('.opblock-summary-method').innerText.trim(),
  op.querySelector('.opblock-summary-path').getAttribute('data-path')])"""


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()


def open_swagger(page, url: str) -> None:
    """Loads the page and waits until Swagger UI has rendered the operations of the document."""
    page.goto(url)
    page.locator(".opblock").first.wait_for()
    page.wait_for_function("() => window.ui !== undefined")


def operation(page, method: str, path: str):
    """The operation block of ``method path``."""
    return page.locator(".opblock-%s" % method.lower()).filter(
        has=page.locator('.opblock-summary-path[data-path="%s"]' % path))


def execute(block) -> dict[str, str]:
    """Expands an operation, presses "Try it out" (once) and "Execute"; the live response shown."""
    if "is-open" not in block.get_attribute("class").split():
        block.locator(".opblock-summary-control").click()
    try_out = block.locator(".try-out__btn")
    if "cancel" not in try_out.get_attribute("class").split():
        try_out.click()
    clear = block.locator(".btn-clear")
    if clear.count():  # the response of an earlier Execute
        clear.click()
    responses = block.locator(".live-responses-table")
    expect(responses).to_have_count(0)
    block.locator("button.execute").click()
    status = responses.locator("tbody .response-col_status")
    expect(status).to_have_text(re.compile(r"\d{3}"))
    return {"status": status.inner_text().strip(),
            "curl": block.locator(".curl-command .curl").inner_text(),
            "body": responses.locator("tbody .response-col_description").inner_text()}


@pytest.mark.e2e
def test_swagger_page_lists_the_operations_of_the_seed_and_resolves_them_without_errors(page, module_server):
    open_swagger(page, module_server.url + "/swagger/index.html")

    listed = {tuple(op) for op in page.locator(".opblock").evaluate_all(OPERATIONS)}
    assert SEED_OPERATIONS <= listed, "missing: %s" % sorted(SEED_OPERATIONS - listed)
    expect(page).to_have_title("runqy API")
    # what expanding each operation does: Swagger UI resolves the $refs of its subtree
    subtrees = [["paths", path, method.lower()] for method, path in sorted(SEED_OPERATIONS)]
    page.evaluate("subtrees => subtrees.forEach(subtree => window.ui.specActions.requestResolvedSubtree(subtree))",
                  subtrees)
    page.wait_for_function("subtrees => window.ui.errSelectors.allErrors().size > 0 || subtrees.every("
                           "subtree => window.ui.specSelectors.specResolvedSubtree(subtree) !== undefined)",
                           arg=subtrees, timeout=RESOLVE_MS)
    assert page.evaluate(SWAGGER_ERRORS) == []
    expect(page.locator(".errors-wrapper")).to_have_count(0)


@pytest.mark.e2e
def test_try_it_out_on_get_health_shows_200_in_the_page(page, module_server):
    open_swagger(page, module_server.url + "/swagger/index.html")

    shown = execute(operation(page, "GET", "/health"))

    assert shown["status"] == "200", shown
    assert '"status": "ok"' in shown["body"], shown
    assert module_server.url + "/health" in shown["curl"], shown


@pytest.mark.e2e
def test_authorize_with_the_bearer_key_lets_try_it_out_call_an_admin_route(page, module_server):
    open_swagger(page, module_server.url + "/swagger/index.html")
    queues = operation(page, "GET", "/api/cli/queues")
    refused = execute(queues)
    assert refused["status"] == "401", refused

    authorize = page.locator(".auth-wrapper .btn.authorize")
    authorize.click()
    bearer = page.locator(".dialog-ux .auth-container").filter(has_text="(http, Bearer)")
    bearer.locator("input").fill(ADMIN_KEY)
    bearer.locator("button[type=submit].authorize").click()
    expect(bearer.locator("h6")).to_have_text("Authorized")
    page.locator(".dialog-ux .close-modal").click()
    expect(page.locator(".dialog-ux")).to_have_count(0)
    shown = execute(queues)

    expect(authorize).to_have_class(re.compile(r"\blocked\b"))
    assert shown["status"] == "200", shown
    assert "Authorization: Bearer %s" % ADMIN_KEY in shown["curl"], shown
    assert "inference.high" in shown["body"] and "simple.default" in shown["body"], shown


@pytest.mark.e2e
def test_swagger_page_loads_nothing_from_other_origins(page, module_server):
    origin = "http://runqy.test:%d" % module_server.port
    assert requests.get(module_server.url + "/swagger/index.html", timeout=5).status_code == 200
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))

    open_swagger(page, origin + "/swagger/index.html")
    page.locator(".info .title").wait_for()

    # what the rendered page refers to (an <img> outside the origin would be fetched from the internet)
    referenced = page.locator("img[src], script[src], link[href], iframe[src]").evaluate_all(
        "elements => elements.map(e => e.src || e.href)")
    assert origin + "/openapi.yaml" in sent
    assert origin + "/swagger/swagger-ui-bundle.js" in sent
    assert [url for url in referenced + sent if not url.startswith((origin + "/", "data:"))] == []
