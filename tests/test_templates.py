"""`make new-connector`: a connector made from the template, or copied from any catalog
connector, passes its own tests, the catalog check and ruff with no edits; a bad or
taken name is refused and writes nothing.

All of it happens in ONE temporary copy of the repository: every connector is generated
there first, then ONE pytest subprocess runs their tests. The generated names are ones
the repository does not use yet (`my_shop`, or `my_shop2` after a user's own
`make new-connector NAME=my_shop`), so the README's example never breaks this suite.
The template's tests run in full; a copy's replay tests run (its loopback and fast-path
tests exercise the same renamed fake and are left to `make test-connector`, to keep the
suite's time down). Set `NEW_CONNECTOR_TESTS=all` to run the copies' loopback and
fast-path tests too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from connectors.cli.connector_names import SANDBOX, TEST_SUFFIXES, ScaffoldError, check_name
from connectors.cli.renamer import camel, title_of
from connectors.cli.scaffold import create_connector, entry_yaml
from shared.tooling.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()


def free_name(wanted: str, root: Path = ROOT) -> str:
    """`wanted`, or `wanted2`, `wanted3`, ...: the first name `make new-connector` would
    accept in the tree at `root` (a user may already have made `my_shop`)."""
    catalog_names = load_catalog(root / "catalog.yml").names
    for number in range(1, 100):
        name = wanted if number == 1 else f"{wanted}{number}"
        try:
            check_name(name, root, catalog_names)
        except ScaffoldError:
            continue
        return name
    raise AssertionError(f"no free name like {wanted}")


TEMPLATE_COPY = free_name("my_shop")
#: a real vendor's name that starts with `test`: its `testrail_source` and `TestrailFake`
#: must not be collected by pytest as a test function or class
TEST_PREFIXED = free_name("testrail")
#: what the copy leaves out: environments, caches, local databases
IGNORED = shutil.ignore_patterns(
    # every virtualenv (`make test-lowest` makes .venv-lowest), caches, build output
    # (`make test-wheel` makes a virtualenv under build/)
    ".git",
    ".venv*",
    "build",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "*.egg-info",
    "*.duckdb",
    "results",
)


#: pytest in a copy of the repository, as `run` starts it (no cache written into the copy)
PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider")


def clone_name(original: str) -> str:
    return f"copy_of_{original}"


def run(copy: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """`python <command>` inside the copy, importing the copy's packages."""
    env = {**os.environ, "PYTHONPATH": str(copy), "RUNTIME__DLTHUB_TELEMETRY": "false"}
    return subprocess.run(
        [sys.executable, *command], cwd=copy, env=env, capture_output=True, text=True
    )


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with a connector from the template and a copy of every
    catalog connector."""
    copy = tmp_path_factory.mktemp("new-connector") / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    for name in (TEMPLATE_COPY, TEST_PREFIXED):
        created = run(copy, "-m", "connectors", "new", name)  # as `make new-connector`
        assert created.returncode == 0, created.stderr
    for entry in CATALOG:  # the same function, in process: one interpreter start fewer each
        create_connector(clone_name(entry.name), entry.name, root=copy)
    return copy


def generated_python(copy: Path, name: str) -> list[Path]:
    files = [*(copy / "connectors" / name).rglob("*.py"), copy / SANDBOX / f"{name}.py"]
    files += [copy / "tests/connectors" / f"test_{name}{suffix}.py" for suffix in TEST_SUFFIXES]
    return [path for path in files if path.exists()]


@pytest.mark.slow
def test_generated_connectors_pass_their_tests_and_the_catalog_check(repo_copy: Path) -> None:
    run_all = os.environ.get("NEW_CONNECTOR_TESTS") == "all"
    names = [TEMPLATE_COPY, TEST_PREFIXED, *(clone_name(entry.name) for entry in CATALOG)]
    test_files = [
        path.relative_to(repo_copy).as_posix()
        for name in names
        for path in generated_python(repo_copy, name)
        if path.name.startswith("test_")
        and (name in (TEMPLATE_COPY, TEST_PREFIXED) or run_all or path.stem == f"test_{name}")
    ]
    report = repo_copy / "report.xml"

    result = run(repo_copy, *PYTEST, f"--junitxml={report}", "tests/test_catalog.py", *test_files)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    junit = report.read_text(encoding="utf-8")
    for name in names:
        # every generated connector ran its own tests and was checked against the catalog
        assert f'classname="tests.connectors.test_{name}"' in junit, name
        assert f"test_source_yields_exactly_the_listed_resources_keys_and_dispositions[{name}]" in (
            junit
        ), name
    assert f'classname="tests.connectors.test_{TEMPLATE_COPY}"' in junit
    # nothing but the template's tests ran for the `test`-prefixed name: not its source
    # function or its fake's class, which pytest's default `test*` pattern would collect
    assert f'name="{TEST_PREFIXED}_source"' not in junit
    assert f"cannot collect test class '{camel(TEST_PREFIXED)}Fake'" not in result.stdout
    assert "test_a_rejected_credential_fails_naming_the_secret_to_set" in junit


#: the repository's tests about the whole catalog, the READMEs, the layout, the shipped
#: text and each connector's sandbox: the ones a new connector failed until its catalog
#: entry and the READMEs were edited by hand
WHOLE_REPOSITORY_TESTS = (
    "tests/test_catalog.py",
    "tests/test_readme.py",
    "tests/test_layout.py",
    "tests/test_self_contained_text.py",
    "tests/test_named_apis.py",
    "tests/test_cli_serve.py",
    "tests/dango/test_entry.py",
)


def installed_copy(copy: Path) -> Path:
    """A Python for `copy` that imports it the way an editable install imports its
    checkout, without PYTHONPATH: a virtualenv whose site-packages puts the copy first,
    then this environment's packages (dlt, pytest, ...; this checkout's own editable
    finder comes after the copy), with the `connectors` script pip would write."""
    import site

    venv = copy / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site_packages,) = venv.glob("lib/python*/site-packages")
    ours = "".join(f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages())
    (site_packages / "checkout.pth").write_text(f"{copy}\n{ours}", encoding="utf-8")
    python = venv / "bin" / "python"
    script = venv / "bin" / "connectors"
    script.write_text(
        f"#!{python}\nimport sys\nfrom connectors.__main__ import main\nsys.exit(main())\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return python


@pytest.mark.slow
def test_after_new_the_repositorys_catalog_readme_and_layout_tests_pass_unedited(
    tmp_path: Path,
) -> None:
    """`connectors new petstore` in a checkout, then the repository's tests that read the
    whole catalog pass with no edit by hand: the entry is in catalog.yml, README.md's
    table and the connector's README are regenerated."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    python = installed_copy(copy)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"

    def in_copy(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), *command], cwd=copy, env=env, capture_output=True, text=True
        )

    name = free_name("petstore", copy)  # a user may already have made one
    created = in_copy("-m", "connectors", "new", name)
    report = copy / "report.xml"
    tested = in_copy(*PYTEST, f"--junitxml={report}", *WHOLE_REPOSITORY_TESTS)

    assert created.returncode == 0, created.stderr[-3000:]
    written = [line.strip() for line in created.stdout.splitlines()[1:] if line.startswith("  ")]
    assert {"catalog.yml", "README.md", f"connectors/{name}/README.md"} <= set(written)
    assert {f"cassettes/{name}/full_sync.yaml", f"cassettes/{name}/incremental.yaml"} <= set(
        written
    )
    assert load_catalog(copy / "catalog.yml").names == [*CATALOG.names, name]
    row = f"| `{name}` | **{title_of(name)}**:"
    assert row in (copy / "README.md").read_text(encoding="utf-8")
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    junit = report.read_text(encoding="utf-8")
    for ran in (
        f"test_each_connector_readme_is_the_one_generated_from_the_code_and_the_catalog[{name}]",
        f"test_source_yields_exactly_the_listed_resources_keys_and_dispositions[{name}]",
        "test_connector_table_is_the_one_generated_from_the_catalog",
        "test_every_package_in_connectors_but_the_tooling_is_a_catalog_connector",
    ):
        assert ran in junit, ran
    assert 'failures="0"' in junit and 'errors="0"' in junit


