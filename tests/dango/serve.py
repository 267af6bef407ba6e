"""`python -m tests.dango.serve NAME`: serve a connector's fake vendor server from its own
process (as a real API would be, apart from Dango's), print its base URL on one line,
and serve until stdin closes or the process is terminated.

While it serves, a line `delete KEY ID` on stdin deletes record ID of list KEY at the fake
(its `delete`: gone from the list, and listed in a deletion feed where the API has one),
and the server answers `deleted KEY ID` on stdout: a test deletes between two syncs.
"""

from __future__ import annotations

import sys

from connectors.sandbox import load_recording


def main(argv: list[str]) -> int:
    (name,) = argv
    fake = load_recording(name).fake().start()
    print(fake.base_url, flush=True)
    try:
        for line in sys.stdin:  # the test keeps stdin open while it needs the server
            command, key, record_id = line.split()
            assert command == "delete", line
            ids = {str(row["id"]): row["id"] for row in fake.data[key]}
            fake.delete(key, ids[record_id])
            print(f"deleted {key} {record_id}", flush=True)
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
