"""What the project ships is complete by itself: no file a user gets (the packages, the
templates, the docs, the catalog, the Makefile) and nothing the `connectors` command
prints names a seed document, an HTTP contract, a path outside the repository or an
issue of our tracker. Each of those is a dead reference for anyone but the authors;
what it said is written out where it is needed ("the API pages with Link headers")."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from connectors.cli import main
from connectors.cli.commands import parser
from shared.tooling.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()

#: what a dead reference looks like, by what it refers to
DEAD_REFERENCES = {
    "a seed document": re.compile(r"\bseeds?\b|\bseed-\d", re.IGNORECASE),
    # dlt's `schema_contract` is a setting, not a reference (`_` is a word character)
    "an HTTP contract": re.compile(r"\bcontracts?\b|api-contracts", re.IGNORECASE),
    "a path outside the repository": re.compile(r"\.\./shared\b|/work/shared\b|\bSTYLE\.md\b"),
    "an issue of the tracker": re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE),
}
#: the shipped folders (packages, templates, docs) and top-level files
SHIPPED_FOLDERS = ("connectors", "shared", "orchestration", "templates", "docs")
SHIPPED_FILES = ("README.md", "BENCHMARKS.md", "catalog.yml", "Makefile", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".json", ".toml", ".txt"}


def shipped_files() -> list[str]:
    files = [
        path
        for folder in SHIPPED_FOLDERS
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts
    ]
    files += [ROOT / name for name in SHIPPED_FILES]
    return [path.relative_to(ROOT).as_posix() for path in files]


def dead_references(text: str) -> list[str]:
    """Each dead reference in `text`: what it refers to, and the line it is on."""
    return [
        f"{kind}: {line.strip()}"
        for line in text.splitlines()
        for kind, pattern in DEAD_REFERENCES.items()
        if pattern.search(line)
    ]


def test_the_scan_finds_each_kind_of_dead_reference() -> None:
    text = "\n".join(
        [
            '"""Contract: ../shared/api-contracts/crm.md."""',
            "# the seed's retries (seed 001)",
            "against its target (issue 15: at least 0.6x)",
            "the list pages like the API says; dlt's schema_contract is fine",
        ]
    )

    assert [finding.split(":", 1)[0] for finding in dead_references(text)] == [
        "an HTTP contract",
        "a path outside the repository",
        "a seed document",
        "an issue of the tracker",
    ]


def test_the_scan_reads_every_package_template_doc_and_the_catalog() -> None:
    files = shipped_files()

    for expected in (
        "connectors/crm/__init__.py",
        "connectors/crm/README.md",
        "connectors/cli/readme.py",
        "shared/tooling/catalog.schema.json",
        "templates/my_api/connectors/my_api/__init__.py",
        "templates/my_api/catalog-entry.yml",
        "docs/writing-a-connector.md",
        "README.md",
        "catalog.yml",
        "Makefile",
    ):
        assert expected in files


@pytest.mark.parametrize("document", shipped_files())
def test_no_shipped_file_names_a_seed_a_contract_or_a_path_outside_the_repository(
    document: str,
) -> None:
    assert dead_references((ROOT / document).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", CATALOG.names)
def test_show_names_no_seed_contract_or_outside_path(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", name]) == 0
    out = capsys.readouterr().out

    assert f"{name}: " in out  # it printed the entry
    assert dead_references(out) == []


def test_no_command_help_names_a_seed_contract_or_outside_path() -> None:
    top = parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    helps = [top.format_help(), *(sub.format_help() for sub in commands.choices.values())]

    assert len(helps) > 5
    assert dead_references("\n".join(helps)) == []
