"""Serve a fake vendor API from its own process, for the benchmark.

`python -m bench.serve crm --parties N [--pregenerate-per-page 100]` or
`python -m bench.serve project_tracker --epics N --latency 0.02 --limit 300 --per-seconds 1`.

It prints the base URL on one line, serves until its standard input closes, then prints
one JSON line: the requests it answered and how many of them were `429`s. Serving from a
separate process keeps the fake's memory and CPU out of the client's measurements.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def crm(args: argparse.Namespace) -> Any:
    from bench.crm_server import LazyCrmFake

    return LazyCrmFake(args.parties, args.latency, args.pregenerate_per_page)


def project_tracker(args: argparse.Namespace) -> Any:
    from tests.fakes.project_tracker import ProjectTrackerFake

    fake = ProjectTrackerFake(epics=args.epics, stories_per_epic=0, latency=args.latency)
    if args.limit:
        fake.enforce_window(args.limit, args.per_seconds)
    return fake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    fakes = parser.add_subparsers(dest="fake", required=True)
    crm_args = fakes.add_parser("crm")
    crm_args.add_argument("--parties", type=int, required=True)
    crm_args.add_argument("--pregenerate-per-page", type=int, default=None)
    tracker_args = fakes.add_parser("project_tracker")
    tracker_args.add_argument("--epics", type=int, required=True)
    tracker_args.add_argument("--limit", type=int, default=0, help="requests per window")
    tracker_args.add_argument("--per-seconds", type=float, default=1.0, help="the window")
    for sub in (crm_args, tracker_args):
        sub.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()

    fake = {"crm": crm, "project_tracker": project_tracker}[args.fake](args).start()
    print(fake.base_url, flush=True)
    sys.stdin.read()  # serve until the benchmark closes our standard input
    fake.stop()
    statuses = [request.status for request in fake.requests]
    print(json.dumps({"requests": len(statuses), "rate_limited": statuses.count(429)}), flush=True)


if __name__ == "__main__":
    main()
