"""Keeping the YAML queue configs in Redis, whatever happens to Redis.

Every server process loads the config directory when it starts (a bad file
stops the start with the file, queue and field named) and then runs a
:class:`ConfigKeeper`. Redis holds the configs and, beside them, the digest of
the YAML set last written (``runqy:configs:yaml``):

- at start-up the YAML configs are written when Redis holds another digest or
  none, so a new deployment's files win, while a process that merely restarts
  does not undo changes made since through the API;
- afterwards the keeper checks every second that the digest is still there. A
  Redis that restarted without persistence, was flushed or failed over to an
  empty replica has lost it, and the keeper reads the directory again and puts
  it back, as ``POST /api/cli/configs/reload`` would. Configs created through
  the API cannot be restored: only Redis had them.

Until then, a request for a queue that Redis no longer knows gets a retryable
503 rather than a 404 (``store.configs.unknown_queue``).
"""

import logging
from typing import Any

import redis

from runqy import background, config, defaults
from runqy.store import Store

logger = logging.getLogger(__name__)


class ConfigKeeper:
    """Writes the YAML queue configs into Redis at start-up and whenever Redis has lost them."""

    def __init__(self, store: Store, config_dir: str, queues: dict[str, dict[str, Any]]):
        self._store = store
        self._dir = config_dir
        self._queues = queues
        self._started = False  # the start-up write is done

    def check(self) -> None:
        """One check; raises RedisError when Redis does not answer."""
        recorded = self._store.configs.yaml_digest()
        if recorded is None and self._started:
            queues, failures = config.load_dir(self._dir)
            for messages in failures.values():
                logger.error("queue configs: %s", "; ".join(messages))
            self._store.configs.put_yaml(queues)
            logger.warning("redis had lost the queue configs; restored %s from %s",
                           ", ".join(sorted(queues)) or "(none)", self._dir)
        elif not self._started and recorded != config.digest(self._queues):
            self._store.configs.put_yaml(self._queues)
            logger.info("loaded queue configs from %s: %s", self._dir, ", ".join(sorted(self._queues)) or "(none)")
        self._started = True

    def start(self) -> None:
        """Check now, then every second in a background loop (runqy.background)."""
        try:
            self.check()
        except redis.exceptions.RedisError as exc:
            logger.warning("redis is not reachable (%s); answering 503 until it is", exc)
        background.Loop("config-keeper", defaults.CONFIG_CHECK_EVERY, self.check).start()
