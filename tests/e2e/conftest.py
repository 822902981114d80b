"""A gunicorn shared by the tests of one module, for modules whose tests only need a served runqy
over a fresh Redis: starting one costs about two seconds.

It serves the test configs (tests/config); a module that sets ``SERVED_CONFIG_DIR`` gets those
instead, in the server and in the ``queues`` the ``store`` fixture puts back before each test,
and one that sets ``SERVED_ENV`` (a dict) starts its server with those variables too."""

import pytest

from runqy.config import load_dir
from tests.conftest import CONFIG_DIR, Gunicorn, served_env


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
