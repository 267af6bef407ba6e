"""No credential in any message, log, trace file, state, table or cassette (issue 12).

For every connector and every auth mode, a distinctive secret is configured (through the
environment, with the trailing line break a secret read from a file carries) against the
connector's fake in echo mode: the fake repeats whatever the client sent in every JSON
body (success and error), in an `X-Echo` header, in a redirect and in next links. With
DEBUG logging on, three runs are made: a successful sync, a sync failing on a 400 whose
body echoes the secret, and a sync that cannot connect. The secret is then searched for,
raw, URL-encoded and base64-encoded, in:

- the captured logs (urllib3, dlt, ours; messages and formatted exceptions);
- every raised error, with its whole `__cause__`/`__context__` chain;
- every file under the pipelines folder, read as bytes (state, `trace.pickle`, packages);
- the DuckDB file (bytes, and every text value of every table);
- the cassettes of a LIVE-mode recording made against a fake with a custom key header.

`test_the_search_finds_a_secret_planted_in_each_place` proves the search itself.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import dlt
import duckdb
import pytest
import requests
import yaml
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.crm import crm_source
from connectors.declarative import declarative_source
from connectors.sandbox import load_recording
from connectors.sandbox.analytics import OAUTH_RESOURCES, RESOURCES, TOKEN_PATH, AnalyticsFake
from connectors.sandbox.base import FakeServer, Fault
from connectors.sandbox.crm import TOKEN as CRM_TOKEN
from connectors.sandbox.crm import CrmFake
from connectors.sandbox.hubspot_contacts import HubSpotContactsFake
from connectors.sandbox.incident_analytics import IncidentAnalyticsFake
from connectors.sandbox.project_tracker import ProjectTrackerFake
from shared.errors import ConfigurationError
from shared.http.session import ConnectorSession, strip_credentials
from shared.loading import duckdb_pipeline, run_source
from shared.redaction import Redactor
from shared.tooling.cassettes import Scrubber, recording
from shared.tooling.recordings import record

pytestmark = pytest.mark.loopback

CRM_SPEC = Path(__file__).parent.parent / "connectors" / "crm" / "crm.yml"

#: distinctive, and its URL-encoded forms differ from it (`/`, `+`)
SECRET = "SeKrEt/4f7c+9e2d1b"
#: what a secret read from a file looks like
CONFIGURED = f"  {SECRET}\n"
CUSTOM_HEADER = "X-Team-Key"


def forms(secret: str) -> set[str]:
    """The forms a secret can travel in: raw, URL-encoded, base64."""
    raw = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


# -- the search ------------------------------------------------------------------------


@dataclass
class Evidence:
    """Everything a run left behind that someone could read."""

    logs: str = ""
    errors: list[BaseException] = field(default_factory=list)
    pipelines_dir: Path | None = None
    databases: list[Path] = field(default_factory=list)
    cassettes: list[Path] = field(default_factory=list)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception of its `__cause__`/`__context__` chain (dlt stores all)."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def error_text(exc: BaseException) -> str:
    parts = []
    for current in chain(exc):
        parts += [str(current), repr(current), repr(current.args)]
        parts += traceback.format_exception_only(type(current), current)
        parts += [str(v) for v in vars(current).values()] if hasattr(current, "__dict__") else []
    return "\n".join(parts)


def table_text(database: Path) -> str:
    """Every value of every table of a DuckDB file, as text."""
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
        return "\n".join(
            repr(connection.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall())
            for schema, name in tables
        )


def find(secrets: list[str], evidence: Evidence) -> dict[str, list[str]]:
    """Where any form of any secret appears: place -> what was found where."""
    wanted = {form for secret in secrets for form in forms(secret)}
    hits: dict[str, list[str]] = {}

    def look(place: str, where: str, haystack: str | bytes) -> None:
        for form in wanted:
            needle: str | bytes = form.encode() if isinstance(haystack, bytes) else form
            if needle in haystack:  # type: ignore[operator]
                hits.setdefault(place, []).append(f"{where}: {form!r}")

    look("logs", "captured logs", evidence.logs)
    for exc in evidence.errors:
        look("errors", type(exc).__name__, error_text(exc))
    if evidence.pipelines_dir is not None:
        for path in sorted(evidence.pipelines_dir.rglob("*")):
            if path.is_file():
                look("pipelines", str(path.relative_to(evidence.pipelines_dir)), path.read_bytes())
    for database in evidence.databases:
        look("duckdb", database.name, database.read_bytes())
        look("duckdb", f"{database.name} tables", table_text(database))
    for cassette in evidence.cassettes:
        look("cassettes", cassette.name, cassette.read_bytes())
    return hits


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """DEBUG logging everywhere, as `logging.basicConfig(level=DEBUG)` would set it; dlt's
    own logger (which may not propagate) is captured too."""
    caplog.set_level(logging.DEBUG)
    dlt_logger = logging.getLogger("dlt")
    level = dlt_logger.level
    dlt_logger.addHandler(caplog.handler)
    dlt_logger.setLevel(logging.DEBUG)

    def text() -> str:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(formatter.format(record) for record in caplog.records)

    yield text
    dlt_logger.removeHandler(caplog.handler)
    dlt_logger.setLevel(level)


# -- the auth modes ------------------------------------------------------------------


@dataclass
class Case:
    """One connector in one auth mode."""

    id: str
    connector: str
    fake: Callable[[], FakeServer]
    #: config key -> value, set as SOURCES__<CONNECTOR>__<KEY>
    secrets: dict[str, str]
    fail_path: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: secrets the run obtains (OAuth2 tokens), read from the fake afterwards
    obtained: Callable[[Any], list[str]] = lambda fake: []
    #: builds the source instead of the connector's recording (the crm spec)
    source: Callable[..., Any] | None = None


def _analytics(**auth: Any) -> AnalyticsFake:
    fake = AnalyticsFake(events=60, users=30, page_views=5)
    for name, value in auth.items():
        setattr(fake, name, value)
    return fake


def _issued_tokens(fake: AnalyticsFake) -> list[str]:
    from connectors.sandbox.analytics import TOKEN_PREFIX

    return [f"{TOKEN_PREFIX}{n:04d}" for n in range(1, fake.tokens_issued + 1)]


CASES = [
    Case(
        "crm-bearer",
        "crm",
        lambda: CrmFake(token=SECRET),
        {"bearer_token": CONFIGURED},
        "/api/v2/users",
    ),
    # the crm spec (connectors/crm/crm.yml): `${bearer_token}` read from the environment
    Case(
        "crm_spec-bearer",
        "crm",
        lambda: CrmFake(token=SECRET),
        {"bearer_token": CONFIGURED},
        "/api/v2/users",
        source=lambda **kwargs: declarative_source(CRM_SPEC, **kwargs),
    ),
    Case(
        "incident_analytics-geniekey",
        "incident_analytics",
        lambda: IncidentAnalyticsFake(token=SECRET),
        {"api_token": CONFIGURED},
        "/v2/users",
    ),
    Case(
        "project_tracker-api_key-header",
        "project_tracker",
        lambda: ProjectTrackerFake(api_key=SECRET),
        {"api_key": CONFIGURED},
        "/v1/labels",
    ),
    Case(
        "project_tracker-custom-header",
        "project_tracker",
        lambda: ProjectTrackerFake(api_key=SECRET, header=CUSTOM_HEADER),
        {"api_key": CONFIGURED},
        "/v1/labels",
        kwargs={"api_key_header": CUSTOM_HEADER},
    ),
    Case(
        "hubspot_contacts-bearer",
        "hubspot_contacts",
        lambda: HubSpotContactsFake(count=30, token=SECRET),
        {"api_key": CONFIGURED},
        "/crm/v3/objects/contacts",
    ),
    Case(
        "analytics-api_key-query",
        "analytics",
        lambda: _analytics(api_key=SECRET),
        {"api_key": CONFIGURED},
        "/v1/events",
        kwargs={"resources": RESOURCES},
    ),
    Case(
        "analytics-api_key-header",
        "analytics",
        lambda: _analytics(api_key=SECRET),
        {"api_key": CONFIGURED},
        "/v1/events",
        kwargs={"resources": RESOURCES, "api_key_location": "header"},
    ),
    Case(
        "analytics-oauth2",
        "analytics",
        lambda: _analytics(client_id="analytics-client-7d3e", client_secret=SECRET),
        {"client_id": "analytics-client-7d3e", "client_secret": CONFIGURED},
        "/v1/events",
        kwargs={"resources": OAUTH_RESOURCES, "token_url": TOKEN_PATH},
        obtained=_issued_tokens,
    ),
]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def sync(case: Case, base_url: str, tmp_path: Path, run: str, **kwargs: Any) -> dlt.Pipeline:
    rec = load_recording(case.connector)
    pipeline = duckdb_pipeline(
        f"security_{run}",
        database=str(tmp_path / f"{run}.duckdb"),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    make = case.source or rec.source
    source = make(base_url=base_url, **{**rec.offline_kwargs, **case.kwargs, **kwargs})
    run_source(pipeline, source)
    return pipeline


#: a second auth mode of a connector already covered: `make test-slow`
#: `make test` keeps one case per way a credential travels (a bearer header, a key in the
#: query, OAuth2's token exchange); the other header variants run in `make test-slow`
SLOW_CASES = {
    "crm_spec-bearer",
    "analytics-oauth2",
    "project_tracker-custom-header",
    "analytics-api_key-header",
    "incident_analytics-geniekey",
    "project_tracker-api_key-header",
    "hubspot_contacts-bearer",
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=pytest.mark.slow) if case.id in SLOW_CASES else case
        for case in CASES
    ],
    ids=lambda case: case.id,
)
def test_no_secret_anywhere_after_success_error_and_connection_failure(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: Callable[[], str],
) -> None:
    for key, value in case.secrets.items():
        monkeypatch.setenv(f"SOURCES__{case.connector.upper()}__{key.upper()}", value)
    evidence = Evidence(pipelines_dir=tmp_path / "pipelines")
    with case.fake() as fake:
        fake.echo_secrets = True
        # 1. a full sync: every answer echoes the credentials, through a redirect
        pipeline = sync(case, fake.base_url, tmp_path, "success")
        with pipeline.sql_client() as client:
            loaded = client.execute_sql(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                pipeline.dataset_name,
            )
        assert loaded and loaded[0][0] > 0, "the echoing fake must still serve data"
        echoed = [r for r in fake.requests if "echo" in r.args]
        assert echoed, "the fake redirected with the credentials in the URL"
        # 2. a 400 whose body (and X-Echo header) repeats the credentials
        fake.inject(Fault(400, {"message": "bad request"}, path=case.fail_path, times=99))
        with pytest.raises(PipelineStepFailed) as failed:
            sync(case, fake.base_url, tmp_path, "error", max_retries=0)
        evidence.errors.append(failed.value)
        obtained = case.obtained(fake)
    # 3. nothing listens: the library's connection error names the URL
    with pytest.raises(PipelineStepFailed) as unreachable:
        sync(case, closed_port_url(), tmp_path, "unreachable", max_retries=0)
    evidence.errors.append(unreachable.value)
    evidence.logs = debug_logs()
    evidence.databases = sorted(tmp_path.glob("*.duckdb"))
    assert "urllib3.connectionpool DEBUG" in evidence.logs  # DEBUG logging really was on

    assert find([SECRET, *obtained], evidence) == {}


@pytest.mark.slow
def test_live_recording_with_a_custom_key_header_writes_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = load_recording("project_tracker")
    steps = [
        # LIVE mode paces as for the real API; the loopback "API" needs no pacing
        dataclasses.replace(
            step,
            source_kwargs={**step.source_kwargs, **rec.offline_kwargs, "api_key_header": "X-Key"},
        )
        for step in rec.steps
    ]
    rec = dataclasses.replace(rec, steps=steps, secret_headers=())
    with ProjectTrackerFake(api_key=SECRET, header="X-Key") as api:
        api.echo_secrets = True
        monkeypatch.setenv("PROJECT_TRACKER_BASE_URL", api.base_url)
        monkeypatch.setenv("PROJECT_TRACKER_API_KEY", CONFIGURED)
        written = record(rec, live=True, root=tmp_path)
    # the "real API" accepted every request: the key really went out in the custom header
    assert api.requests and all(r.status in (200, 307) for r in api.requests)
    assert {r.headers.get("X-Key") for r in api.requests} == {SECRET}
    assert len(written) == len(rec.steps)
    assert find([SECRET], Evidence(cassettes=written)) == {}
    for path in written:
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            sent = {name.lower() for name in interaction["request"]["headers"]}
            assert "x-key" not in sent  # the auth's own header name is always scrubbed


def test_the_search_finds_a_secret_planted_in_each_place(
    tmp_path: Path, debug_logs: Callable[[], str]
) -> None:
    planted = "PlAnTeD/5a6b+7c8d9e"

    @dlt.resource(name="rows")
    def rows() -> Iterator[dict[str, Any]]:
        dlt.current.resource_state()["cursor"] = quote(planted, safe="")
        yield {"id": 1, "value": planted}

    pipelines = tmp_path / "pipelines"
    pipeline = duckdb_pipeline(
        "planted", database=str(tmp_path / "planted.duckdb"), pipelines_dir=str(pipelines)
    )
    pipeline.run(rows())

    @dlt.resource(name="broken")
    def broken() -> Iterator[dict[str, Any]]:
        try:
            raise KeyError(planted)
        except KeyError:
            raise RuntimeError("could not read") from None  # only in __context__
        yield {}

    with pytest.raises(PipelineStepFailed) as failed:
        pipeline.run(broken())
    logging.getLogger("urllib3.connectionpool").debug("GET /x?k=%s", quote_plus(planted))

    with CrmFake() as fake:
        path = tmp_path / "planted.yaml"
        with recording(path, Scrubber(fake.origin, "https://api.example.com")):
            encoded = base64.b64encode(planted.encode()).decode()
            requests.get(f"{fake.origin}/api/v2/site", headers={"X-Plant": encoded}, timeout=5)

    evidence = Evidence(
        logs=debug_logs(),
        errors=[failed.value],
        pipelines_dir=pipelines,
        databases=[tmp_path / "planted.duckdb"],
        cassettes=[path],
    )
    hits = find([planted], evidence)
    assert set(hits) == {"logs", "errors", "pipelines", "duckdb", "cassettes"}, hits
    in_pipelines = "\n".join(hits["pipelines"])
    assert "trace.pickle" in in_pipelines  # the failure's chain, pickled
    assert "state" in in_pipelines  # the resource state
    assert any("tables" in hit for hit in hits["duckdb"])


# -- the findings, one by one --------------------------------------------------------


def test_a_secret_with_surrounding_line_breaks_is_stripped_and_one_inside_is_refused() -> None:
    from connectors.crm import crm_source
    from shared.http.auth import bearer_token

    with CrmFake(token=SECRET) as fake:
        session = ConnectorSession("crm", fake.base_url, auth=bearer_token(CONFIGURED))
        assert session.get(f"{fake.base_url}/api/v2/site").status_code == 200
    assert fake.requests[-1].headers["Authorization"] == f"Bearer {SECRET}"
    with pytest.raises(ConfigurationError) as refused:
        crm_source(bearer_token=f"{SECRET}\nsecond-line", base_url="https://api.example.com")
    assert str(refused.value) == (
        "crm: `sources.crm.bearer_token` contains a line break or another control character "
        "inside it, which cannot be sent in a header or URL; set it again as a single line "
        "(the value is not shown)"
    )
    assert not any(form in error_text(refused.value) for form in forms(SECRET))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_follow_without_credentials_drops_a_custom_key_header_on_a_foreign_redirect(
    status: int,
) -> None:
    from shared.http.auth import api_key_header

    with ProjectTrackerFake(api_key=SECRET, header=CUSTOM_HEADER) as home, CrmFake() as foreign:
        home.inject(
            Fault(status, None, {"Location": f"{foreign.base_url}/api/v2/site"}, path="/v1/labels")
        )
        session = ConnectorSession(
            "project_tracker",
            home.base_url,
            auth=api_key_header(SECRET, header=CUSTOM_HEADER),
            foreign_links="follow_without_credentials",
        )
        session.get(f"{home.base_url}/v1/labels", timeout=5)
    assert home.requests[0].headers.get(CUSTOM_HEADER) == SECRET  # sent home
    (arrived,) = foreign.requests
    assert arrived.path == "/api/v2/site"
    assert CUSTOM_HEADER.lower() not in {name.lower() for name in arrived.headers}
    assert not any(SECRET in value for value in arrived.headers.values())


def test_strip_credentials_removes_the_auths_names_and_any_secret_value_on_a_next_link() -> None:
    redactor = Redactor([SECRET])
    redactor.register_name(CUSTOM_HEADER, "team_key")
    request = requests.Request(
        "GET",
        f"https://elsewhere.example.org/p?page=2&team_key={quote(SECRET, safe='')}&echo={SECRET}",
        headers={
            CUSTOM_HEADER: "whatever-format",
            "X-Other": f"GenieKey {SECRET}",
            "Authorization": "Bearer x",
            "Accept": "application/json",
        },
    ).prepare()
    strip_credentials(request, (), redactor)
    assert request.url == "https://elsewhere.example.org/p?page=2"
    assert dict(request.headers) == {"Accept": "application/json"}


def test_urllib3_debug_logging_under_basic_config_does_not_print_the_query_key(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    program = f"""
import logging, os
logging.basicConfig(level=logging.DEBUG)
from connectors.analytics import analytics_source
from connectors.sandbox.analytics import AnalyticsFake
from shared.loading import duckdb_pipeline, run_source
with AnalyticsFake(events=5, users=2, page_views=1) as fake:
    fake.api_key = {SECRET!r}
    source = analytics_source(base_url=fake.base_url, resources=["events"], api_key={SECRET!r})
    run_source(duckdb_pipeline("p", database={str(tmp_path / "p.duckdb")!r},
               pipelines_dir={str(tmp_path)!r}), source)
