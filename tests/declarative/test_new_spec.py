"""`connectors new NAME --declarative`: a spec, its fake and its tests from
templates/my_spec/, listed in catalog.yml; the generated tests pass unedited."""

from __future__ import annotations

import importlib.util
import inspect
import shutil
from pathlib import Path

import pytest

from connectors.cli import main
from connectors.cli.scaffold import importable
from connectors.cli.scaffold_spec import create_spec_connector
from connectors.declarative import load_spec
from shared.loading import duckdb_pipeline
from shared.tooling.catalog import ROOT, load_catalog

WRITTEN = [
    Path("connectors/my_store/fake.py"),
    Path("connectors/my_store/my_store.yml"),
    Path("tests/declarative/test_my_store.py"),
    Path("catalog.yml"),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder with the repository's catalog.yml, where the connector is written."""
    shutil.copyfile(ROOT / "catalog.yml", tmp_path / "catalog.yml")
    return tmp_path


def test_new_declarative_writes_a_spec_a_fake_and_tests_and_lists_the_spec(root: Path) -> None:
    written = create_spec_connector("my_store", root=root)

    assert written == WRITTEN
    spec = load_spec(root / "connectors/my_store/my_store.yml")
    assert (spec.name, spec.data["title"]) == ("my_store", "My store")
    fake = (root / "connectors/my_store/fake.py").read_text(encoding="utf-8")
    assert "class MyStoreFake(FakeServer)" in fake and "my_spec" not in fake
    catalog = load_catalog(root / "catalog.yml")
    assert catalog.specs == (*load_catalog().specs, "connectors/my_store/my_store.yml")
    assert catalog.names == load_catalog().names  # the Python connectors are untouched


def test_a_taken_name_or_a_flag_of_the_python_template_is_refused_and_writes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (root / "catalog.yml").read_text(encoding="utf-8")

    with pytest.raises(Exception, match="connector `crm` already exists in catalog.yml"):
        create_spec_connector("crm", root=root)
    code = main(["new", "my_store", "--declarative", "--from", "crm"])

    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --declarative starts from the spec template: no --from, --auth or --paging"
    )
    assert (root / "catalog.yml").read_text(encoding="utf-8") == before
    assert sorted(p.name for p in root.iterdir()) == ["catalog.yml"]


# three syncs against the generated fake: `make test-slow`
@pytest.mark.slow
def test_the_generated_tests_pass_unedited(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    create_spec_connector("my_store", root=root)
    path = root / "tests/declarative/test_my_store.py"
    with importable(root, "my_store"):
        module_spec = importlib.util.spec_from_file_location("generated_test_my_store", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        tests = [(n, f) for n, f in vars(module).items() if n.startswith("test_")]
        assert len(tests) == 3
        for name, test in tests:
            folder = tmp_path_factory.mktemp(name)
            pipeline = duckdb_pipeline(
                "test", database=str(folder / "test.duckdb"), pipelines_dir=str(folder)
            )
            assert list(inspect.signature(test).parameters) == ["pipeline"]
            test(pipeline)
