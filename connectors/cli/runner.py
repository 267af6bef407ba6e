"""Running catalog connectors without writing code: live, replayed from a cassette, or
all of them at once into the demo database.

A live run takes credentials and config from dlt (`.dlt/secrets.toml`, environment
variables) and falls back to the source's default `base_url` (a connector without one
stops with one line naming the setting). A replayed run plays
`cassettes/<name>/<replay.cassette>.yaml` with dummy credentials, the origin it was
recorded under and the entry's replay arguments, into a fresh pipeline state, so it can
be repeated offline.
"""

from __future__ import annotations

import inspect
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
from dlt.common.schema.utils import get_root_table

from shared.errors import ConnectorError, exception_chain
from shared.loading import duckdb_pipeline, row_counts, run_source
from shared.tooling.cassettes import Scrubber, replaying
from shared.tooling.catalog import Auth, Catalog, ConnectorEntry, UnknownConnectorError

DEMO_DATABASE = "demo.duckdb"


@dataclass(frozen=True)
class SyncResult:
    """What one run loaded: rows per table (child tables included) and how long it took."""

    connector: str
    rows: dict[str, int]
    seconds: float


def dummy_credentials(entry: ConnectorEntry) -> dict[str, str]:
    """Stand-in values for the entry's secrets: a cassette has them scrubbed anyway."""
    return {secret: f"replay-{secret}" for secret in entry.auth.secrets}


def replay_scrubber(entry: ConnectorEntry) -> Scrubber:
    """Scrubs requests the way recording did, so they match the cassette's."""
    return Scrubber(entry.replay.base_url, entry.replay.base_url, fields=entry.auth.secrets)


def check_resources(entry: ConnectorEntry, resources: Sequence[str]) -> None:
    """Raise `UnknownConnectorError` for a resource the connector's code does not yield
    (not the catalog's list, which may be stale), before any credential is needed: the
    source is built with stand-in credentials, which sends no request. A connector with
    `configurable_resources` has whatever its configuration says: its names are checked
    on the source as configured (`check_source_resources`)."""
    if entry.configurable_resources or not resources:
        return
    factory = entry.source_factory()
    try:
        probe = factory(**source_arguments(entry, factory, replay=True, base_url=None))
    except Exception:  # the real build reports what is wrong, in its own words
        return
    check_source_resources(entry, probe, resources)


def check_source_resources(entry: ConnectorEntry, source: Any, resources: Sequence[str]) -> None:
    """Raise `UnknownConnectorError` for a resource the built `source` does not have,
    naming the ones it has (for a configurable source: the configured ones)."""
    available = list(source.selected_resources)
    unknown = [name for name in resources if name not in available]
    if unknown:
        has = "is configured with" if entry.configurable_resources else "has"
        raise UnknownConnectorError(
            f"{entry.name} has no resource `{unknown[0]}`; it {has}: {', '.join(available)}"
        )


def configured(section: str, key: str) -> bool:
    """Whether dlt finds a value for `sources.<section>.<key>` (config, secrets or env)."""
    for accessor in (dlt.config, dlt.secrets):
        for path in (f"sources.{section}.{key}", f"sources.{key}"):
            try:
                if accessor.get(path) is not None:
                    return True
            except Exception:  # an unreadable provider is the same as no value here
                continue
    return False


def configured_auth_mode(entry: ConnectorEntry, section: str) -> Auth:
    """The auth mode a source will use: the first whose secrets dlt finds all of under
    `sources.<section>`, else the default mode."""
    modes = entry.auth.modes
    return next(
        (m for m in modes if m.secrets and all(configured(section, key) for key in m.secrets)),
        modes[0],
    )


def config_section(entry: ConnectorEntry, factory: Any) -> str:
    """The section dlt looks a source's settings up under: `sources.<section>`."""
    return getattr(getattr(factory, "ref", None), "section", None) or entry.name


def source_arguments(
    entry: ConnectorEntry,
    factory: Any,
    replay: bool,
    base_url: str | None,
    deletions: str | None = None,
    reconcile: bool = False,
) -> dict[str, Any]:
    """The arguments the CLI passes to the source function; dlt injects the rest."""
    parameters = inspect.signature(factory).parameters
    arguments: dict[str, Any] = {}
    for name, value in (("deletions", deletions), ("reconcile", reconcile or None)):
        if value is None:
            continue
        if name not in parameters:
            raise ConnectorError(f"{entry.name}: the source takes no `{name}` argument")
        arguments[name] = value
    if replay:
        arguments.update(dummy_credentials(entry))
        base_url = entry.replay.base_url
    elif base_url is None and "base_url" in parameters:
        section = config_section(entry, factory)
        if not configured(section, "base_url"):
            base_url = entry.base_url
    if base_url is not None and "base_url" in parameters:
        arguments["base_url"] = base_url
    if replay:
        arguments.update(entry.replay.kwargs)
    return arguments


