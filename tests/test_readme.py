"""README.md: its connector table is generated from catalog.yml and fails this test when
it drifts; its quick start is the two make commands; it covers what a user needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.cli import dango, main, snippets
from connectors.cli.readme import END, START, catalog_table, render, update_readme
from shared.errors import ConnectorError
from shared.tooling.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: the deeper pages the README links to
DOCS = {
    path.name: path.read_text(encoding="utf-8") for path in sorted((ROOT / "docs").glob("*.md"))
}
CATALOG = load_catalog()
#: what a user reads: the README, then the pages it links to
EVERYTHING = "\n".join([README, *DOCS.values()])


def sections(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)


def test_connector_table_is_the_one_generated_from_the_catalog() -> None:
    assert render(README, CATALOG) == README, (
        "README.md's connector table is out of date: run `python -m connectors readme`"
    )


def test_table_has_one_row_per_connector_with_its_secrets_and_tables() -> None:
    rows = catalog_table(CATALOG).splitlines()[2:]

    assert [row.split(" | ")[0] for row in rows] == [f"| `{name}`" for name in CATALOG.names]
    for row, entry in zip(rows, CATALOG, strict=True):
        assert all(f"`{secret}`" in row for secret in entry.auth.secrets)
        assert all(resource.name in row for resource in entry.resources)
        assert entry.maturity in row


def test_quick_start_comes_first_with_exactly_make_demo_and_make_test() -> None:
    assert sections(README)[0] == "Quick start"
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", quick_start, flags=re.DOTALL)
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]

    assert commands == ["make demo", "make test"]


@pytest.mark.parametrize(
    "topic",
    [
        "Using a connector from plain dlt",
        "Using a connector from Dango",
        "Running from an orchestrator",
        "Secrets",
        "Adding a connector",
    ],
)
def test_readme_has_a_section_on(topic: str) -> None:
    assert topic in sections(README)


@pytest.mark.parametrize(
    ("page", "topic"),
    [
        ("operations.md", "Checking the destination against the source: `verify`"),
        ("operations.md", "Running at scale"),
        ("writing-a-connector.md", "Recording cassettes"),
        ("security.md", "Origins, links and messages"),
    ],
)
def test_the_docs_pages_have_a_section_on(page: str, topic: str) -> None:
    assert topic in sections(DOCS[page])
    assert f"docs/{page}" in README  # linked from the README


def test_the_readme_stays_short() -> None:
    assert len(README.splitlines()) < 350


def test_readme_keeps_the_security_and_cassette_facts() -> None:
    flat = " ".join(EVERYTHING.split())

    assert "A next-page link to any other origin is **refused**" in flat
    assert "re-recording unchanged data gives byte-identical files" in flat
    assert "record mode `none`" in flat
    assert "make new-connector NAME=my_shop FROM=crm" in flat


def test_dango_and_secrets_examples_are_what_show_prints_for_crm() -> None:
    crm = CATALOG.get("crm")
    settings = snippets.source_settings(crm)
    yaml_blocks = re.findall(r"```yaml\n(.*?)```", README, flags=re.DOTALL)
    toml_blocks = re.findall(r"```toml\n# [^\n]+\n(.*?)```", README, flags=re.DOTALL)

    assert dango.sources_yml(crm, settings) in yaml_blocks
    assert snippets.secrets_toml(settings) in toml_blocks


def test_dango_section_runs_the_commands_make_test_dango_runs() -> None:
    """tests/dango/test_dango_sync.py installs with `dango.install_command()`, makes the
    project with `INIT_COMMAND` and syncs with `sync_command(name)`: the README says the
    same (with a placeholder checkout path)."""
    section = README.split("## Using a connector from Dango", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)

    assert block.strip().splitlines() == [
        dango.install_command(Path("/path/to/this/checkout")),
        " ".join(dango.INIT_COMMAND),
        " ".join(dango.sync_command("crm")),
    ]
    assert "`make test-dango`" in section


def test_check_reports_a_drifted_table_and_the_command_rewrites_it(tmp_path: Path) -> None:
    drifted = tmp_path / "README.md"
    drifted.write_text(f"# x\n\n{START}\n| old | table |\n{END}\n\nafter\n", encoding="utf-8")

    assert update_readme(CATALOG, drifted, check=True) is False
    assert "| old | table |" in drifted.read_text()  # --check changes nothing

    assert update_readme(CATALOG, drifted) is False
    assert drifted.read_text() == f"# x\n\n{START}\n{catalog_table(CATALOG)}\n{END}\n\nafter\n"
    assert update_readme(CATALOG, drifted, check=True) is True


def test_readme_check_command_passes_on_the_repository_readme(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["readme", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_readme_without_the_markers_is_a_clear_error() -> None:
    with pytest.raises(ConnectorError, match="catalog:start"):
        render("# no markers here\n", CATALOG)


def _relative_links(markdown: str) -> list[str]:
    """The targets of the markdown links in `markdown` that point into the repository."""
    targets = re.findall(r"\]\(([^)\s]+)\)", markdown)
    return [t.split("#", 1)[0] for t in targets if not re.match(r"^[a-z]+:|^#", t)]


@pytest.mark.parametrize(
    "document",
    [
        "README.md",
        *(f"docs/{name}" for name in DOCS),
        *(f"connectors/{name}/README.md" for name in CATALOG.names),
    ],
)
def test_every_link_resolves_inside_the_repository(document: str) -> None:
    path = ROOT / document
    links = _relative_links(path.read_text(encoding="utf-8"))

    broken = [link for link in links if not (path.parent / link).exists()]
    outside = [link for link in links if ROOT not in (path.parent / link).resolve().parents]
    assert broken == [] and outside == []
    if document == "README.md":
        for name in CATALOG.names:
            assert f"connectors/{name}/README.md" in links


def test_every_make_target_is_in_the_readme_and_make_test_has_a_measured_time() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (phony,) = re.findall(r"^\.PHONY: (.+)$", makefile, flags=re.MULTILINE)

    undocumented = [target for target in phony.split() if f"`make {target}" not in README]
    assert undocumented == []
    assert re.search(r"`make test` takes about \d+ (s|min)", " ".join(README.split()))
