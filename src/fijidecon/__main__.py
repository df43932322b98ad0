"""``python -m fijidecon``: the same command as the ``fijidecon`` console script."""

import sys

from ._entry import main

if __name__ == "__main__":
    sys.exit(main())
