"""``python -m runqy.cli``, as bin/runqy runs it."""

import sys

from runqy.cli import main

sys.exit(main())
