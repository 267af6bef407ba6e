"""`python -m tests.record NAME`: record a connector's cassettes (see tests/recording.py)."""

import os
import sys

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from tests.recording import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
