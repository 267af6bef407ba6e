"""`connectors new --auth KIND --paging STYLE`: the template offers the catalog's auth
kinds and paging styles, each a rewrite of a few named parts of its files
(templates/my_api/choices.yml), and the connector made for each choice passes its own
tests against cassettes recorded from its own fake.

The slow tests make one connector per auth kind (paged as the template pages) and one per
paging style (authenticated as the template authenticates) in ONE copy of the
repository, with the command line as a user runs it, then run all their tests in ONE
pytest subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

import shared.rest.paginators as paginators
from connectors.cli.connector_names import ScaffoldError
from connectors.cli.scaffold import create_connector, template_choices
from connectors.cli.template import (
    TEMPLATE_ENTRY,
    TemplateChoiceError,
    load_choices,
    replace_part,
    template_folder,
)
from shared.tooling.catalog import load_catalog
from tests.test_templates import IGNORED, PYTEST, ROOT, run, tree

TEMPLATE = template_folder(ROOT)
CHOICES = load_choices(TEMPLATE)
OFFERED = template_choices(ROOT)
AUTH_DEFAULT, *AUTH_OTHERS = OFFERED["auth"]
PAGING_DEFAULT, *PAGING_OTHERS = OFFERED["paging"]
#: each auth kind with the template's paging, each paging style with its auth
COMBINATIONS = [
    *((auth, PAGING_DEFAULT) for auth in OFFERED["auth"]),
    *((AUTH_DEFAULT, paging) for paging in PAGING_OTHERS),
]


def connector_name(auth: str, paging: str) -> str:
    return f"shop_{auth}_{paging}"


# -- what is offered --------------------------------------------------------------------


def test_the_template_offers_the_catalogs_auth_kinds_and_dlts_paging_styles() -> None:
    schema = json.loads((ROOT / "shared/tooling/catalog.schema.json").read_text())
    auth_types = schema["$defs"]["auth_mode_fields"]["properties"]["type"]["enum"]

    assert OFFERED == {
        "auth": ["bearer", "api_key_header", "api_key_query", "basic", "oauth2_client_credentials"],
        "paging": ["next_url", "link_header", "offset", "page_number", "cursor"],
    }
    assert set(OFFERED["auth"]) <= set(auth_types)
    for auth in OFFERED["auth"]:  # the catalog entry's auth is the kind chosen
        (entry_auth,) = CHOICES.options["auth"][auth].parts["entry"].values()
        assert yaml.safe_load(entry_auth)["type"] == auth


@pytest.mark.parametrize("paging", OFFERED["paging"])
def test_each_paging_style_is_one_of_dlts_paginators(paging: str) -> None:
    line = (
        CHOICES.options["paging"][paging]
        .parts["connector"]
        .get("paginator", CHOICES.default("paging").parts["connector"]["paginator"])
    )
    (paginator,) = re.findall(r'"paginator": (\w+)\(', line)

    assert paginator in paginators.__all__
    assert getattr(paginators, paginator).__module__.startswith("dlt.")


def test_the_docs_list_exactly_the_choices_offered_and_the_paginator_of_each() -> None:
    page = (ROOT / "docs/writing-a-connector.md").read_text(encoding="utf-8")
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())

    def rows(header: str) -> dict[str, str]:
        table = page.split(f"| `{header}` |", 1)[1].split("\n\n", 1)[0]
        cells = [line.split(" | ") for line in table.splitlines()[2:]]
        return {re.sub(r"[|` ]|\(default\)", "", row[0]): row[1] for row in cells}

    assert list(rows("AUTH")) == OFFERED["auth"]
    assert list(rows("PAGING")) == OFFERED["paging"]
    for paging, text in rows("PAGING").items():
        line = CHOICES.options["paging"][paging].parts["connector"]["paginator"]
        (paginator,) = re.findall(r'"paginator": (\w+)\(', line)
        assert f"(`{paginator}`)" in text, paging
    for option, names in OFFERED.items():
        listed = ", ".join(
            f"`{name}`" + (" (default)" if name == names[0] else "") for name in names
        )
        assert listed in readme, option


@pytest.mark.parametrize(
    ("option", "name"),
    [(option, name) for option, names in OFFERED.items() for name in names],
)
def test_every_part_a_choice_rewrites_is_in_the_template_exactly_once(
    option: str, name: str
) -> None:
    choice = CHOICES.options[option][name]
    template = CHOICES.default(option)

    for alias, parts in choice.parts.items():
        path = CHOICES.files[alias]
        text = (TEMPLATE / path).read_text(encoding="utf-8")
        assert set(parts) <= set(template.parts[alias]), (alias, path)
        rewritten = CHOICES.rewrite(path, text, [choice])
        for part, new in parts.items():
            assert "\n".join(line.strip() for line in new.splitlines()) in "\n".join(
                line.strip() for line in rewritten.splitlines()
            ), (alias, part)


def test_the_template_says_its_own_choices_in_the_catalog_description() -> None:
    raw = yaml.safe_load((TEMPLATE / TEMPLATE_ENTRY).read_text(encoding="utf-8"))
    chosen = [CHOICES.options["auth"]["basic"], CHOICES.options["paging"]["cursor"]]

    described = CHOICES.describe(raw["description"], chosen)

    assert "from an API that takes HTTP basic auth and pages orders by the next_cursor" in (
        described
    )
    assert CHOICES.default("auth").says not in described


def test_a_part_is_replaced_at_its_own_indentation_and_must_be_there_once() -> None:
    text = "class A:\n    def f(self):\n        return 1\n\n    x = f\n"

    replaced = replace_part(text, "def f(self):\n    return 1", "def g(self):\n    return 2", "t")
    inline = replace_part("call(a=1, b=2)\n", "b=2", "b=3,\nc=4", "t")

    assert replaced == "class A:\n    def g(self):\n        return 2\n\n    x = f\n"
    assert inline == "call(a=1, b=3,\nc=4)\n"
    with pytest.raises(TemplateChoiceError, match="t: its template text is not in the file"):
        replace_part(text, "def h(self):\n    return 1", "", "t")
    with pytest.raises(TemplateChoiceError, match="t: its template text is 2 times"):
        replace_part("x\nx\n", "x", "y", "t")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"auth": "digest"}, "unknown --auth `digest`; the template offers: bearer, "),
        ({"paging": "scroll"}, "unknown --paging `scroll`; the template offers: next_url, "),
        (
            {"original": "crm", "auth": "basic"},
            "--auth and --paging shape a connector made from the template; a copy of `crm`",
        ),
    ],
)
def test_an_unknown_choice_or_a_choice_for_a_copy_is_refused_and_nothing_is_written(
    tmp_path: Path, arguments: dict[str, str], message: str
) -> None:
    for name in ("catalog.yml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    before = tree(tmp_path)

    with pytest.raises(ScaffoldError) as refused:
        create_connector("my_shop", root=tmp_path, **arguments)

    assert message in str(refused.value)
    assert tree(tmp_path) == before


# -- the connectors made --------------------------------------------------------------


@pytest.fixture(scope="module")
def choices_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with one connector per combination, each made by
    `python -m connectors new NAME --auth KIND --paging STYLE` (which records its
    cassettes from its fake)."""
    copy = tmp_path_factory.mktemp("choices") / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    for auth, paging in COMBINATIONS:
        name = connector_name(auth, paging)
        created = run(copy, "-m", "connectors", "new", name, "--auth", auth, "--paging", paging)
        assert created.returncode == 0, created.stderr[-3000:]
        assert f"from the my_api template (--auth {auth}, --paging {paging})" in created.stdout
    return copy


