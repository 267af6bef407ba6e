"""`python -m connectors`: list, show, run (live and --replay), demo; and the one-line
errors for what a user can fix."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from connectors.cli import dango as dango_entry
from connectors.cli import main, runner, snippets
from connectors.cli.explain import known_destinations
from connectors.sandbox.analytics import TOKEN_PATH, AnalyticsFake
from connectors.sandbox.crm import TOKEN, CrmFake
from shared.tooling.catalog import ConnectorEntry, UnknownConnectorError, load_catalog
from tests.serving import SECONDS

pytestmark = pytest.mark.usefixtures("empty_folder")

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()
WITH_SECRETS = [entry for entry in CATALOG if entry.auth.secrets]
ALTERNATIVE_MODES = [(entry, mode) for entry in CATALOG for mode in entry.auth.alternatives]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_python_in(project: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh interpreter from `project` (a user's project folder), with
    the catalog importable and no SOURCES__* variables leaking in from this process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )


def error_lines(stderr: str) -> list[str]:
    """What a failed command said, without dlt's progress lines."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def table(stdout: str) -> dict[str, int]:
    """The `TABLE  ROWS` lines a run or the demo printed."""
    return {
        match[1]: int(match[2])
        for match in re.finditer(r"^(\S+)\s+(\d+)$", stdout, flags=re.MULTILINE)
    }


def stored_counts(database: Path, datasets: list[str]) -> dict[str, int]:
    """Rows per `dataset.table` in a DuckDB file (dlt's own tables left out)."""
    with duckdb.connect(str(database)) as db:
        tables = db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name NOT LIKE '_dlt%'"
        ).fetchall()
        counts = {}
        for schema, name in tables:
            if schema in datasets:
                ((rows,),) = db.execute(f'SELECT COUNT(*) FROM "{schema}"."{name}"').fetchall()
                counts[f"{schema}.{name}"] = rows
        return counts


# -- list / show -----------------------------------------------------------------------


