"""`python -m bench` from a clone: the command line of `aebench.bench.cli`."""

import sys

from aebench.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
