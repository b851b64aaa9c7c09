"""``python -m sweep.serve``: the command line of the Serve app (``sweep.serve.cli``)."""

import sys

from sweep.serve.cli import main

if __name__ == "__main__":
    sys.exit(main())
