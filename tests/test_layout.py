"""The repository's layout: docs/architecture.md's Layout tree matches the folders, connectors
import nothing from the tooling, and the entry points and public imports a user relies on
still work after the tooling moved into `connectors/cli/` and `shared/tooling/`."""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from connectors.cli.connector_names import TOOLING_PACKAGES
from connectors.cli.runner import dummy_credentials
from shared.tooling.catalog import ConnectorEntry, load_catalog, parse

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()
TEMPLATE = ROOT / "templates" / "my_api"
#: a file or folder a description names: `settings.py`, `catalog.schema.json`, `fakes/`
NAMED = re.compile(
    r"(?<![\w./@-])[\w-]+(?:\.[\w-]+)*\.(?:py|json|toml|yml|md)\b|(?<![\w./-])[\w-]+/"
)
#: the modules of the connectors' (and the template's) imports, as they were before the
#: layout change: what a connector copied out of this repository, or written against it,
#: imports. Each must still import from `shared/`'s top level.
CONNECTOR_IMPORTS_BEFORE_THE_MOVE = {
    "shared.auth": [
        "api_key_header",
        "api_key_query",
        "bearer_token",
        "oauth2_client_credentials",
        "require_secret",
    ],
    "shared.builder": ["DEFAULT_FILE_FORMAT", "SourceHttp", "build_resources"],
    "shared.cursors": ["guard_cursors"],
    "shared.errors": ["ConfigurationError"],
    "shared.fan_in": ["build_resources"],
    "shared.keyset": ["KeysetPaginator"],
    "shared.paginators": [
        "HeaderLinkPaginator",
        "JSONLinkPaginator",
        "JSONResponseCursorPaginator",
        "ShortPageOffsetPaginator",
        "SinglePagePaginator",
    ],
    "shared.rate_limit": ["RateLimit"],
    "shared.responses": ["error_hook"],
    "shared.retries": ["RetryPolicy"],
    "shared.session": ["DEFAULT_REQUEST_DEADLINE"],
    "shared.stop_paging": ["stop_paging_on"],
    "shared.timestamps": ["epoch_millis", "iso_utc_seconds", "to_datetime"],
}
#: what the README, `connectors show` and the Dango entry tell a user to import or run
USER_IMPORTS = {
    "connectors.cli": ["main"],
    "connectors.__main__": ["main"],
    "shared.loading": ["run_source"],
    "orchestration": ["build_source", "catalog_entry"],
    **{entry.module: [entry.source_function] for entry in CATALOG},
}
#: modules a connector must not import: the tooling, the sandbox, and the tests
TOOLING = ("connectors.cli", "connectors.sandbox", "shared.tooling", "tests")


@dataclass
class Entry:
    """One line of the Layout tree: a path, what it holds, its children."""

    path: str
    description: str
    children: list[Entry] = field(default_factory=list)

    @property
    def named(self) -> list[str]:
        """The files and folders the description names (inside this entry's folder)."""
        return NAMED.findall(self.description)


def layout() -> list[Entry]:
    """The Layout tree (docs/architecture.md): top-level entries, each with its children."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    top: list[Entry] = []
    last: Entry | None = None
    for line in block.splitlines():
        child = re.match(r"^[├└]── (\S+) {2,}(.+)$", line)
        if child:
            assert top, line
            last = Entry(f"{top[-1].path}{child[1]}", child[2])
            top[-1].children.append(last)
        elif line.startswith(" "):  # the description goes on
            assert last is not None, line
            last.description += " " + line.strip()
        else:
            entry = re.match(r"^(\S+) {2,}(.+)$", line)
            assert entry, f"not `path  what it holds`: {line!r}"
            last = Entry(entry[1], entry[2])
            top.append(last)
    return top


def expand(path: str) -> list[Path]:
    """The paths a layout entry stands for: `connectors/<name>/` is every connector's."""
    if "<name>" in path:
        return [ROOT / path.replace("<name>", entry.name) for entry in CATALOG]
    return [ROOT / path]


def entries() -> list[Entry]:
    return [entry for top in layout() for entry in (top, *top.children)]


def folders(path: Path) -> set[str]:
    return {p.name for p in path.iterdir() if p.is_dir() and p.name != "__pycache__"}


def ignored_by_git(name: str) -> bool:
    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#") and "/" not in line.strip().rstrip("/")
    ]
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


@pytest.mark.parametrize("entry", entries(), ids=lambda entry: entry.path)
def test_every_path_the_readme_layout_names_exists(entry: Entry) -> None:
    for path in expand(entry.path):
        assert path.is_dir() if entry.path.endswith("/") else path.is_file(), path
        for named in entry.named:
            assert (path / named).exists(), f"README Layout: {entry.path} names {named}"


