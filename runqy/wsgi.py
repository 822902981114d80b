"""The gunicorn target: the only module that builds an app when imported."""

import sys

from runqy.app import create_app
from runqy.config import Settings
from runqy.errors import ConfigError

try:
    settings = Settings.from_env()
except ConfigError as exc:
    sys.exit("runqy: %s" % "; ".join(exc.messages))

app = create_app(settings)
