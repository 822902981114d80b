"""A gunicorn shared by the tests of one module, for modules whose tests only need a served runqy
over a fresh Redis: starting one costs about two seconds.

It serves the test configs (tests/config); a module that sets ``SERVED_CONFIG_DIR`` gets those
instead, in the server and in the ``queues`` the ``store`` fixture puts back before each test,
and one that sets ``SERVED_ENV`` (a dict) starts its server with those variables too.

The browser tests share one headless Chromium per module, driven with Playwright: the system's
Chromium, found by ``find_chromium``; they are skipped only when there is none (set CHROME_BIN
to point at one) or Playwright is not installed."""

import os
import shutil

import pytest

from runqy.config import load_dir
from tests.conftest import CONFIG_DIR, Gunicorn, served_env

#: Flags of the browser the tests launch; runqy.test resolves to the loopback address, for a
#: page that is not on "localhost" (a request to localhost would then leave its origin).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage", "--host-resolver-rules=MAP runqy.test 127.0.0.1"]


def find_chromium() -> str | None:
    """The Chromium to test with: CHROME_BIN, else the first of the usual names on PATH."""
    candidates = [os.environ.get("CHROME_BIN"), "chromium", "chromium-browser", "google-chrome",
                  "google-chrome-stable"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _config_dir(request) -> str:
    return str(getattr(request.module, "SERVED_CONFIG_DIR", CONFIG_DIR))


@pytest.fixture
def queues(request) -> dict:
    loaded, failures = load_dir(_config_dir(request))
    assert not failures
    return loaded


@pytest.fixture(scope="module")
def module_server(request, redis_server):
    """One gunicorn for the whole module, on an emptied Redis."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushdb()
    process = Gunicorn(served_env(redis_server, RUNQY_CONFIG_DIR=_config_dir(request),
                                  **getattr(request.module, "SERVED_ENV", {})))
    yield process
    process.stop()


@pytest.fixture
def served(module_server, store):
    """The module's gunicorn over an emptied Redis with its configs loaded again.

    The server keeps no state of its own besides Redis, so this is the state a fresh
    start leaves (``store`` flushes the database and puts the configs back).
    """
    return module_server


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the whole module; each test opens its own context in it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium not found: install Debian's 'chromium' package or set CHROME_BIN")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