"""
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "urllib3.connectionpool" in result.stderr and "/v1/events?" in result.stderr
    assert not any(form in result.stderr + result.stdout for form in forms(SECRET))


def test_a_rate_limit_backend_is_a_secret_kept_out_of_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rate_limit_backend` may be `redis://:password@host`: dlt keeps the values of config
    it resolved in `trace.pickle`, but never a secret's. (A path stands in for the
    password: a real Redis URL would need a server.)"""
    marker = "Backend-Pw-7e6d5c"
    backend = tmp_path / marker
    backend.mkdir()
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", CRM_TOKEN)
    monkeypatch.setenv("SOURCES__CRM__RATE_LIMIT_BACKEND", f"sqlite:///{backend / 'pacing.db'}")
    pipeline = duckdb_pipeline(
        "crm_backend", str(tmp_path / "crm.duckdb"), pipelines_dir=str(tmp_path / "pipelines")
    )
    with CrmFake() as fake:
        source = crm_source(base_url=fake.base_url, requests_per_minute=60_000)
        run_source(pipeline, source.with_resources("stages"))

    resolved = {value.key: value for value in pipeline.last_trace.resolved_config_values}
    assert resolved["rate_limit_backend"].is_secret_hint
    assert resolved["rate_limit_backend"].value is None
    assert (backend / "pacing.db").is_file()  # the backend was used
    for path in (tmp_path / "pipelines").rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path
