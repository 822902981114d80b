"""The housekeeper: what runqy-worker does not do, done by one server process of a deployment.

The worker never moves scheduled tasks to pending (it forwards only its own retries) and
never reads asynq's paused flag. So every server process runs a housekeeper loop
(runqy.background) that, every ``RUNQY_HOUSEKEEPING_INTERVAL`` seconds, takes or renews a
lease in Redis (``runqy:housekeeper``, ``SET NX PX``); the one process that holds it moves
the due scheduled and retry tasks of every queue to pending (to held for a paused queue)
and sweeps ids that reached a paused queue's pending list back to held. A holder that
stops gives the lease up; one that dies loses it when it expires
(``defaults.HOUSEKEEPER_LEASE``), and the next process to try takes it over.
"""

import logging
import os
import socket
from typing import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from runqy import background
from runqy.store import Store, uuid4

logger = logging.getLogger(__name__)


class Housekeeper:
    """One process's candidacy for the housekeeper's lease, and the work while it holds it."""

    def __init__(self, store: Store, every: float, lease: float):
        self._store = store
        self.every = every
        self._lease = lease
        self.holds = False
        self._holder = ""
        self.loop = background.Loop("housekeeper", every, self.step, on_stop=self.resign)

    @property
    def holder(self) -> str:
        """This process's holder id; a forked process makes its own."""
        if not self._holder.startswith("%s:%d:" % (socket.gethostname(), os.getpid())):
            self._holder = "%s:%d:%s" % (socket.gethostname(), os.getpid(), uuid4()[:8])
        return self._holder

    def step(self) -> None:
        """Hold the lease (or try to), and while holding it move what is due."""
        was, self.holds = self.holds, False  # until Redis says otherwise
        self.holds = self._store.housekeeping.hold(self.holder, self._lease)
        if self.holds != was:
            logger.info("housekeeper: %s the lease as %s", "took" if self.holds else "lost", self.holder)
        if self.holds:
            moved = self._store.housekeeping.forward()
            if any(moved.values()):
                logger.debug("housekeeper moved %s", moved)

    def resign(self) -> None:
        """Give the lease up (at shutdown), so that another process takes it at once."""
        if self.holds:
            self.holds = False
            try:
                self._store.housekeeping.release(self.holder)
            except Exception as exc:  # noqa: BLE001 - shutting down: the lease expires by itself
                logger.warning("housekeeper: lease not given up (%s); it expires by itself", exc)

    def collect(self) -> Iterator[Metric]:
        """``/metrics``: whether this process holds the lease."""
        held = GaugeMetricFamily("runqy_housekeeper_lease_held", "1 when this process is the housekeeper")
        held.add_metric([], int(self.holds))
        yield held
