"""README.md and each connector's README: their generated parts (the connector table;
a connector's API, parameters and tables) are what `make readme` makes from the code and
catalog.yml, and this test fails when one drifts; README.md's quick start is the two make
commands; it covers what a user needs."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from connectors.cli import dango, main, readme, snippets
from connectors.cli.readme import (
    END,
    REGENERATE,
    START,
    catalog_table,
    default_text,
    docstring_args,
    parameters_section,
    render,
    render_connector,
    render_connector_readme,
    update_readme,
    update_readmes,
    update_template_readme,
    write_connector_readme,
)
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


# -- each connector's README: generated from the code and the catalog -----------------


@pytest.mark.parametrize("name", CATALOG.names)
def test_each_connector_readme_is_the_one_generated_from_the_code_and_the_catalog(
    name: str,
) -> None:
    current = (ROOT / "connectors" / name / "README.md").read_text(encoding="utf-8")

    assert render_connector_readme(name, CATALOG) == current, (
        f"connectors/{name}/README.md is out of date: run `{REGENERATE}`"
    )


def test_the_template_readme_is_the_one_generated_from_the_template() -> None:
    assert update_template_readme(check=True), (
        f"templates/my_api/connectors/my_api/README.md is out of date: run `{REGENERATE}`"
    )


def _parameter_rows(name: str) -> dict[str, tuple[str, str]]:
    """The parameters table of a connector's README: key -> (default, meaning)."""
    text = (ROOT / "connectors" / name / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- parameters:start -->", 1)[1].split("<!-- parameters:end -->")[0]
    rows = [line.split(" | ") for line in block.splitlines() if line.startswith("| `")]
    return {key.strip("|` "): (default, meaning) for key, default, meaning in rows}


def _table_rows(name: str) -> dict[str, list[str]]:
    """The tables list of a connector's README: table -> its cells after the name."""
    text = (ROOT / "connectors" / name / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- tables:start -->", 1)[1].split("<!-- tables:end -->")[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in block.splitlines()
        if line.startswith("| `")
    ]
    return {row[0].strip("`"): row[1:] for row in rows}


def test_crm_readme_states_the_pace_retries_and_site_the_code_has() -> None:
    """The three claims the hand-written README once got wrong: a pace of 120 a minute
    (the code spends the server's budget, 66 a minute without one), `site` replaced (it
    merges on `subdomain`), retries of a 5xx only (429s too)."""
    from connectors.crm.settings import REQUESTS_PER_MINUTE

    parameters, tables = _parameter_rows("crm"), _table_rows("crm")

    default, meaning = parameters["requests_per_minute"]
    assert default == "none" and "120" not in meaning
    assert f"{REQUESTS_PER_MINUTE} a minute while it reports none" in meaning
    assert "X-RateLimit-Remaining" in meaning
    assert parameters["max_retries"][0] == "`5`"
    assert parameters["max_retries"][1].startswith("retries of a 429, 500, 502, 503 or 504")
    assert parameters["base_url"][0] == '`"https://api.capsulecrm.com"`'
    path, key, write, cursor, parent = tables["site"]
    assert (path, key, write, cursor, parent) == ("`/api/v2/site`", "`subdomain`", "merge", "", "")
    assert tables["parties"][3] == "`updatedAt` (column `updated_at`)"
    assert tables["employees"][4] == "`parties`"


@pytest.mark.parametrize("name", CATALOG.names)
def test_every_parameter_of_the_source_has_a_row_with_its_default(name: str) -> None:
    import inspect

    entry = CATALOG.get(name)
    parameters = inspect.signature(entry.source_factory()).parameters
    rows = _parameter_rows(name)

    assert list(rows) == list(parameters)
    for key, parameter in parameters.items():
        assert rows[key][0] == default_text(parameter), key
    assert rows["base_url"][0] == (f'`"{entry.base_url}"`' if entry.base_url else "required")
    assert list(_table_rows(name)) == entry.resource_names


def test_defaults_read_as_a_user_sets_them() -> None:
    import inspect

    import dlt

    def source(  # type: ignore[no-untyped-def]
        token: str = dlt.secrets.value,
        key: str | None = dlt.secrets.value,
        base_url: str | None = dlt.config.value,
        since: str | None = None,
        mode: str = "soft",
        pages: int = 5,
        wait: float = 1.5,
        fast: bool = False,
    ):
        """Args:"""

    defaults = {p.name: default_text(p) for p in inspect.signature(source).parameters.values()}

    assert defaults == {
        "token": "required secret",
        "key": "secret",
        "base_url": "required",
        "since": "none",
        "mode": '`"soft"`',
        "pages": "`5`",
        "wait": "`1.5`",
        "fast": "`False`",
    }


def test_docstring_args_are_read_with_their_continuation_lines_until_the_next_section() -> None:
    docstring = """Load it.

    Args:
        api_key: the key, sent as
            `Authorization: Bearer`.
        pages (int): how many pages.

    Returns:
        resources: not an argument.
    """

    assert docstring_args(docstring) == {
        "api_key": "the key, sent as `Authorization: Bearer`.",
        "pages": "how many pages.",
    }


def test_a_parameter_the_docstring_does_not_describe_is_an_error_naming_it() -> None:
    import dataclasses

    import dlt

    @dlt.source(name="undocumented")
    def undocumented_source(api_key: str = dlt.secrets.value, page_size: int = 50) -> list[Any]:
        """Load it.

        Args:
            api_key: the key.
        """
        return []

    entry = dataclasses.replace(
        CATALOG.get("crm"), name="undocumented", source_function="undocumented_source"
    )

    with pytest.raises(ConnectorError) as raised:
        parameters_section(entry, undocumented_source)

    assert str(raised.value) == (
        "undocumented: the docstring of undocumented_source describes no page_size; "
        "add them under `Args:`"
    )


def test_a_connector_readme_without_a_generated_part_is_a_clear_error() -> None:
    entry = CATALOG.get("crm")

    with pytest.raises(ConnectorError) as raised:
        render_connector("# crm\n\n<!-- api:start -->\n<!-- api:end -->\n", entry)

    assert str(raised.value) == (
        "connectors/crm/README.md needs one `<!-- parameters:start -->` ... "
        "`<!-- parameters:end -->` block"
    )


def _readmes_copy(tmp_path: Path) -> Path:
    """A tree holding what `make readme` rewrites: README.md, every connector's README
    and the template."""
    for name in CATALOG.names:
        target = tmp_path / "connectors" / name / "README.md"
        target.parent.mkdir(parents=True)
        target.write_bytes((ROOT / "connectors" / name / "README.md").read_bytes())
    (tmp_path / "README.md").write_bytes((ROOT / "README.md").read_bytes())
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    return tmp_path


def test_readme_check_names_each_drifted_readme_and_the_command_rewrites_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _readmes_copy(tmp_path)
    crm = root / "connectors/crm/README.md"
    template = root / "templates/my_api/connectors/my_api/README.md"
    crm.write_text(crm.read_text().replace("| `requests_per_minute` | none |", "| x | 120 |"))
    template.write_text(template.read_text().replace("| `max_retries` | `5` |", "| x | 3 |"))
    drifted = crm.read_text()
    monkeypatch.setattr(readme, "update_readmes", functools.partial(update_readmes, root=root))

    assert main(["readme", "--check"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"error: connectors/crm/README.md is out of date; run: {REGENERATE}",
        f"error: templates/my_api/connectors/my_api/README.md is out of date; run: {REGENERATE}",
    ]
    assert crm.read_text() == drifted  # --check changes nothing

    assert main(["readme"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "updated connectors/crm/README.md",
        "updated templates/my_api/connectors/my_api/README.md",
    ]
    assert crm.read_bytes() == (ROOT / "connectors/crm/README.md").read_bytes()
    assert (
        template.read_bytes()
        == (ROOT / "templates/my_api/connectors/my_api/README.md").read_bytes()
    )
    assert main(["readme", "--check"]) == 0


def test_write_connector_readme_rewrites_one_connectors_generated_parts(tmp_path: Path) -> None:
    """What `connectors new` can call once the new connector is in the catalog."""
    root = _readmes_copy(tmp_path)
    (root / "catalog.yml").write_bytes((ROOT / "catalog.yml").read_bytes())
    path = root / "connectors/hubspot_contacts/README.md"
    path.write_text(path.read_text().replace("| `contacts` | `/crm", "| `people` | `/crm"))

    assert write_connector_readme("hubspot_contacts", root=root) is True
    assert path.read_bytes() == (ROOT / "connectors/hubspot_contacts/README.md").read_bytes()
    assert write_connector_readme("hubspot_contacts", root=root) is False
