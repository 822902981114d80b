"""The WSGI target (``runqy.wsgi:app``): the only module that builds an app when imported.

Any WSGI server can serve it: importing it reads the settings, loads the queue
configs of ``RUNQY_CONFIG_DIR`` and starts the keeper that holds them in Redis
(runqy.server) and the housekeeper (runqy.housekeeper). Bad settings or a bad YAML file stop the process with every
problem named; the exit status is the one that makes gunicorn stop instead of
booting the worker again.
"""

import gc
import logging
import sys

from runqy import config, defaults, server
from runqy.app import create_app
from runqy.config import Settings
from runqy.errors import ConfigError
from runqy.housekeeper import Housekeeper
from runqy.store import Store, connect

#: gunicorn's "App failed to load" status: the arbiter halts rather than retry forever.
CANNOT_START = 4

if not logging.getLogger().handlers:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")

try:
    settings = Settings.from_env()
    queues = config.load_configs(settings.config_dir)
except ConfigError as exc:
    print("runqy: cannot start:\n  " + "\n  ".join(exc.messages), file=sys.stderr, flush=True)
    sys.exit(CANNOT_START)

store = Store(connect(settings))
housekeeper = Housekeeper(store, settings.housekeeping_every, defaults.HOUSEKEEPER_LEASE)
app = create_app(settings, store=store, housekeeper=housekeeper)
server.ConfigKeeper(store, settings.config_dir, queues).start()
housekeeper.loop.start()
# Everything built so far lives as long as the process: the cyclic garbage collector need not
# walk it again on every full collection, which shortens the pauses requests see.
gc.freeze()