def test_the_readme_layout_lists_every_top_level_folder() -> None:
    listed = {entry.path.rstrip("/") for entry in layout()}
    on_disk = {
        name for name in folders(ROOT) if not name.startswith(".") and not ignored_by_git(name)
    }

    assert on_disk <= listed
    assert {"connectors", "shared", "orchestration", "tests", "templates"} <= on_disk


def test_every_package_in_connectors_but_the_tooling_is_a_catalog_connector() -> None:
    children = {entry.path for entry in layout()[0].children}

    assert layout()[0].path == "connectors/"
    assert children == {"connectors/<name>/", *(f"connectors/{t}/" for t in TOOLING_PACKAGES)}
    # a declarative connector's folder holds its spec (`specs:` in catalog.yml) and fake
    declared = {Path(spec).parent.name for spec in CATALOG.specs}
    assert folders(ROOT / "connectors") == {*CATALOG.names, *TOOLING_PACKAGES, *declared}
    assert folders(ROOT / "cassettes") == set(CATALOG.names)


def test_the_layout_names_every_module_of_the_cli_and_the_tooling_and_tests_mirror_them() -> None:
    described = {entry.path: set(entry.named) for entry in entries()}

    for folder in ("connectors/cli/", "shared/tooling/"):
        files = {p.name for p in (ROOT / folder).iterdir() if p.is_file()} - {"__init__.py"}
        assert described[folder] == files, folder
    sandbox = {p.stem for p in (ROOT / "connectors/sandbox").glob("*.py")} - {"__init__"}
    assert described["connectors/sandbox/"] == {"base.py"}
    assert sandbox == {"base", *CATALOG.names}  # one fake per connector, and base.py
    (shared,) = [entry for entry in layout() if entry.path == "shared/"]
    assert {child.path for child in shared.children} == {
        f"shared/{name}/" for name in folders(ROOT / "shared")
    }
    for name in folders(ROOT / "shared"):  # tests mirror the layout
        assert (ROOT / "tests" / "shared" / name / "__init__.py").is_file(), name


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def connector_folders() -> list[Path]:
    return [
        *(ROOT / "connectors" / entry.name for entry in CATALOG),
        TEMPLATE / "connectors" / "my_api",
    ]


@pytest.mark.parametrize("folder", connector_folders(), ids=lambda folder: folder.name)
def test_a_connector_imports_nothing_from_the_tooling_or_the_tests(folder: Path) -> None:
    imports = {
        (path.relative_to(ROOT).as_posix(), module)
        for path in folder.rglob("*.py")
        for module in imported_modules(path)
    }

    assert imports, folder
    assert {(path, m) for path, m in imports if m.startswith(TOOLING)} == set()


def test_the_installed_packages_import_nothing_from_the_tests() -> None:
    """A wheel carries connectors/ (the sandbox included), shared/ and orchestration/,
    never tests/: none of them may import it, not even inside a function."""
    imports = {
        (path.relative_to(ROOT).as_posix(), module)
        for top in ("connectors", "shared", "orchestration")
        for path in (ROOT / top).rglob("*.py")
        for module in imported_modules(path)
    }

    assert {(path, m) for path, m in imports if m == "tests" or m.startswith("tests.")} == set()


def test_the_http_layer_imports_nothing_from_the_tooling_or_the_connectors() -> None:
    imports = {
        (path.relative_to(ROOT).as_posix(), module)
        for path in (ROOT / "shared").rglob("*.py")
        if "tooling" not in path.parts
        for module in imported_modules(path)
    }

    assert {(p, m) for p, m in imports if m.startswith((*TOOLING, "connectors"))} == set()