def build_source(
    entry: ConnectorEntry,
    replay: bool = False,
    resources: Sequence[str] = (),
    base_url: str | None = None,
    deletions: str | None = None,
    reconcile: bool = False,
) -> Any:
    """Instantiate the entry's source (only `resources`, if given; `deletions`: the
    source's `deletions` mode, else its default; `reconcile`: a reconciling run), once: a
    source opens its sessions and shared pacing backends (a Redis ping) as it is built.

    A resource name the connector does not have is the error named first: when the build
    itself fails (missing credentials, say), the names are checked on a stand-in before
    the build's error is raised."""
    factory = entry.source_factory()
    arguments = source_arguments(entry, factory, replay, base_url, deletions, reconcile)
    try:
        source = factory(**arguments)
    except Exception:
        check_resources(entry, resources)
        raise
    if resources:
        check_source_resources(entry, source, resources)
        source = source.with_resources(*resources)
    return source


#: what a `connectors run` pipeline's name starts with, so it never shares dlt's state
#: with a user's own pipeline named after the connector (the README's `dlt.pipeline("crm")`)
PIPELINE_PREFIX = "connectors_"


def pipeline_name(entry: ConnectorEntry, replay: bool = False) -> str:
    """`connectors_crm`, or `connectors_crm_replay` for a replay."""
    return f"{PIPELINE_PREFIX}{entry.name}" + ("_replay" if replay else "")


def database_path(
    entry: ConnectorEntry, replay: bool = False, database: str | Path | None = None
) -> Path:
    """The DuckDB file a run loads into, absolute: `database`, else `<name>.duckdb` (a
    replay: `<name>_replay.duckdb`) in the current folder."""
    default = f"{entry.name}_replay.duckdb" if replay else f"{entry.name}.duckdb"
    return Path(database or default).expanduser().resolve()


def make_pipeline(
    entry: ConnectorEntry,
    destination: str = "duckdb",
    dataset: str | None = None,
    replay: bool = False,
    pipelines_dir: str | None = None,
    progress: Any = None,
    database: str | Path | None = None,
) -> dlt.Pipeline:
    """A pipeline for one connector, loading into dataset `<name>_data` (DuckDB: in the
    file `database`, by default `<name>.duckdb` in the current folder, as an absolute
    path). Replays get their own pipeline, file and dataset (`<name>_replay`), so
    replaying never drops tables a live run loaded.

    The pipeline is named `connectors_<name>` (see `pipeline_name`), never plain
    `<name>`: a user's own `dlt.pipeline("crm", ...)` keeps its state under that name in
    the same pipelines folder, and a run must not pick it up (its cursors, its database).
    """
    name = f"{entry.name}_replay" if replay else entry.name
    dataset = dataset or f"{name}_data"
    if destination == "duckdb":
        return duckdb_pipeline(
            pipeline_name(entry, replay),
            database=str(database_path(entry, replay, database)),
            dataset_name=dataset,
            pipelines_dir=pipelines_dir,
            progress=progress,
        )
    return dlt.pipeline(
        pipeline_name=pipeline_name(entry, replay),
        destination=destination,
        dataset_name=dataset,
        pipelines_dir=pipelines_dir,
        progress=progress,
    )


def sync(
    entry: ConnectorEntry,
    pipeline: dlt.Pipeline,
    replay: bool = False,
    resources: Sequence[str] = (),
    base_url: str | None = None,
) -> SyncResult:
    """Build the connector's source and load it into `pipeline` (see `load`)."""
    source = build_source(entry, replay=replay, resources=resources, base_url=base_url)
    return load(entry, pipeline, source, replay=replay, partial=bool(resources))


