"""``python -m promptline``: the same as the ``promptline`` command."""

import sys

from promptline.cli import main

sys.exit(main())
