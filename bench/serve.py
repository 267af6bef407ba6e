"""Serve a fake vendor API from its own process, for the benchmark.

`python -m bench.serve <connector> --rows N [--keep]` serves a bench server
(`bench.servers`); `python -m bench.serve fanout --epics N --latency 0.02 --limit 300
--per-seconds 1` serves the project-tracker fake for the fan-out; `python -m bench.serve
crm_full --budget 4000 --budget-seconds 3600` serves the crm test fake (every resource)
enforcing and reporting the real API's hourly budget. `crm --budget ...` does the same
for the crm bench server.

It prints the base URL on one line, serves until its standard input closes, then prints
one JSON line: the requests it answered and how many of them were `429`s. Serving from a
separate process keeps the fake's memory and CPU out of the client's measurements.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.servers import SERVERS


def fanout(args: argparse.Namespace) -> Any:
    from connectors.sandbox.project_tracker import ProjectTrackerFake

    fake = ProjectTrackerFake(epics=args.epics, stories_per_epic=0, latency=args.latency)
    if args.limit:
        fake.enforce_window(args.limit, args.per_seconds)
    return fake


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budget", type=int, default=0, help="requests per fixed window, enforced and reported"
    )
    parser.add_argument("--budget-seconds", type=float, default=3600.0, help="the window")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    fakes = parser.add_subparsers(dest="fake", required=True)
    for connector in SERVERS:
        sub = fakes.add_parser(connector)
        sub.add_argument("--rows", type=int, required=True)
        sub.add_argument(
            "--keep", action="store_true", help="make and serialise every record up front"
        )
        sub.add_argument("--latency", type=float, default=0.0)
        if connector == "crm":
            add_budget_arguments(sub)
    fan = fakes.add_parser("fanout")
    fan.add_argument("--epics", type=int, required=True)
    fan.add_argument("--limit", type=int, default=0, help="requests per window")
    fan.add_argument("--per-seconds", type=float, default=1.0, help="the window")
    fan.add_argument("--latency", type=float, default=0.0)
    add_budget_arguments(fakes.add_parser("crm_full"))
    args = parser.parse_args()

    if args.fake == "fanout":
        fake = fanout(args)
    elif args.fake == "crm_full":
        from connectors.sandbox.crm import CrmFake

        fake = CrmFake()
    else:
        fake = SERVERS[args.fake](args.rows, keep=args.keep, latency=args.latency)
    if getattr(args, "budget", 0):
        fake.enforce_budget(args.budget, args.budget_seconds)
    fake.start()
    print(fake.base_url, flush=True)
    sys.stdin.read()  # serve until the benchmark closes our standard input
    fake.stop()
    statuses = [request.status for request in fake.requests]
    print(json.dumps({"requests": len(statuses), "rate_limited": statuses.count(429)}), flush=True)


if __name__ == "__main__":
    main()
