#!/usr/bin/env python3
"""Download the pinned Java artifacts of the ImageJ bridge from Maven Central (for CI).

Same as ``python -m fijidecon.fiji.runtime --fetch``: ImageJ 1.54p, scijava-common,
parsington and ImgLib2 go into the local Maven repository (``$FIJIDECON_M2``, ``$M2_REPO``
or ``~/.m2/repository``); afterwards the bridge starts offline.  Prints the time taken and
the jars' total size; exits 1 with a clear message when Maven Central cannot be reached
and the cache is empty.

Usage::

    python scripts/fetch_java_artifacts.py [--update]
"""

import sys

from fijidecon.fiji.runtime import main

if __name__ == "__main__":
    args = ["--fetch"] + [a for a in sys.argv[1:] if a == "--update"]
    try:
        sys.exit(main(args))
    except RuntimeError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