@pytest.fixture(scope="module")
def choices_results(choices_copy: Path) -> dict[str, dict[str, str]]:
    """Each made connector's test outcomes (test -> passed, or why not), from one pytest
    run of their own test files and the catalog's checks (each connector's entry
    against its code: secrets, resources, keys, cursors)."""
    report = choices_copy / "report.xml"
    names = [connector_name(*combination) for combination in COMBINATIONS]
    files = [f"tests/connectors/test_{name}.py" for name in names]
    result = run(
        choices_copy,
        *PYTEST,
        f"--junitxml={report}",
        *("tests/test_catalog.py", *files),
    )
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    outcomes: dict[str, dict[str, str]] = {name: {} for name in names}
    for case in ElementTree.parse(report).iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        owners = [
            name
            for name in names
            if case.get("classname") == f"tests.connectors.test_{name}" or f"[{name}]" in test
        ]
        problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
        outcome = "passed"
        if problems:
            outcome = f"{problems[0].tag}: {problems[0].get('message', '')[:500]}"
        for name in owners:
            outcomes[name][test] = outcome
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize(("auth", "paging"), COMBINATIONS)
def test_the_connector_made_for_each_choice_passes_its_own_tests_and_the_catalog_checks(
    choices_results: dict[str, dict[str, str]], auth: str, paging: str
) -> None:
    name = connector_name(auth, paging)
    outcomes = choices_results[name]

    own = [test for test in outcomes if test.startswith(f"tests.connectors.test_{name}::")]
    assert len(own) >= 6  # the template's tests, every one
    assert f"tests.test_catalog::test_listed_secrets_are_the_sources_secret_arguments[{name}]" in (
        outcomes
    )
    assert {test: outcome for test, outcome in outcomes.items() if outcome != "passed"} == {}