def load(
    entry: ConnectorEntry,
    pipeline: dlt.Pipeline,
    source: Any,
    replay: bool = False,
    partial: bool = False,
    full_refresh: bool = False,
) -> SyncResult:
    """Run `source` into `pipeline`; return the rows this run loaded per table.

    A replay drops the connector's tables and state first (`refresh="drop_sources"`):
    the cassette is a first sync, and a stored cursor would ask for other pages. A
    `partial` replay (some resources only) leaves the other recorded requests unplayed.

    A `full_refresh` starts over the same way before it loads: every table of the source
    is dropped and all its state (cursors, deletion feeds' positions) reset, so every
    resource reads from its initial value and the tables hold exactly what the source
    lists now. A `partial` full refresh drops only the selected resources' tables and
    state (`refresh="drop_resources"`); the other tables and cursors stay.
    """
    started = time.monotonic()
    if replay:
        with replaying(
            entry.cassette_path(), replay_scrubber(entry), require_all_played=not partial
        ):
            run_source(pipeline, source, refresh="drop_sources")
    elif full_refresh:
        run_source(pipeline, source, refresh="drop_resources" if partial else "drop_sources")
    else:
        run_source(pipeline, source)
    return SyncResult(entry.name, rows_loaded(pipeline, source), time.monotonic() - started)


def rows_loaded(pipeline: dlt.Pipeline, source: Any = None) -> dict[str, int]:
    """Rows per data table that the pipeline's last run normalized (and so loaded); with
    `source`, also every table of its selected resources that this run left unchanged
    (0 new rows: an incremental run with nothing new says so, rather than omitting it)."""
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace is not None else None
    counts = dict(info.row_counts) if info is not None else {}
    if source is not None:
        selected = set(source.selected_resources)
        tables = pipeline.default_schema.tables
        for name in pipeline.default_schema.data_table_names():
            if get_root_table(tables, name).get("resource") in selected:
                counts.setdefault(name, 0)
    return {table: rows for table, rows in sorted(counts.items()) if not table.startswith("_dlt")}


@dataclass(frozen=True)
class DemoResult:
    """Rows per table of every connector the demo loaded, and the ones that failed."""

    database: Path
    tables: dict[str, dict[str, int]]
    failures: dict[str, BaseException]


def interrupted(exc: BaseException) -> bool:
    """Whether `exc` is (or wraps, as dlt's step failures do) a Ctrl-C."""
    return any(isinstance(current, KeyboardInterrupt) for current in exception_chain(exc))


def drop_staging_dataset(pipeline: Any) -> None:
    """Drop the dataset dlt merges through (`<dataset>_staging`): the demo's file is for
    looking at, and a fresh demo loads everything again, so it keeps only the tables."""
    with pipeline.sql_client() as client, client.with_staging_dataset():
        if client.has_dataset():
            client.drop_dataset()


def demo(
    catalog: Catalog,
    database: str | Path = DEMO_DATABASE,
    on_progress: Callable[[str], None] = lambda line: None,
    collector: Callable[[ConnectorEntry], Any] | None = None,
) -> DemoResult:
    """Replay every connector's cassette into one DuckDB file, one dataset per connector
    (named after it). A connector that fails is reported and the others still load; a
    Ctrl-C stops the demo (`KeyboardInterrupt`). `collector(entry)` gives each
    connector's pipeline a dlt progress collector."""
    database = Path(database).resolve()
    tables: dict[str, dict[str, int]] = {}
    failures: dict[str, BaseException] = {}
    with tempfile.TemporaryDirectory(prefix="connectors-demo-") as pipelines_dir:
        for entry in catalog:
            cassette = f"cassettes/{entry.name}/{entry.replay.cassette}.yaml"
            on_progress(f"{entry.name}: replaying {cassette} ...")
            pipeline = duckdb_pipeline(
                f"demo_{entry.name}",
                database=str(database),
                dataset_name=entry.name,
                pipelines_dir=pipelines_dir,
                progress=collector(entry) if collector is not None else None,
            )
            try:
                result = sync(entry, pipeline, replay=True)
            except Exception as exc:
                if interrupted(exc):
                    raise KeyboardInterrupt from exc
                failures[entry.name] = exc
                on_progress(f"{entry.name}: failed")
                continue
            tables[entry.name] = row_counts(pipeline)
            drop_staging_dataset(pipeline)
            count = len(tables[entry.name])
            on_progress(
                f"{entry.name}: {sum(result.rows.values())} rows into {count} "
                f"table{'s' * (count != 1)} in {result.seconds:.1f} s"
            )
    return DemoResult(database, tables, failures)