def _violations(copy: Path, files: list[Path]) -> Counter[str]:
    result = run(
        copy, "-m", "ruff", "check", "--output-format", "json", *(str(path) for path in files)
    )
    return Counter(violation["code"] for violation in json.loads(result.stdout or "[]"))


@pytest.mark.slow
def test_generated_connectors_are_ruff_clean(repo_copy: Path) -> None:
    template_files = generated_python(repo_copy, TEMPLATE_COPY)
    formatted = run(repo_copy, "-m", "ruff", "format", "--check", *map(str, template_files))

    assert _violations(repo_copy, template_files) == Counter()
    assert formatted.returncode == 0, formatted.stdout
    for entry in CATALOG:
        files = generated_python(repo_copy, clone_name(entry.name))
        formatted = run(repo_copy, "-m", "ruff", "format", "--check", *map(str, files))
        # a copy adds no finding to what its original already has
        original = _violations(repo_copy, generated_python(repo_copy, entry.name))
        assert _violations(repo_copy, files) - original == Counter(), entry.name
        assert formatted.returncode == 0, formatted.stdout


@pytest.mark.slow
def test_template_connector_has_fake_cassettes_tests_and_catalog_entry(repo_copy: Path) -> None:
    name = TEMPLATE_COPY
    catalog = load_catalog(repo_copy / "catalog.yml")
    entry = catalog.get(name)
    module = (repo_copy / "connectors" / name / "__init__.py").read_text()

    assert f'@dlt.source(name="{name}")' in module
    assert f"def {name}_source(" in module
    assert "my_api" not in module
    fake = (repo_copy / SANDBOX / f"{name}.py").read_text()
    assert f"class {camel(name)}Fake(FakeServer)" in fake
    assert sorted(p.name for p in (repo_copy / "cassettes" / name).iterdir()) == [
        "full_sync.yaml",
        "incremental.yaml",
    ]
    assert (entry.module, entry.source_function, entry.base_url, entry.replay.base_url) == (
        f"connectors.{name}",
        f"{name}_source",
        None,  # required until the connector speaks a vendor's API as published
        "https://api.example.com",
    )
    assert [(r.name, r.write_disposition, r.incremental) for r in entry.resources] == [
        ("users", "replace", None),
        ("orders", "merge", "updated_at"),
    ]
    # appended after the connectors that were there, which are unchanged
    assert catalog.names[: len(CATALOG)] == CATALOG.names
    assert catalog.connectors[: len(CATALOG)] == CATALOG.connectors