def test_list_prints_one_row_per_catalog_connector(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list")

    assert code == 0
    rows = [line.split()[0] for line in out.splitlines()[1:] if line and line[0] != " "]
    assert rows[: len(CATALOG)] == CATALOG.names
    for entry in CATALOG:
        row = next(line for line in out.splitlines() if line.startswith(f"{entry.name} "))
        assert entry.auth.type in row and str(len(entry.resources)) in row.split()


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_show_prints_resources_secrets_snippet_and_dango_entry(
    capsys: pytest.CaptureFixture[str], entry: ConnectorEntry
) -> None:
    settings = snippets.source_settings(entry)

    code, out, _ = cli(capsys, "show", entry.name)

    assert code == 0
    for resource in entry.resources:
        row = rf"^  {re.escape(resource.name)}\s+.*\s{resource.write_disposition}\s"
        assert re.search(row, out, re.MULTILINE), resource.name
    assert snippets.secrets_toml(settings) in out
    assert dango_entry.sources_yml(entry, settings) in out
    dango = yaml.safe_load(dango_entry.sources_yml(entry, settings))["sources"][0]
    assert dango["type"] == "dlt_native"
    assert dango["dlt_native"]["source_module"] == entry.module
    assert dango["dlt_native"]["source_function"] == entry.source_function
    # only what has no default: Dango prints function_kwargs, and base_url is there only
    # for a source without a default (its API has no vendor URL)
    assert set(dango["dlt_native"]["function_kwargs"]) == set(settings.required_config)
    assert ("base_url" in dango["dlt_native"]["function_kwargs"]) == (entry.base_url is None)
    assert set(settings.required_config) <= set(settings.config)


def test_show_prints_a_secrets_snippet_for_each_auth_mode_as_either_or(
    capsys: pytest.CaptureFixture[str],
) -> None:
    entry = CATALOG.get("analytics")
    settings = snippets.source_settings(entry)

    code, out, _ = cli(capsys, "show", "analytics")

    assert code == 0
    assert (
        "auth:        either api_key (api_key) or oauth2_client_credentials "
        "(client_id, client_secret; config token_url)"
    ) in out
    either = out.index(".dlt/secrets.toml (one auth mode only), either api_key:")
    other = out.index("or oauth2_client_credentials:")
    assert either < out.index(snippets.secrets_toml(settings)) < other
    oauth = out[other:].split("(or the environment", 1)[0]
    assert "[sources.analytics]" in oauth
    assert re.findall(r"^(\w+) = ", oauth, re.MULTILINE) == [
        "client_id",
        "client_secret",
        "token_url",
    ]
    assert "api_key" not in oauth
    assert (
        "(or the environment variables SOURCES__ANALYTICS__CLIENT_ID, "
        "SOURCES__ANALYTICS__CLIENT_SECRET, SOURCES__ANALYTICS__TOKEN_URL)"
    ) in out


def test_a_live_run_configured_as_shows_oauth_snippet_says_authenticates_by_oauth2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, _ = cli(capsys, "show", "analytics")
    oauth = out.split("or oauth2_client_credentials:", 1)[1]
    env_vars = re.search(r"\(or the environment variables ([^)]+)\)", oauth)
    assert env_vars is not None

    with AnalyticsFake() as fake:
        values = {
            "CLIENT_ID": fake.client_id,
            "CLIENT_SECRET": fake.client_secret,
            "TOKEN_URL": TOKEN_PATH,
        }
        for variable in env_vars[1].split(", "):  # exactly the keys `show` named
            monkeypatch.setenv(variable, values[variable.rsplit("__", 1)[1]])
        monkeypatch.setenv("SOURCES__ANALYTICS__BASE_URL", fake.base_url)
        monkeypatch.setenv("SOURCES__ANALYTICS__RESOURCES", '["events"]')

        code, out, err = cli(capsys, "run", "analytics")

    assert code == 0, err
    assert table(out) == {"events": len(fake.data["events"])}
    assert len(fake.token_requests()) == 1
    data = fake.data_requests()
    assert data and all(r.headers["Authorization"].startswith("Bearer ") for r in data)
    assert not any("api_key" in r.args for r in data)


def pasted_config(entry: ConnectorEntry, settings: snippets.SourceSettings) -> str:
    """`show`'s config.toml as a user pastes it: the placeholder `base_url` of a source
    without a default replaced by their API's (here: the origin of the recordings)."""
    return snippets.config_toml(entry, settings).replace(
        f'base_url = "{snippets.PLACEHOLDER}"', f'base_url = "{entry.replay.base_url}"'
    )


@pytest.mark.parametrize(
    ("entry", "mode"), ALTERNATIVE_MODES, ids=[f"{e.name}-{m.type}" for e, m in ALTERNATIVE_MODES]
)
def test_an_alternative_auth_modes_snippet_is_what_dlt_needs_to_build_the_source(
    tmp_path: Path, entry: ConnectorEntry, mode: object
) -> None:
    settings = snippets.source_settings(entry)
    (tmp_path / ".dlt").mkdir()
    secrets = snippets.auth_mode_toml(entry, settings, mode)  # type: ignore[arg-type]
    (tmp_path / ".dlt/secrets.toml").write_text(secrets.replace('"..."', '"from-secrets-toml"'))
    (tmp_path / ".dlt/config.toml").write_text(pasted_config(entry, settings))
    script = (
        f"from {entry.module} import {entry.source_function} as factory\n"
        "print(sorted(factory().selected_resources))\n"
    )
    result = run_python_in(tmp_path, script)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(sorted(entry.resource_names))


@pytest.mark.slow  # every source built in a fresh interpreter
def test_snippets_are_what_dlt_and_dango_need_to_build_every_source(tmp_path: Path) -> None:
    """The printed secrets.toml, config.toml and .dango/sources.yml, pasted into a
    project, are enough to build every source (dlt resolves the rest from them)."""
    secrets, config, dango = [], [], []
    for entry in CATALOG:
        settings = snippets.source_settings(entry)
        secrets.append(snippets.secrets_toml(settings).replace('"..."', '"from-secrets-toml"'))
        config.append(pasted_config(entry, settings))
        (source,) = yaml.safe_load(dango_entry.sources_yml(entry, settings))["sources"]
        kwargs = source["dlt_native"]["function_kwargs"]
        if "base_url" in kwargs:  # the line marked "replace with your API's base URL"
            assert kwargs["base_url"] == snippets.PLACEHOLDER and entry.base_url is None
            kwargs["base_url"] = entry.replay.base_url
        dango.append(source)
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt/secrets.toml").write_text("\n".join(secrets))
    (tmp_path / ".dlt/config.toml").write_text("\n".join(config))
    (tmp_path / "sources.yml").write_text(yaml.safe_dump({"sources": dango}))
    script = textwrap.dedent(
        """
        import importlib, yaml
        for source in yaml.safe_load(open("sources.yml"))["sources"]:
            native = source["dlt_native"]
            factory = getattr(importlib.import_module(native["source_module"]),
                              native["source_function"])
            from_dlt = factory()  # secrets and config from .dlt/
            from_dango = factory(**native["function_kwargs"])  # secrets from .dlt/
            print(source["name"], len(from_dlt.selected_resources),
                  len(from_dango.selected_resources))
        """
    )
    result = run_python_in(tmp_path, script)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        f"{e.name} {len(e.resources)} {len(e.resources)}" for e in CATALOG
    ]


# -- run ---------------------------------------------------------------------------------


def test_run_replay_loads_the_chosen_resources_and_prints_rows_per_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recorded = CrmFake()  # the data the crm cassettes were recorded from

    code, out, err = cli(capsys, "run", "crm", "--replay", "--resources", "users,site")

    assert code == 0, err
    assert table(out) == {"users": len(recorded.data["users"]), "site": 1}
    assert "replaying cassettes/crm/full_sync.yaml" in err
    assert (tmp_path / "crm_replay.duckdb").exists()


@pytest.mark.slow
def test_run_replay_twice_reloads_the_same_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = cli(capsys, "run", "crm", "--replay", "--dataset", "crm_twice")
    second = cli(capsys, "run", "crm", "--replay", "--dataset", "crm_twice")

    assert first[0] == second[0] == 0
    assert table(first[1]) == table(second[1])
    with duckdb.connect(str(tmp_path / "crm_replay.duckdb")) as db:
        ((users,),) = db.execute("SELECT COUNT(*) FROM crm_twice.users").fetchall()
    assert users == table(first[1])["users"] == len(CrmFake().data["users"])


