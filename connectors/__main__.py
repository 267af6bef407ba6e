"""`python -m connectors` (the `connectors` command): see connectors/cli/."""

import sys

try:
    from connectors.cli import main
except KeyboardInterrupt:  # Ctrl-C while dlt and the connectors import: no traceback
    print("interrupted", file=sys.stderr)
    sys.exit(130)

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