@pytest.mark.slow
@pytest.mark.parametrize(("auth", "paging"), COMBINATIONS)
def test_the_connector_made_for_each_choice_authenticates_and_pages_as_chosen(
    choices_copy: Path, auth: str, paging: str
) -> None:
    name = connector_name(auth, paging)
    entry = load_catalog(choices_copy / "catalog.yml").get(name)
    connector = (choices_copy / "connectors" / name / "__init__.py").read_text()
    readme = (choices_copy / "connectors" / name / "README.md").read_text()
    recorded = yaml.safe_load((choices_copy / "cassettes" / name / "full_sync.yaml").read_text())
    uris = [interaction["request"]["uri"] for interaction in recorded["interactions"]]
    orders = [uri for uri in uris if "/orders" in uri]

    assert entry.auth.type == auth
    assert CHOICES.options["auth"][auth].says in entry.description
    assert CHOICES.options["paging"][paging].says in entry.description
    assert all(f"`{secret}`" in readme for secret in entry.auth.secrets)
    # users come in one response; orders page as chosen
    paginators_used = set(re.findall(r'"paginator": (\w+)\(', connector)) - {"SinglePagePaginator"}
    expected_paginator = {
        "next_url": "JSONLinkPaginator",
        "link_header": "HeaderLinkPaginator",
        "offset": "OffsetPaginator",
        "page_number": "PageNumberPaginator",
        "cursor": "JSONResponseCursorPaginator",
    }[paging]
    assert paginators_used == {expected_paginator}
    # what the recorded requests carry: the paging parameter, and a key sent in the query
    # (redacted); the other kinds travel in headers, which are never recorded
    page_parameter = {
        "next_url": "page=2",
        "link_header": "page=2",
        "offset": "offset=50",
        "page_number": "page=2",
        "cursor": "cursor=page-2",
    }[paging]
    assert len(orders) == 3 and any(page_parameter in uri for uri in orders), orders
    assert all(("api_key=REDACTED" in uri) == (auth == "api_key_query") for uri in uris)
    assert any(uri.endswith("/oauth/token") for uri in uris) == (
        auth == "oauth2_client_credentials"
    )


@pytest.mark.slow
def test_the_connectors_made_are_ruff_clean(choices_copy: Path) -> None:
    paths = [
        path
        for auth, paging in COMBINATIONS
        for path in (
            f"connectors/{connector_name(auth, paging)}",
            f"connectors/sandbox/{connector_name(auth, paging)}.py",
            f"tests/connectors/test_{connector_name(auth, paging)}.py",
        )
    ]

    checked = run(choices_copy, "-m", "ruff", "check", *paths)
    formatted = run(choices_copy, "-m", "ruff", "format", "--check", *paths)

    assert checked.returncode == 0, checked.stdout[-3000:]
    assert formatted.returncode == 0, formatted.stdout[-3000:]
