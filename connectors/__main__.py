"""`python -m connectors` (the `connectors` command): see connectors/cli/."""

import sys

from connectors.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
