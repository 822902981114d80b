"""The API tests' own fixtures: clients beside conftest's ``client``."""

import dataclasses

import falcon.testing
import pytest

from runqy.app import create_app
from tests.helpers import pinned_client


@pytest.fixture
def admin(settings, store) -> falcon.testing.TestClient:
    """A TestClient on the example configs whose clock is pinned to NOW."""
    return pinned_client(settings)


@pytest.fixture
def roomy_client(settings, store) -> falcon.testing.TestClient:
    """A client whose body limit (1 MiB) lets very large or deep bodies reach the parser."""
    return falcon.testing.TestClient(create_app(dataclasses.replace(settings, max_body_size=1 << 20), store=store))
