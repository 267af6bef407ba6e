"""The template `connectors new` starts a connector from (`templates/my_api/`), and what
`--auth KIND --paging STYLE` choose in it: how the connector authenticates and pages.

The template is written for the first choice of each option (bearer, next_url). Its
`choices.yml` gives every choice's text for the small, named parts of the template's
files it changes (the auth line, the paginator line, the fake's paging functions, the
README's paragraph on secrets, the catalog entry's `auth`). Choosing another one
replaces the first choice's text of each of those parts with its own, and leaves the
rest of the template as it is: one template, not one per combination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.errors import ConnectorError
from shared.tooling.package_data import package_data

TEMPLATE_NAME = "my_api"
TEMPLATES_DIR = "templates"
#: the template's catalog entry, appended to `catalog.yml` renamed (not copied)
TEMPLATE_ENTRY = "catalog-entry.yml"
#: the template's choices (not copied)
CHOICES_FILE = "choices.yml"
#: the options, in the order `connectors new` applies them
OPTIONS = ("auth", "paging")


class TemplateChoiceError(ConnectorError):
    """`choices.yml` does not fit the template: a part that is not there as written."""


@dataclass(frozen=True)
class Choice:
    """One value of an option (`--auth bearer`): how the catalog's description says it,
    and its text of each part it changes, by file (an alias of `Choices.files`)."""

    option: str
    name: str
    says: str
    parts: dict[str, dict[str, str]]


@dataclass(frozen=True)
class Choices:
    """The template's options and their choices, the first of each being the template's
    own; `files` maps the aliases parts are filed under to paths in the template."""

    source: Path
    files: dict[str, str]
    options: dict[str, dict[str, Choice]]

    def names(self, option: str) -> list[str]:
        """The choices of `option`, the template's own first."""
        return list(self.options[option])

    def default(self, option: str) -> Choice:
        return next(iter(self.options[option].values()))

    def rewrite(self, path: str, text: str, chosen: list[Choice]) -> str:
        """`text`, the template's file at `path`, with each chosen choice's parts in
        place of the template's own."""
        aliases = [alias for alias, file in self.files.items() if file == path]
        for choice in chosen:
            template = self.default(choice.option)
            for alias in aliases:
                for part, new in choice.parts.get(alias, {}).items():
                    old = template.parts[alias][part]
                    where = f"{self.source.name}: {choice.option} part `{alias}.{part}`"
                    text = replace_part(text, old, new, f"{where} (in {path})")
        return text

    def describe(self, description: str, chosen: list[Choice]) -> str:
        """The catalog entry's `description` saying the chosen choices."""
        text = " ".join(description.split())
        for choice in chosen:
            template = self.default(choice.option)
            if template.says not in text:
                raise TemplateChoiceError(
                    f"{self.source.name}: the template's description does not say "
                    f"`{template.says}` (its {choice.option})"
                )
            text = text.replace(template.says, choice.says)
        return text


def template_folder(root: Path) -> Path:
    """The template: `root`'s own when it has one (a checkout), else the installed copy."""
    own = root / TEMPLATES_DIR / TEMPLATE_NAME
    return own if own.is_dir() else package_data(TEMPLATES_DIR) / TEMPLATE_NAME


def load_choices(template: Path) -> Choices:
    """The choices of the template folder `template` (its `choices.yml`)."""
    path = template / CHOICES_FILE
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    options = {
        option: {
            name: Choice(
                option=option,
                name=name,
                says=spec["says"],
                parts={alias: spec[alias] for alias in raw["files"] if alias in spec},
            )
            for name, spec in raw[option].items()
        }
        for option in OPTIONS
    }
    return Choices(path, dict(raw["files"]), options)


def replace_part(text: str, old: str, new: str, where: str) -> str:
    """`text` with the part `old` replaced by `new`.

    A one-line `old` is found anywhere in a line; a block of lines at any one
    indentation. Either must be in `text` exactly once; every line of `new` after its
    first is indented as the line `old` starts on.

    Raises:
        TemplateChoiceError: `old` is not in `text`, or is there more than once.
    """
    lines = old.split("\n")
    if len(lines) == 1:
        pattern = re.escape(old)
    else:
        following = "".join(
            r"\n" + (r"(?P=indent)" + re.escape(line) if line else "") for line in lines[1:]
        )
        pattern = r"(?m)^(?P<indent>[ \t]*)" + re.escape(lines[0]) + following
    found = list(re.finditer(pattern, text))
    if len(found) != 1:
        state = "is not" if not found else f"is {len(found)} times"
        raise TemplateChoiceError(f"{where}: its template text {state} in the file")
    match = found[0]
    line = text[text.rfind("\n", 0, match.start()) + 1 :]
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    replacement = "\n".join(
        (indent + line if line else "") if number else line
        for number, line in enumerate(new.split("\n"))
    )
    if len(lines) > 1:
        replacement = match.group("indent") + replacement
    return text[: match.start()] + replacement + text[match.end() :]