def test_run_against_a_live_api_takes_credentials_and_base_url_from_dlt_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with CrmFake() as fake:
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("SOURCES__CRM__BASE_URL", fake.base_url)
        monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")

        code, out, err = cli(capsys, "run", "crm", "--resources", "pipelines,stages")

    assert code == 0, err
    assert table(out) == {
        "pipelines": len(fake.data["pipelines"]),
        "stages": len(fake.data["stages"]),
    }
    assert {r.headers["Authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("flag", "expected"), [((), (120, 1)), (("--deletions", "hard"), (119, 0))]
)
def test_run_deletions_hard_deletes_the_rows_the_default_keeps_marked(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    flag: tuple[str, ...],
    expected: tuple[int, int],
) -> None:
    database = str(tmp_path / "deletions.duckdb")
    with CrmFake() as fake:
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")
        argv = ["run", "crm", "--resources", "users", "--base-url", fake.base_url]
        argv += ["--database", database, "--dataset", "crm_deletions", *flag]
        assert cli(capsys, *argv)[0] == 0
        fake.delete("users", fake.data["users"][0]["id"])
        code, _, err = cli(capsys, *argv)

    assert code == 0, err
    with duckdb.connect(database) as db:
        ((rows, marked),) = db.execute(
            "SELECT COUNT(*), COUNT(_deleted_at) FROM crm_deletions.users"
        ).fetchall()
    # rows, and rows marked deleted
    assert (rows, marked) == expected


def test_run_reconcile_reads_an_incremental_list_without_its_cursor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with CrmFake() as fake:
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")
        argv = ["run", "crm", "--resources", "projects", "--base-url", fake.base_url]
        argv += ["--database", str(tmp_path / "reconcile.duckdb")]
        assert cli(capsys, *argv)[0] == 0
        assert cli(capsys, *argv)[0] == 0
        code, _, err = cli(capsys, *argv, "--reconcile")

    assert code == 0, err
    sent = [r.args.get("since") for r in fake.requests if r.path == "/api/v2/kases"]
    # first run: no cursor yet; second: from the cursor; reconciling: none again
    assert sent[0] is None and sent[-1] is None
    assert sent[2] is not None


def test_run_deletions_takes_only_soft_or_hard(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "crm", "--deletions", "gone"])
    assert "invalid choice: 'gone'" in capsys.readouterr().err


def test_a_rejected_token_is_one_line_naming_the_secret_without_its_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with CrmFake() as fake:
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", "not-the-token")

        code, _, err = cli(
            capsys, "run", "crm", "--resources", "users", "--base-url", fake.base_url
        )

    assert code == 1
    (line,) = error_lines(err)
    assert "401" in line and "sources.crm.bearer_token" in line
    assert "not-the-token" not in err and "Traceback" not in err


@pytest.mark.parametrize("entry", WITH_SECRETS, ids=[e.name for e in WITH_SECRETS])
def test_missing_credentials_are_one_line_naming_what_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, entry: ConnectorEntry
) -> None:
    # the required config is there, so what is missing is the credentials
    settings = snippets.source_settings(entry)
    for key, value in snippets.config_values(entry, settings).items():
        monkeypatch.setenv(
            settings.env_var(key), value if isinstance(value, str) else json.dumps(value)
        )

    code, out, err = cli(capsys, "run", entry.name)

    assert code == 1
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {entry.name}: ")
    secret = entry.auth.secrets[0]
    assert f"sources.{settings.section}.{secret}" in line
    assert settings.env_var(secret) in line


