"""``python -m earmark``."""

import sys

from .cli import main

sys.exit(main())
