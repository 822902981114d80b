"""Start-up: check the settings and queue configs, then put the configs into Redis.

Runs once in the gunicorn master (``runqy/gunicorn_conf.py``) before any
worker process starts. A bad YAML file stops the start with a message naming
the file, the queue and the field. When Redis is not up yet the server starts
anyway (answering 503) and loads the configs as soon as Redis answers.
"""

import logging
import sys
import threading
import time

import redis

from runqy import config
from runqy.errors import ConfigError
from runqy.store import Store, connect

logger = logging.getLogger(__name__)

RETRY_EVERY = 2.0


def load_configs(settings: config.Settings, store: Store) -> list[str]:
    """Validate the YAML directory and upsert its queues into Redis; the loaded names."""
    queues, failures = config.load_dir(settings.config_dir)
    if failures:
        raise ConfigError(*(m for messages in failures.values() for m in messages))
    store.put_configs(queues)
    return sorted(queues)


def _load_when_redis_answers(settings: config.Settings, store: Store) -> None:
    while True:
        time.sleep(RETRY_EVERY)
        try:
            names = load_configs(settings, store)
        except redis.exceptions.RedisError:
            continue
        logger.info("redis is up: loaded queue configs %s", ", ".join(names))
        return


def start(settings: config.Settings | None = None) -> None:
    """Fail fast on bad settings or configs; otherwise load the configs (now or later)."""
    try:
        settings = settings or config.Settings.from_env()
        store = Store(connect(settings))
        names = load_configs(settings, store)
    except ConfigError as exc:
        sys.exit("runqy: cannot start:\n  " + "\n  ".join(exc.messages))
    except redis.exceptions.RedisError as exc:
        logger.warning("redis is not reachable (%s); answering 503 until it is", exc)
        threading.Thread(target=_load_when_redis_answers, args=(settings, store), daemon=True).start()
        return
    logger.info("loaded queue configs from %s: %s", settings.config_dir, ", ".join(names) or "(none)")