def python(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -c script` in a fresh interpreter, importing the installed packages (no
    PYTHONPATH), from `cwd` (not the checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


#: run in the child: make the tooling unimportable, then build every given source
BUILD_WITHOUT_TOOLING = """
import importlib, json, sys
for blocked in ("connectors.cli", "connectors.sandbox", "shared.tooling", "tests"):
    sys.modules[blocked] = None  # any import of it now raises ImportError
import connectors
connectors.__path__.append(sys.argv[2])  # where the template's connector lives
built = {}
for module, function, kwargs in json.loads(sys.argv[1]):
    source = getattr(importlib.import_module(module), function)(**kwargs)
    built[module] = sorted(source.resources)
print(json.dumps(built))
"""


def replay_arguments(entry: ConnectorEntry) -> dict[str, object]:
    return {**dummy_credentials(entry), "base_url": entry.replay.base_url, **entry.replay.kwargs}


def test_every_connector_and_the_template_build_their_source_with_the_tooling_unimportable(
    tmp_path: Path,
) -> None:
    """A connector folder copied out of the repository (as `make new-connector` copies the
    template) needs `shared/`'s top level and nothing else."""
    raw = yaml.safe_load((TEMPLATE / "catalog-entry.yml").read_text(encoding="utf-8"))
    template = parse({"connectors": [raw]}).get("my_api")
    wanted = [*CATALOG, template]
    sources = [(e.module, e.source_function, replay_arguments(e)) for e in wanted]

    result = python(
        BUILD_WITHOUT_TOOLING, json.dumps(sources), str(TEMPLATE / "connectors"), cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(result.stdout)
    assert built == {e.module: sorted(e.resource_names) for e in wanted}


IMPORT_EACH = """
import importlib, json, sys
missing = []
for module, names in json.loads(sys.argv[1]).items():
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        missing.append(f"{module}: {exc}")
        continue
    missing += [f"{module}.{name}" for name in names if not hasattr(imported, name)]
print(json.dumps(missing))
"""


@pytest.mark.parametrize(
    "imports",
    [CONNECTOR_IMPORTS_BEFORE_THE_MOVE, USER_IMPORTS],
    ids=["connectors-imports", "user-imports"],
)
def test_the_public_imports_from_before_the_move_still_work(
    tmp_path: Path, imports: dict[str, list[str]]
) -> None:
    result = python(IMPORT_EACH, json.dumps(imports), cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == []


VERSION = re.compile(r"connectors \S+ \(dlt \S+\)\n")


@pytest.mark.slow  # a fresh interpreter; make test-wheel runs the installed package too
def test_python_m_connectors_version_runs_from_the_installed_package(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "connectors", "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert VERSION.fullmatch(result.stdout), result.stdout
    assert result.stderr == ""


@pytest.mark.slow  # a fresh interpreter; make test-wheel runs the installed script too
def test_the_installed_connectors_script_runs(tmp_path: Path) -> None:
    """The `connectors` console script `pip install` put beside this interpreter
    (pyproject's [project.scripts]) runs the command line."""
    script = Path(sys.executable).parent / "connectors"
    assert script.is_file(), f"no installed `connectors` script at {script}: pip install -e ."
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    version = subprocess.run(
        [str(script), "--version"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    listed = subprocess.run(
        [str(script), "list"], cwd=tmp_path, env=env, capture_output=True, text=True
    )

    assert version.returncode == 0, version.stderr
    assert VERSION.fullmatch(version.stdout), version.stdout
    assert listed.returncode == 0, listed.stderr
    rows = [line.split()[0] for line in listed.stdout.splitlines()[1 : len(CATALOG) + 1]]
    assert rows == CATALOG.names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_import_graph() -> dict[str, set[str]]:
    """Each module of `shared/`, `connectors/` and `orchestration/` and the project modules
    it imports, at any depth of the file (a function-level import counts: it is a circle
    postponed, not cut)."""
    paths = [
        p for top in ("shared", "connectors", "orchestration") for p in (ROOT / top).rglob("*.py")
    ]
    names = {module_name(path) for path in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        found = set()
        for module in imported_modules(path):
            # `from shared.http import session` names a module too
            while module and module not in names:
                module = module.rpartition(".")[0]
            if module:
                found.add(module)
        graph[module_name(path)] = found - {module_name(path)}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, as the path that closes it (depth-first search)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_module_of_the_project_imports_itself_through_a_circle() -> None:
    assert circles(project_import_graph()) == []


def test_the_circle_check_sees_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


#: the layers of `shared/`, bottom up: a module imports only from its own layer and
#: the layers before it (shared/__init__.py's docstring)
SHARED_LAYERS = [
    {
        "shared.errors",
        "shared.redaction",
        "shared.timestamps",
        "shared._dlt_compat",
        "shared.collector",
    },
    {"shared.http"},
    {"shared.incremental", "shared.arrow"},
    {"shared.rest"},
    {"shared.loading", "shared.tooling"},
]


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(SHARED_LAYERS):
        if any(module == name or module.startswith(name + ".") for name in layer):
            return index
    return None  # a module kept at its old path for connectors: a re-export


def test_each_layer_of_shared_imports_only_from_itself_and_the_layers_below() -> None:
    graph = project_import_graph()
    upward = {
        (module, imported)
        for module, imports in graph.items()
        if module.startswith("shared.") and layer_of(module) is not None
        for imported in imports
        if imported.startswith("shared.")
        and (layer_of(imported) is None or layer_of(imported) > layer_of(module))  # type: ignore[operator]
    }
    assert upward == set()
    # the arrow and incremental layers stand side by side: neither imports the other
    sideways = {
        (module, imported)
        for module, imports in graph.items()
        for imported in imports
        if {
            module.split(".")[1:2][0] if "." in module else "",
            imported.split(".")[1:2][0] if "." in imported else "",
        }
        == {"arrow", "incremental"}
    }
    assert sideways == set()
