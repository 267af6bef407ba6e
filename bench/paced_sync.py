"""A `crm` sync paced by the budget the server reports, against the bound that budget sets.

The crm fake runs on loopback (in a thread of this process) enforcing and reporting a
fixed-window budget, 200 requests per 10 s window (`X-RateLimit-Limit`/`-Remaining`/
`-Reset`, a `429` beyond it). A full `crm` sync at the connector's default pacing (no
`requests_per_minute`: it reads the headers) sends more than 1,000 requests: the fake
holds 1,000 organisations, and `employees` asks for each one's people: five windows'
budgets, each spent at full speed down to its reserve (20%), the rest spread to its reset.
Its wall time (extract, normalize and load) is compared with the earliest finish the
budget allows for that many requests. The data is kept small (one employee per
organisation) so the time is the pacing's, not dlt's normalizing.

`measure(workdir)` returns the numbers; `python -m bench.paced_sync` prints them as JSON.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from connectors.crm import crm_source  # noqa: E402
from connectors.sandbox.crm import TOKEN, CrmFake, make_party  # noqa: E402
from shared.loading import duckdb_pipeline, run_source  # noqa: E402

#: the budget the fake enforces and reports
BUDGET_REQUESTS = 200
BUDGET_SECONDS = 10.0
#: organisations in the fake: one `employees` request each, besides about 30 others
ORGANISATIONS = 1_000


def paced_fake() -> CrmFake:
    """The crm fake with `ORGANISATIONS` organisations of one employee each."""
    fake = CrmFake()
    people = [party for party in fake.data["parties"] if party["type"] == "person"]
    # make_party(i) is an organisation when i is a multiple of 4
    fake.data["parties"] = [make_party(4 * i) for i in range(ORGANISATIONS)]
    fake.employees = {
        organisation["id"]: [people[n % len(people)]]
        for n, organisation in enumerate(fake.data["parties"])
    }
    return fake


def measure(workdir: pathlib.Path) -> dict[str, Any]:
    """Run the paced sync in `workdir` (its pipeline and DuckDB file) and return
    `requests`, `429s`, `seconds`, `bound_seconds`, `ratio`, `budget`, `description`."""
    with paced_fake() as fake:
        fake.enforce_budget(BUDGET_REQUESTS, BUDGET_SECONDS)
        pipeline = duckdb_pipeline(
            "crm_paced", str(workdir / "crm_paced.duckdb"), pipelines_dir=str(workdir)
        )
        source = crm_source(bearer_token=TOKEN, base_url=fake.base_url)
        started = time.perf_counter()
        run_source(pipeline, source)
        seconds = time.perf_counter() - started
        times = sorted(request.at for request in fake.requests)
        refused = fake.limited_responses
    requests = len(times)
    # every request the server counted needs its share of a window: n requests at 200 per
    # 10 s take n / 200 windows, the pace of a client that spends every window in full
    bound = requests * BUDGET_SECONDS / BUDGET_REQUESTS
    # a client bursting each window's 200 the moment it opens (which even pacing forgoes:
    # bursts are what shorter server-side windows refuse) could send its last request here
    burst_bound = (requests - 1) // BUDGET_REQUESTS * BUDGET_SECONDS
    span = times[-1] - times[0]
    description = (
        f"full crm sync ({ORGANISATIONS:,} organisations, one employees request each) at the "
        f"default pacing, which reads X-RateLimit-*, goes at full speed while more than the "
        f"reserve (20% of the limit) remains and spreads the rest evenly until the reset, "
        f"against the fake enforcing {BUDGET_REQUESTS} requests per "
        f"{BUDGET_SECONDS:g} s fixed window (reset reported in whole seconds, rounded "
        f"down); seconds: the whole pipeline.run (extract, normalize, "
        f"load); bound: requests x {BUDGET_SECONDS:g} s / {BUDGET_REQUESTS}, the time the "
        f"budget's windows take to admit them all when each is spent in full; the requests "
        f"themselves spanned {span:.1f} s ({span / bound:.3f}x the bound); a client bursting "
        f"each window at its start could send its last request at {burst_bound:.0f} s"
    )
    return {
        "requests": requests,
        "429s": refused,
        "seconds": round(seconds, 2),
        "bound_seconds": round(bound, 2),
        "ratio": round(seconds / bound, 3),
        "budget": f"{BUDGET_REQUESTS} per {BUDGET_SECONDS:g} s",
        "description": description,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_paced_") as workdir:
        print(json.dumps(measure(pathlib.Path(workdir)), indent=2))


if __name__ == "__main__":
    main()