@pytest.mark.slow
@pytest.mark.parametrize("original", CATALOG.names)
def test_copy_renames_code_and_keeps_cassettes_byte_for_byte(
    repo_copy: Path, original: str
) -> None:
    name = clone_name(original)
    entry = load_catalog(repo_copy / "catalog.yml").get(name)
    code = "\n".join(p.read_text() for p in generated_python(repo_copy, name))

    assert (entry.module, entry.source_function) == (f"connectors.{name}", f"{name}_source")
    assert entry.resources == CATALOG.get(original).resources
    assert entry.base_url == CATALOG.get(original).base_url
    assert f"from connectors.{name} import {name}_source" in code
    assert not re.search(rf"connectors\.(?:sandbox\.)?{original}\b", code)
    assert tree(repo_copy / "cassettes" / name) == tree(ROOT / "cassettes" / original)


@pytest.mark.parametrize(
    ("name", "original", "message"),
    [
        ("crm", None, "connector `crm` already exists in catalog.yml"),
        ("MyShop", None, "invalid connector name `MyShop`"),
        ("my-shop", None, "invalid connector name `my-shop`"),
        ("2shop", None, "invalid connector name `2shop`"),
        ("class", None, "invalid connector name `class`"),
        ("json", None, "name `json` is refused: it is the name of a Python standard-library"),
        ("dlt", None, "name `dlt` is refused: it is the name of a module of the installed library"),
        ("requests", None, "would shadow `import requests`; choose another, e.g. requests_api"),
        ("shared", None, "name `shared` is refused: it is the name of this repository's"),
        ("cli", None, "name `cli` is refused: connectors/cli/ is the catalog's tooling"),
        ("sandbox", None, "name `sandbox` is refused: connectors/sandbox/ is the catalog's"),
        ("base", None, "name `base` is refused: connectors/sandbox/base.py is what every"),
        ("fresh", "nope", "unknown connector `nope` to copy; the catalog has: crm"),
    ],
)
@pytest.mark.slow
def test_invalid_taken_or_unknown_names_are_refused_and_nothing_is_written(
    repo_copy: Path, name: str, original: str | None, message: str
) -> None:
    before = tree(repo_copy)

    with pytest.raises(ScaffoldError) as error:
        create_connector(name, original, root=repo_copy)

    assert message in str(error.value)
    assert tree(repo_copy) == before


