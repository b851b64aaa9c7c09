"""``python -m sweep.serve``: the command line of ``sweep.serve.app``."""

import sys

from sweep.serve.app import main

if __name__ == "__main__":
    sys.exit(main())
