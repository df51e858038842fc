"""`python -m weir PATH describe|run FLOW ...` — see `weir._cli`."""

import sys

from ._cli import main

sys.exit(main())