@pytest.mark.slow
def test_a_name_a_user_already_took_is_skipped_for_the_next_free_one(repo_copy: Path) -> None:
    """After `make new-connector NAME=my_shop` (the README's example) this suite picks
    another name instead of failing on "connector `my_shop` already exists"."""
    assert free_name(TEMPLATE_COPY, repo_copy) == f"{TEMPLATE_COPY}2"
    with pytest.raises(ScaffoldError, match="already exists"):
        create_connector(TEMPLATE_COPY, root=repo_copy)


@pytest.mark.slow
def test_cli_refuses_a_shadowing_name_in_one_line_before_writing_anything(repo_copy: Path) -> None:
    before = tree(repo_copy)

    result = run(repo_copy, "-m", "connectors", "new", "json")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: connector name `json` is refused: it is the name of a Python standard-library "
        "module (`json`), and the connector's modules (connectors/json/, "
        "connectors/sandbox/json.py) "
        "would shadow `import json`; choose another, e.g. json_api"
    ]
    assert tree(repo_copy) == before


@pytest.mark.slow
def test_cli_refuses_a_taken_name_in_one_line_with_a_usage_exit_code(repo_copy: Path) -> None:
    before = tree(repo_copy)

    result = run(repo_copy, "-m", "connectors", "new", TEMPLATE_COPY)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: connector `{TEMPLATE_COPY}` already exists in catalog.yml"
    ]
    assert tree(repo_copy) == before


def test_make_test_connector_runs_every_test_file_of_the_connector_and_no_other(
    tmp_path: Path,
) -> None:
    """`make test-connector NAME=crm` runs test_crm.py, test_crm_loopback.py and
    test_crm_fast_path.py (when they exist), never those of a connector named crm_copy."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").touch()  # what `install` depends on
    tests = tmp_path / "tests/connectors"
    tests.mkdir(parents=True)
    for stem in ("crm", "crm_loopback", "crm_fast_path", "crm_copy", "crm_copy_loopback", "api"):
        (tests / f"test_{stem}.py").touch()
    (tests / "test_api_loopback.py").touch()

    def pytest_arguments(name: str) -> list[str]:
        dry_run = subprocess.run(
            ["make", "-n", "-C", str(tmp_path), "test-connector", f"NAME={name}"],
            capture_output=True,
            text=True,
            check=True,
        )
        (line,) = [line for line in dry_run.stdout.splitlines() if "-m pytest" in line]
        return line.split("-m pytest -q ", 1)[1].split()

    assert pytest_arguments("crm") == [
        "tests/connectors/test_crm.py",
        "tests/connectors/test_crm_loopback.py",
        "tests/connectors/test_crm_fast_path.py",
    ]
    assert pytest_arguments("crm_copy") == [
        "tests/connectors/test_crm_copy.py",
        "tests/connectors/test_crm_copy_loopback.py",
    ]
    assert pytest_arguments("api") == [
        "tests/connectors/test_api.py",
        "tests/connectors/test_api_loopback.py",
    ]


def test_the_repositorys_connectors_test_files_all_have_a_known_suffix() -> None:
    """Every tests/connectors/test_<name>*.py is one `make test-connector NAME=<name>`
    runs (a new suffix must be added to TEST_SUFFIXES and the Makefile)."""
    known = {f"test_{entry.name}{suffix}.py" for entry in CATALOG for suffix in TEST_SUFFIXES}
    found = {path.name for path in (ROOT / "tests/connectors").glob("test_*.py")}

    assert found <= known


@pytest.mark.slow
def test_a_copy_renames_its_fast_path_tests_with_the_rest(repo_copy: Path) -> None:
    name = clone_name("crm")
    fast_path = repo_copy / "tests/connectors" / f"test_{name}_fast_path.py"

    assert fast_path in generated_python(repo_copy, name)
    code = fast_path.read_text()
    assert f"from connectors.{name} import {name}_source" in code
    assert f"from connectors.sandbox.{name} import RECORDING" in code
    assert not re.search(r"connectors\.(?:sandbox\.)?crm\b|\bcrm_source\b", code)


def test_make_new_connector_runs_the_cli_with_name_from_auth_and_paging() -> None:
    def recipe(*variables: str) -> list[str]:
        dry_run = subprocess.run(
            ["make", "-n", "-C", str(ROOT), "new-connector", *variables],
            capture_output=True,
            text=True,
            check=True,
        )
        return [line for line in dry_run.stdout.splitlines() if "-m connectors new" in line]

    def arguments(*variables: str) -> list[list[str]]:
        return [line.split("python ", 1)[1].split() for line in recipe(*variables)]

    assert arguments("NAME=my_shop", "FROM=crm") == [
        ["-m", "connectors", "new", "my_shop", "--from", "crm"]
    ]
    assert arguments("NAME=my_shop") == [["-m", "connectors", "new", "my_shop"]]
    assert arguments("NAME=my_shop", "AUTH=basic", "PAGING=offset") == [
        ["-m", "connectors", "new", "my_shop", "--auth", "basic", "--paging", "offset"]
    ]


def _make_dry_run(tmp_path: Path, target: str) -> list[str]:
    """The commands `make -n TARGET` would run from a fresh clone (no .venv yet)."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").touch()
    dry_run = subprocess.run(
        ["make", "-n", "-C", str(tmp_path), target], capture_output=True, text=True, check=True
    )
    return dry_run.stdout.splitlines()