def test_unknown_connector_is_one_line_listing_the_catalog(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in (["run", "nope"], ["show", "nope"], ["run", "nope", "--replay"]):
        code, out, err = cli(capsys, *command)

        assert code == 2
        assert err.splitlines() == [
            f"error: unknown connector `nope`; the catalog has: {', '.join(CATALOG.names)}"
        ]


def test_unknown_resource_is_one_line_listing_the_connectors_resources(
    capsys: pytest.CaptureFixture[str],
) -> None:
    crm = CATALOG.get("crm")

    code, _, err = cli(capsys, "run", "crm", "--replay", "--resources", "users,nope")

    assert code == 2
    assert err.splitlines() == [
        f"error: crm has no resource `nope`; it has: {', '.join(crm.resource_names)}"
    ]


def test_a_configurable_source_checks_resources_against_its_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """analytics loads what `sources.analytics.resources` lists, not the catalog's
    (replay) resources: a configured name is accepted, an unconfigured one refused."""
    analytics = CATALOG.get("analytics")
    monkeypatch.setenv("SOURCES__ANALYTICS__BASE_URL", "https://analytics.example.com")
    monkeypatch.setenv("SOURCES__ANALYTICS__API_KEY", "key")
    monkeypatch.setenv("SOURCES__ANALYTICS__RESOURCES", '["sessions", "events"]')
    assert "sessions" not in analytics.resource_names

    source = runner.build_source(analytics, resources=["sessions"])

    assert list(source.selected_resources) == ["sessions"]
    with pytest.raises(UnknownConnectorError, match="no resource `users`"):
        runner.build_source(analytics, resources=["users"])  # in the catalog, not configured


def test_an_unknown_resource_of_a_configurable_source_is_one_line_naming_the_configured_ones(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__ANALYTICS__BASE_URL", "https://analytics.example.com")
    monkeypatch.setenv("SOURCES__ANALYTICS__API_KEY", "key")
    monkeypatch.setenv("SOURCES__ANALYTICS__RESOURCES", '["sessions", "events"]')

    code, out, err = cli(capsys, "run", "analytics", "--resources", "events,nope")

    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: analytics has no resource `nope`; it is configured with: sessions, events"
    ]


def test_replay_of_a_configurable_source_checks_resources_against_the_replay_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    replayed = [
        entry if isinstance(entry, str) else entry["name"]
        for entry in CATALOG.get("analytics").replay.kwargs["resources"]
    ]

    code, _, err = cli(capsys, "run", "analytics", "--replay", "--resources", "nope")

    assert code == 2
    assert err.splitlines() == [
        f"error: analytics has no resource `nope`; it is configured with: {', '.join(replayed)}"
    ]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_api_is_our_one_redacted_line_not_the_socket_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__CRM__MAX_RETRIES", "0")
    base_url = f"http://127.0.0.1:{port}"

    code, _, err = cli(capsys, "run", "crm", "--resources", "users", "--base-url", base_url)

    assert code == 1
    assert error_lines(err) == [
        f"error: crm: could not reach {base_url}/api/v2/users?perPage=100 (ConnectionError)"
    ]
    assert "Connection refused" not in err and TOKEN not in err


def test_an_unknown_destination_is_one_complete_line_naming_real_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "run", "crm", "--replay", "--destination", "nope")

    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert line == f"error: unknown destination `nope`; try {', '.join(known_destinations())}"
    assert line.startswith("error: unknown destination `nope`; try duckdb, ")
    assert {"postgres", "bigquery", "filesystem"} <= set(known_destinations())


