"""``python -m pyra_dist``: the ``pyra`` command line (see ``pyra_dist.cli``).

Owns: nothing but the entry point. Must not: do anything else at import.
"""

from __future__ import annotations

import sys

from pyra_dist.cli import main

if __name__ == "__main__":
    sys.exit(main())