def test_make_demo_installs_only_the_runtime(tmp_path: Path) -> None:
    installs = [line for line in _make_dry_run(tmp_path, "demo") if "pip install" in line]

    assert installs[-1].endswith("pip install -q -e .")
    assert not any("[dev]" in line or "mypy" in line or "ruff" in line for line in installs)


def test_make_bench_writes_an_untracked_report_unless_published(tmp_path: Path) -> None:
    bench = [line for line in _make_dry_run(tmp_path, "bench") if "-m bench" in line]
    publish = [line for line in _make_dry_run(tmp_path, "bench-publish") if "-m bench" in line]
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "bench/results/BENCHMARKS.md"]
    )

    assert [line.split("-m bench", 1)[1] for line in bench] == [
        " --output bench/results/BENCHMARKS.md"
    ]
    assert [line.split("-m bench", 1)[1] for line in publish] == [" --output BENCHMARKS.md"]
    assert tracked.returncode == 0  # git ignores the default report
    help_line = next(
        line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("bench:")
    )
    assert "~13 min on 2 cores" in help_line


def test_a_description_hyphenated_at_the_wrap_survives_the_catalog_round_trip() -> None:
    """`catalog.yml` folds descriptions (`>-`), which joins lines with a space: a line
    broken after `Link-` would come back as `Link- header`."""
    description = "a" * 78 + " Link-header paging"
    entry = {"name": "x", "description": description}

    assert yaml.safe_load("connectors:\n" + entry_yaml(entry))["connectors"] == [entry]


def test_copying_an_installed_connector_outside_a_checkout_says_to_use_one(tmp_path: Path) -> None:
    """In a folder of one's own (as after `pip install <wheel>`), the catalog's connectors
    are installed but their tests and cassettes are not: --from names what it needs."""
    with pytest.raises(ScaffoldError) as error:
        create_connector("my_crm", "crm", root=tmp_path)

    assert str(error.value) == (
        f"--from copies `crm`'s package, fake, tests and cassettes from a checkout of the "
        f"catalog, and {tmp_path} is not one: run it in a clone of the repository, or "
        f"`connectors new my_crm` here for the template"
    )
    assert list(tmp_path.iterdir()) == []
