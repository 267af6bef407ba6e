"""One rate limit across worker processes: four CRM syncs (parties and the employees of
each organisation, 68 requests each) against one fake that answers 429 past 20 requests
in any rolling second, paced through a shared backend (Redis, SQLite).

The time is the fake's, from the first request to the last: the processes' start-up is
not paced."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from connectors.sandbox.crm import TOKEN, CrmFake
from tests.orchestration import pacing_worker

pytestmark = pytest.mark.orchestrators

WORKERS = 4
LIMIT = 20  # requests per second, enforced by the fake
BOUND_FACTOR = 1.25


def run_workers(fake: CrmFake, backend: str | None, workdir: Path) -> dict[int, object]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(
            target=pacing_worker.sync,
            args=(n, fake.base_url, TOKEN, LIMIT * 60, backend, str(workdir), barrier, results),
        )
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    outcome = dict(results.get(timeout=180) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    return outcome


def paced_run(fake: CrmFake, backend: str, workdir: Path, label: str) -> None:
    fake.enforce_window(LIMIT, 1.0)
    outcome = run_workers(fake, backend, workdir)

    moments = [request.at for request in fake.requests]
    seconds = max(moments) - min(moments)
    requests = len(moments)
    bound = BOUND_FACTOR * requests / LIMIT
    print(
        f"\n{label}: {requests} requests, {WORKERS} workers, {seconds:.2f} s "
        f"(bound {bound:.2f} s = {BOUND_FACTOR} x {requests} / {LIMIT}/s), "
        f"{fake.limited_responses} 429s"
    )
    failed = {n: result for n, result in outcome.items() if not isinstance(result, dict)}
    assert not failed
    assert fake.limited_responses == 0
    # every worker loaded every table in full: the fake's rows, once per worker
    for rows in outcome.values():
        assert isinstance(rows, dict)
        assert rows["parties"] == len(fake.data["parties"])
        assert rows["employees"] == sum(len(people) for people in fake.employees.values())
    # per worker: three pages of parties, one employees page per organisation, and one page
    # of the parties' deletion feed
    assert requests == WORKERS * (3 + len(fake.employees) + 1)
    assert seconds <= bound


def test_workers_sharing_a_redis_backend_stay_under_one_limit(
    redis_url: str, tmp_path: Path
) -> None:
    with CrmFake() as fake:
        paced_run(fake, redis_url, tmp_path, "redis")


def test_workers_sharing_a_sqlite_backend_stay_under_one_limit(tmp_path: Path) -> None:
    with CrmFake() as fake:
        paced_run(fake, f"sqlite:///{tmp_path / 'pacing.db'}", tmp_path, "sqlite")


def test_workers_pacing_each_in_its_own_process_exceed_the_limit(tmp_path: Path) -> None:
    """The control: without a shared backend the same workers go four times too fast."""
    with CrmFake() as fake:
        fake.enforce_window(LIMIT, 1.0)
        outcome = run_workers(fake, None, tmp_path)

    assert fake.limited_responses > 0
    assert any(isinstance(result, str) and "429" in result for result in outcome.values())
