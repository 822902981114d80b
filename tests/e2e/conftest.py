"""A gunicorn shared by the tests of one module, for modules whose tests only need a served runqy
over a fresh Redis: starting one costs about two seconds."""

import pytest

from tests.conftest import Gunicorn, served_env


@pytest.fixture(scope="module")
def module_server(redis_server):
    """One gunicorn for the whole module, on an emptied Redis with the example configs."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushdb()
    process = Gunicorn(served_env(redis_server))
    yield process
    process.stop()


@pytest.fixture
def served(module_server, store):
    """The module's gunicorn over an emptied Redis with the example configs loaded again.

    The server keeps no state of its own besides Redis, so this is the state a fresh
    start leaves (``store`` flushes the database and puts the configs back).
    """
    return module_server
