"""``python -m roundtrip``: the ``roundtrip`` command (SPEC §7)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
