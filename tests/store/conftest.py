"""The store tests' own fixture: a store whose clock and ids are pinned."""

import itertools

import pytest

from runqy.store import Store, connect
from tests.helpers import NOW


@pytest.fixture
def pinned(store, settings) -> Store:
    """A store (example configs loaded) whose clock reads NOW, mid-second, and whose ids are id-1, id-2, ..."""
    counter = itertools.count(1)
    return Store(connect(settings), clock=lambda: NOW + 0.75, new_id=lambda: "id-%d" % next(counter))
