"""`python -m tests.dango.serve NAME`: serve a connector's fake vendor server from its own
process (as a real API would be, apart from Dango's), print its base URL on one line,
and serve until stdin closes or the process is terminated."""

from __future__ import annotations

import sys

from tests.recording import load_recording


def main(argv: list[str]) -> int:
    (name,) = argv
    fake = load_recording(name).fake().start()
    print(fake.base_url, flush=True)
    try:
        sys.stdin.read()  # the test keeps stdin open while it needs the server
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
