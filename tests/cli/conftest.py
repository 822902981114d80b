"""The CLI tests' server and environment.

One gunicorn serves every CLI test that needs a server (with vaults enabled and an
access log, so that retries can be counted); the ``store`` fixture empties Redis and
puts the example configs back before each test. No test sees the server, key or saved
profiles of the environment it runs in.
"""

import pytest

from tests.cli.helpers import VAULT_KEY
from tests.conftest import ADMIN_KEY, CLIENT_KEY, CONFIG_DIR, WORKER_KEY, Gunicorn


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that talks to the CLI tests' gunicorn is end-to-end."""
    for item in items:
        if "cli_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="package")
def cli_server(redis_server):
    env = {"RUNQY_API_KEY": ADMIN_KEY, "RUNQY_WORKER_API_KEY": WORKER_KEY, "RUNQY_CLIENT_API_KEY": CLIENT_KEY,
           "REDIS_URL": "redis://127.0.0.1:%d/0" % redis_server.port, "RUNQY_CONFIG_DIR": str(CONFIG_DIR),
           "RUNQY_VAULT_MASTER_KEY": VAULT_KEY, "RUNQY_ACCESS_LOG": "-"}
    server = Gunicorn(env, workers=1)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No server or key from the environment; profiles are saved under tmp_path."""
    monkeypatch.delenv("RUNQY_SERVER", raising=False)
    monkeypatch.delenv("RUNQY_API_KEY", raising=False)
    monkeypatch.setenv("RUNQY_CONFIG_HOME", str(tmp_path / "runqy-home"))


@pytest.fixture
def url(isolated, cli_server, store, monkeypatch) -> str:
    """The server, named by RUNQY_SERVER/RUNQY_API_KEY."""
    monkeypatch.setenv("RUNQY_SERVER", cli_server.url)
    monkeypatch.setenv("RUNQY_API_KEY", ADMIN_KEY)
    return cli_server.url