def test_without_a_catalog_file_the_cli_says_to_reinstall(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What a broken install sees (a wheel carries catalog.yml, cassettes and templates:
    tests/test_wheel.py): the packages import, but the catalog is not there."""
    missing = tmp_path / "site-packages" / "catalog.yml"
    monkeypatch.setattr("shared.tooling.catalog.CATALOG_PATH", missing)

    for command in (["list"], ["show", "crm"], ["run", "crm", "--replay"], ["demo"]):
        code, out, err = cli(capsys, *command)

        assert (code, out) == (1, "")
        assert err.splitlines() == [
            f"error: no catalog at {missing}: this installation lacks the catalog's files; "
            "reinstall the package (pip install --force-reinstall), or run from a checkout: "
            "pip install -e ."
        ]


def _declared_distributions() -> set[str]:
    """The distributions pyproject.toml's `dependencies` install: each requirement, and
    what the extras it asks for (`dlt[duckdb,parquet]`) pull in."""
    import importlib.metadata

    import tomlkit
    from packaging.requirements import Requirement

    project = tomlkit.parse((ROOT / "pyproject.toml").read_text())["project"]
    declared: set[str] = set()
    for line in project["dependencies"]:
        requirement = Requirement(str(line))
        declared.add(requirement.name.lower())
        for extra in requirement.extras:
            for inner in importlib.metadata.requires(requirement.name) or []:
                pulled = Requirement(inner)
                if pulled.marker is not None and pulled.marker.evaluate({"extra": extra}):
                    declared.add(pulled.name.lower())
    return declared


def test_every_library_the_connectors_and_shared_code_import_is_a_declared_dependency() -> None:
    """A plain `pip install .` (no dev extras) has everything `connectors` and `shared`
    import at run time, e.g. tomlkit for `show`'s snippets, vcrpy for `run --replay`."""
    import ast
    import importlib.metadata

    distributions = importlib.metadata.packages_distributions()
    imported: dict[str, str] = {}
    for path in [*(ROOT / "connectors").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("connectors", "shared"):
                    continue
                imported[top] = path.relative_to(ROOT).as_posix()
    declared = _declared_distributions()

    undeclared = {
        module: where
        for module, where in imported.items()
        if not {d.lower() for d in distributions.get(module, [module])} & declared
    }
    assert undeclared == {}
    assert {"tomlkit", "vcr", "yaml", "dlt"} <= set(imported)


def test_the_installed_entry_point_exits_non_zero_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "connectors", "run", "crm", "--resources", "nope"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("error: crm has no resource `nope`; it has: users,")
    assert len(result.stderr.strip().splitlines()) == 1


# -- demo ------------------------------------------------------------------------------


@pytest.mark.slow  # every connector synced (~25 s); make test-wheel runs demo too
def test_demo_syncs_every_connector_into_one_duckdb_file_and_prints_row_counts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "demo.duckdb"
    monkeypatch.setenv("CONNECTORS_PROGRESS", "1")  # captured stderr is no terminal

    code, out, err = cli(capsys, "demo", "--database", str(database))

    assert code == 0, err
    printed = table(out)
    assert {name.split(".")[0] for name in printed} == set(CATALOG.names)
    stored = stored_counts(database, CATALOG.names)
    assert printed == stored
    for entry in CATALOG:
        for resource in entry.resources:
            assert f"{entry.name}.{resource.name}" in printed
    assert printed["crm.users"] == len(CrmFake().data["users"])
    # one schema per connector, and no staging schema dlt merged through
    with duckdb.connect(str(database), read_only=True) as db:
        schemas = {
            row[0] for row in db.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()
        }
    assert set(CATALOG.names) <= schemas
    assert not [name for name in schemas if name.endswith("_staging")], schemas
    # forced progress: each connector's requests and rows per resource, on stderr only
    for entry in CATALOG:
        assert re.search(rf"^{entry.name}: extract: [1-9]\d* requests.*; rows: ", err, re.M)
    users = len(CrmFake().data["users"])
    assert re.search(rf"^crm: extract: .*; rows: .*\busers {users}\b", err, re.M)
    assert "extract:" not in out


def test_show_prints_the_catalog_notes_and_the_fast_path_note_names_a_real_argument(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import inspect

    from connectors.crm import crm_source

    entry = load_catalog().get("crm")
    code, out, _ = cli(capsys, "show", "crm")

    assert code == 0
    assert entry.notes and all(f"note: {note}" in out for note in entry.notes)
    assert "arrow_pages=True" in entry.notes[0]
    assert "arrow_pages" in inspect.signature(crm_source).parameters


# -- the first hour of a new user (issue 14) ------------------------------------------


def connectors_command(
    cwd: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m connectors ARGV` in a fresh interpreter from `cwd`, with pipes (not a
    terminal) for stdout and stderr, no SOURCES__*/DESTINATION__* variables from this
    process, and dlt's state under `cwd`."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOURCES__", "DESTINATION__", "CONNECTORS_"))
    }
    base.update(PYTHONPATH=str(ROOT), DLT_DATA_DIR=str(cwd / "dlt-data"))
    return subprocess.run(
        [sys.executable, "-m", "connectors", *argv],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "destination", ["postgres", pytest.param("bigquery", marks=pytest.mark.slow)]
)
def test_missing_destination_credentials_name_the_destination_setting_not_the_sources(
    tmp_path: Path, destination: str
) -> None:
    # the trap: a database URL set as the source's credentials
    env = {"SOURCES__CRM__CREDENTIALS": "postgresql://user:password@127.0.0.1:5/db"}

    result = connectors_command(
        tmp_path, "run", "crm", "--replay", "--destination", destination, env=env
    )

    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"error: destination {destination}: missing credentials; set "
        f"`destination.{destination}.credentials` in .dlt/secrets.toml "
        f"(or env DESTINATION__{destination.upper()}__CREDENTIALS)"
    ]
    assert "sources.crm" not in result.stderr and "password" not in result.stderr


def test_a_missing_destination_driver_says_which_extra_to_install(tmp_path: Path) -> None:
    import importlib.util

    assert importlib.util.find_spec("psycopg2") is None, "this test needs psycopg2 absent"
    env = {"DESTINATION__POSTGRES__CREDENTIALS": "postgresql://u:p@127.0.0.1:5/db"}

    result = connectors_command(
        tmp_path, "run", "crm", "--replay", "--destination", "postgres", env=env
    )

    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        "error: destination postgres: its driver `psycopg2` is not installed; "
        'run: pip install "dlt[postgres]"'
    ]


def _users_in(database: Path, dataset: str) -> int:
    with duckdb.connect(str(database)) as db:
        ((rows,),) = db.execute(f"SELECT COUNT(*) FROM {dataset}.users").fetchall()
    return int(rows)


@pytest.mark.slow
def test_a_live_run_says_where_it_loaded_and_ignores_a_plain_dlt_pipeline_named_crm(
    tmp_path: Path,
) -> None:
    """The README's plain-dlt example ran first, in another folder, as pipeline `crm`
    with the same dlt state folder: `connectors run crm` uses its own pipeline
    (`connectors_crm`), loads the full data into ./crm.duckdb and prints that path."""
    other, here = tmp_path / "other", tmp_path / "here"
    other.mkdir(), here.mkdir()
    state = {"DLT_DATA_DIR": str(tmp_path / "dlt-data")}
    plain = (
        "import dlt\n"
        'pipeline = dlt.pipeline("crm", destination="duckdb", dataset_name="crm_data")\n'
        'pipeline.run([{"id": 1, "name": "from the plain script"}], table_name="users")\n'
    )
    ran = subprocess.run(
        [sys.executable, "-c", plain],
        cwd=other,
        env={**os.environ, **state, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]

    with CrmFake() as fake:
        env = {
            **state,
            "SOURCES__CRM__BEARER_TOKEN": TOKEN,
            "SOURCES__CRM__BASE_URL": fake.base_url,
            "SOURCES__CRM__REQUESTS_PER_MINUTE": "60000",
        }
        result = connectors_command(here, "run", "crm", "--resources", "users", env=env)
        custom = tmp_path / "elsewhere.duckdb"
        chosen = connectors_command(
            here, "run", "crm", "--resources", "users", "--database", str(custom), env=env
        )

    assert result.returncode == 0, result.stderr
    database = (here / "crm.duckdb").resolve()
    assert result.stdout.splitlines()[0] == (
        f"crm: loaded into {database}, dataset crm_data (dlt pipeline connectors_crm)"
    )
    assert table(result.stdout) == {"users": len(fake.data["users"])}
    assert _users_in(database, "crm_data") == len(fake.data["users"])
    assert _users_in(other / "crm.duckdb", "crm_data") == 1  # the plain script's, untouched
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.splitlines()[0].startswith(f"crm: loaded into {custom.resolve()}, ")
    assert _users_in(custom, "crm_data") == len(fake.data["users"])


@pytest.mark.slow  # two runs in fresh interpreters
def test_run_resources_are_checked_against_the_code_not_a_stale_catalog(tmp_path: Path) -> None:
    """A catalog that misses `stages` and lists a `ghost` the code does not have: the
    code decides (`stages` loads, `ghost` is refused, naming what the code yields)."""
    raw = yaml.safe_load((ROOT / "catalog.yml").read_text())
    crm = next(entry for entry in raw["connectors"] if entry["name"] == "crm")
    crm["resources"] = [r for r in crm["resources"] if r["name"] != "stages"]
    crm["resources"].append({"name": "ghost", "primary_key": ["id"], "write_disposition": "merge"})
    stale = tmp_path / "catalog.yml"
    stale.write_text(yaml.safe_dump(raw))
    script = (
        "import sys, shared.tooling.catalog\n"
        f"shared.tooling.catalog.CATALOG_PATH = shared.tooling.catalog.Path({str(stale)!r})\n"
        "from connectors.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )

    def run_with_stale_catalog(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, *argv],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )

    added = run_with_stale_catalog("run", "crm", "--replay", "--resources", "stages")
    ghost = run_with_stale_catalog("run", "crm", "--replay", "--resources", "ghost")

    assert added.returncode == 0, added.stderr
    assert table(added.stdout) == {"stages": len(CrmFake().data["stages"])}
    assert ghost.returncode == 2
    code_resources = CATALOG.get("crm").resource_names  # the real catalog agrees with the code
    assert ghost.stderr.splitlines() == [
        f"error: crm has no resource `ghost`; it has: {', '.join(code_resources)}"
    ]


def _printed_block(out: str, heading: str, end: str) -> str:
    return out.split(heading, 1)[1].split(end, 1)[0].strip("\n") + "\n"


@pytest.mark.slow
def test_the_plain_dlt_snippets_show_prints_run_as_printed_against_the_cassettes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Each connector's `plain dlt:` snippet, exactly as `show` prints it, with only the
    secret and base_url set (env: the origin the cassettes were recorded under) and
    `show`'s config.toml pasted, loads every resource offline."""
    snippets_printed, configs, env = {}, [], {"DLT_DATA_DIR": str(tmp_path / "dlt-data")}
    for entry in CATALOG:
        code, out, _ = cli(capsys, "show", entry.name)
        assert code == 0
        snippets_printed[entry.name] = _printed_block(out, "plain dlt:\n", "run it:")
        configs.append(
            _printed_block(out, ".dlt/config.toml (plain dlt):\n", "Dango (a dlt_native source)")
        )
        settings = snippets.source_settings(entry)
        for secret, value in runner.dummy_credentials(entry).items():
            env[settings.env_var(secret)] = value
        env[settings.env_var("base_url")] = entry.replay.base_url  # beats config.toml
        for key, value in entry.replay.kwargs.items():  # offline pacing only
            if key not in settings.config and key not in entry.auth.all_secrets:
                env[settings.env_var(key)] = str(value)
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt/config.toml").write_text("\n".join(configs))
    script = textwrap.dedent(
        """
        import json, sys
        from connectors.cli.runner import replay_scrubber
        from shared.tooling.cassettes import replaying
        from shared.tooling.catalog import load_catalog
        for name, snippet in json.loads(sys.argv[1]).items():
            entry = load_catalog().get(name)
            with replaying(entry.cassette_path(), replay_scrubber(entry)):
                exec(snippet, {"__name__": "__main__"})
        """
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(snippets_printed)],
        cwd=tmp_path,
        env={**base, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr[-4000:]
    for entry in CATALOG:
        assert "pipeline.run(" in snippets_printed[entry.name]
        dataset = f"{entry.name}_data"
        stored = stored_counts(tmp_path / f"{entry.name}.duckdb", [dataset])
        for resource in entry.resources:
            assert stored.get(f"{dataset}.{resource.name}", 0) > 0, (entry.name, resource.name)
    assert stored_counts(tmp_path / "crm.duckdb", ["crm_data"])["crm_data.users"] == len(
        CrmFake().data["users"]
    )


def test_demo_into_a_missing_folder_is_one_error_before_loading_anything(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "dir" / "x.duckdb"

    result = connectors_command(tmp_path, "demo", "--database", str(missing))

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: --database {missing}: the folder {missing.parent} does not exist; create it first"
    ]


def test_bad_json_in_an_env_setting_names_the_setting(tmp_path: Path) -> None:
    env = {"SOURCES__ANALYTICS__API_KEY": "key", "SOURCES__ANALYTICS__RESOURCES": "[events"}

    result = connectors_command(tmp_path, "run", "analytics", env=env)

    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "error: analytics: `sources.analytics.resources` (env SOURCES__ANALYTICS__RESOURCES) "
        "is not a valid list ("
    )
    assert line.endswith("); a list or mapping in an environment variable is JSON")


def test_a_config_value_that_fails_its_type_check_is_not_echoed(tmp_path: Path) -> None:
    """A value pasted into the wrong variable may be a secret: the message names the key
    and the type, never the value (nor a parser's words quoting it)."""
    value = "[S3cr3t-pasted-here-0xFEED"
    env = {"SOURCES__ANALYTICS__API_KEY": "key", "SOURCES__ANALYTICS__RESOURCES": value}

    result = connectors_command(tmp_path, "run", "analytics", env=env)

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "`sources.analytics.resources`" in line
    assert "S3cr3t" not in line and "FEED" not in line and "0x" not in line


def test_a_destination_url_with_a_password_is_never_printed_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql2://loader:Pw-0f-the-db@db.internal:5432/warehouse"
    code, out, err = cli(capsys, "run", "crm", "--replay", "--destination", url)

    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert "Pw-0f-the-db" not in line
    assert line.startswith("error: unknown destination `postgresql2://loader:***@db.internal")


def test_unreadable_destination_credentials_are_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS", "loader:Pw-0f-the-db@db.internal/warehouse"
    )
    code, out, err = cli(capsys, "run", "crm", "--replay", "--destination", "postgres")

    assert (code, out) == (1, "")
    assert err.strip().splitlines()[-1] == (
        "error: destination postgres: `destination.postgres.credentials` cannot be read "
        "(the value is not shown): The expected representation for `PostgresCredentials` "
        "is a standard database connection string with the following format: "
        "`postgresql://username:password@host:port/database`"
    )
    assert "Pw-0f" not in err


def test_a_relative_base_url_blames_the_flag(tmp_path: Path) -> None:
    result = connectors_command(tmp_path, "run", "crm", "--base-url", "api.example.com")

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "error: --base-url `api.example.com` is not an absolute http(s) URL; give scheme "
        "and host, e.g. --base-url https://api.example.com"
    ]


def ignore_sigint() -> None:
    """Start with SIGINT ignored, as a shell's background job (and what it starts) does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "started",
    ["in the foreground", pytest.param("with SIGINT ignored", marks=pytest.mark.slow)],
)
def test_ctrl_c_during_a_paced_run_prints_interrupted_and_exits_130(
    tmp_path: Path, started: str
) -> None:
    with CrmFake() as fake:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "CONNECTORS_"))
        }
        env.update(
            PYTHONPATH=str(ROOT),
            DLT_DATA_DIR=str(tmp_path / "dlt-data"),
            SOURCES__CRM__BEARER_TOKEN=TOKEN,
            SOURCES__CRM__BASE_URL=fake.base_url,
            SOURCES__CRM__REQUESTS_PER_MINUTE="1",  # the second page waits a minute
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "connectors", "run", "crm", "--resources", "users"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=ignore_sigint if started == "with SIGINT ignored" else None,
        )
        # generous bounds, not timings: a cold interpreter on a busy machine is slow to
        # start and to shut down; the assertions are on what it printed, sent and exited with
        deadline = time.monotonic() + SECONDS
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fake.requests, "the run sent no request"
        time.sleep(0.5)  # now in the pacing wait before page 2
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            raise

    assert process.returncode == 130, err
    assert err.splitlines()[-1] == "interrupted"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert out == ""
    assert len(fake.requests) == 1


def test_show_gives_the_cursor_as_api_field_and_loaded_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "show", "crm")

    assert code == 0
    assert re.search(r"^  parties\s+id\s+merge\s+updatedAt -> updated_at\s+-$", out, re.M)
    _, tracker, _ = cli(capsys, "show", "project_tracker")
    assert re.search(r"^  epics\s+id\s+merge\s+updated_at\s+-$", tracker, re.M)


@pytest.mark.slow  # starts the command twice (~6 s)
def test_list_shows_every_auth_mode_and_version_names_ours_and_dlts(tmp_path: Path) -> None:
    import dlt

    listed = connectors_command(tmp_path, "list")
    version = connectors_command(tmp_path, "--version")

    assert listed.returncode == 0
    (analytics,) = [line for line in listed.stdout.splitlines() if line.startswith("analytics ")]
    assert " api_key or oauth2_client_credentials " in analytics
    assert version.returncode == 0
    assert re.fullmatch(rf"connectors \S+ \(dlt {re.escape(dlt.__version__)}\)\n", version.stdout)


def test_progress_is_silent_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    result = connectors_command(tmp_path, "run", "crm", "--replay", "--resources", "users")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"crm: loading into {(tmp_path / 'crm_replay.duckdb').resolve()}, dataset "
        "crm_replay_data (dlt pipeline connectors_crm_replay), replaying "
        "cassettes/crm/full_sync.yaml"
    ]
    assert table(result.stdout) == {"users": len(CrmFake().data["users"])}


@pytest.mark.parametrize(
    "forced", [["--progress"], pytest.param([], marks=pytest.mark.slow)], ids=["flag", "env"]
)
def test_forced_progress_shows_requests_rows_and_pacing_waits(
    tmp_path: Path, forced: list[str]
) -> None:
    with CrmFake() as fake:
        env = {
            "SOURCES__CRM__BEARER_TOKEN": TOKEN,
            "SOURCES__CRM__BASE_URL": fake.base_url,
            "SOURCES__CRM__REQUESTS_PER_MINUTE": "50",  # 1.2 s between the two pages
        }
        if not forced:
            env["CONNECTORS_PROGRESS"] = "1"
        result = connectors_command(
            tmp_path, "run", "crm", "--resources", "users", *forced, env=env
        )

    assert result.returncode == 0, result.stderr
    users = len(fake.data["users"])
    assert len(fake.requests) == 2 and users > 100  # two pages, so one pacing wait
    lines = result.stderr.splitlines()
    assert any(
        re.fullmatch(r"crm: waiting 1\.\d s for the rate limit \(1 requests so far\)", line)
        for line in lines
    ), lines
    assert re.search(
        rf"^crm: extract: 2 requests, 1 pacing wait \(1\.\d s\); rows: users {users}$",
        result.stderr,
        re.M,
    ), lines
    assert "crm: load ..." in lines
    assert TOKEN not in result.stderr and "?" not in "".join(lines[1:])
    assert table(result.stdout) == {"users": users}


@pytest.mark.parametrize("resources", [[], ["--resources", "users"]])
@pytest.mark.slow  # runs in a process of its own per case (~6 s each)
def test_run_builds_its_source_once(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    resources: list[str],
) -> None:
    """Building a source opens its sessions (and a shared pacing backend's connection):
    `run` did it three times."""
    import connectors.crm

    built: list[dict[str, Any]] = []
    original = connectors.crm.crm_source

    @functools.wraps(original)  # the signature the CLI reads (a replay passes base_url)
    def counting(**kwargs: Any) -> Any:
        built.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(connectors.crm, "crm_source", counting)
    monkeypatch.chdir(tmp_path)

    code, _, err = cli(capsys, "run", "crm", "--replay", *resources)

    assert code == 0, err
    assert len(built) == 1


def test_an_unknown_resource_is_named_before_missing_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SOURCES__CRM__BEARER_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)

    code, out, err = cli(capsys, "run", "crm", "--resources", "nope")

    assert (code, out) == (2, "")
    assert err.strip().splitlines()[-1].startswith("error: crm has no resource `nope`; it has: ")


def test_a_run_lists_the_tables_that_got_no_new_rows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The second incremental run re-reads only the party at its cursor: every table of
    the first run is listed again, those with nothing new as 0, rather than left out (a
    user could not tell "nothing new" from "not synced")."""
    monkeypatch.chdir(tmp_path)
    with CrmFake() as fake:
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("SOURCES__CRM__BASE_URL", fake.base_url)
        monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")
        args = ("run", "crm", "--resources", "parties,stages", "--dataset", "crm_zero")

        first = cli(capsys, *args)
        # the party the next run re-reads (the cursor's) now has no e-mail address
        latest = max(fake.data["parties"], key=lambda party: (party["updatedAt"], party["id"]))
        latest["emailAddresses"] = []
        second = cli(capsys, *args)

    assert first[0] == second[0] == 0, second[2]
    first_rows, second_rows = table(first[1]), table(second[1])
    assert first_rows["parties"] == len(fake.data["parties"])
    assert set(second_rows) == set(first_rows)
    assert second_rows["stages"] == len(fake.data["stages"])
    assert second_rows["parties__email_addresses"] == 0 < first_rows["parties__email_addresses"]


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_run_names_the_columns_that_held_only_nulls_in_one_line_not_dlts_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recorded = CrmFake()
    reaching_dlts_handlers = Collected()
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.addHandler(reaching_dlts_handlers)
    try:
        code, out, err = cli(capsys, "run", "crm", "--replay", "--resources", "employees")
    finally:
        dlt_logger.removeHandler(reaching_dlts_handlers)

    assert code == 0, err
    employees = [person for people in recorded.employees.values() for person in people]
    assert table(out)["employees"] == len(employees)
    assert not [m for m in reaching_dlts_handlers.messages if "did not receive any data" in m]
    (line,) = [line for line in err.splitlines() if "held only nulls" in line]
    assert line.startswith("crm: ") and " in this sync and are not in the tables yet " in line
    listed = line.split("(each appears with its first value): ", 1)[1]
    held = dict(part.split(": ", 1) for part in listed.split("; "))
    assert "employees" in held
    named = held["employees"].split(", ")
    # what the fake serves as null for every employee, and what the table lacks
    assert "organisation" in named
    assert all(person["organisation"] is None for person in employees)
    loaded = duckdb.connect(str(tmp_path / "crm_replay.duckdb"), read_only=True)
    in_table = {
        row[0]
        for row in loaded.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'employees'"
        ).fetchall()
    }
    assert {"id", "first_name"} <= in_table
    assert not set(named) & in_table
