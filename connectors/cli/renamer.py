"""One connector's identifiers renamed to another's, in code and in paths (`connectors
new --from`, and the template's `my_api`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from connectors.cli.connector_names import TEST_SUFFIXES


@dataclass(frozen=True)
class Renamer:
    """Renames one connector's identifiers to another's in code and paths:
    `crm` -> `foo` (modules, strings, config keys, `crm_source`), `Crm` -> `Foo` (class
    names), `CRM` -> `FOO` (environment variables), the title, and the repository's own
    paths (`connectors/sandbox/crm.py`), but never inside a URL path (`/crm/v3`) or another
    identifier (`incident_crm`)."""

    old: str
    new: str
    old_title: str = ""
    new_title: str = ""

    def text(self, text: str) -> str:
        """`text` with every form of the old name replaced, in one pass (so a new name
        that contains the old one is not renamed again)."""
        old_upper = self.old.upper()
        forms = [  # (pattern, replacement), first match wins
            (rf"SOURCES__{re.escape(old_upper)}__", f"SOURCES__{self.new.upper()}__"),
            (_in_repository_path(self.old), self.new),
            (rf"(?<![A-Za-z0-9_/]){re.escape(self.old)}(?![A-Za-z0-9/])", self.new),
            (rf"(?<![A-Za-z0-9_]){re.escape(camel(self.old))}(?![a-z0-9])", camel(self.new)),
            (rf"(?<![A-Za-z0-9_]){re.escape(old_upper)}(?![A-Z0-9])", self.new.upper()),
        ]
        if self.old_title:
            title = rf"(?<![A-Za-z0-9_]){re.escape(self.old_title)}(?![A-Za-z0-9_])"
            forms.insert(0, (title, self.new_title))
        pattern = re.compile("|".join(f"({regex})" for regex, _ in forms))
        replacements = [replacement for _, replacement in forms]
        return pattern.sub(lambda match: replacements[match.lastindex - 1], text)

    def path(self, relative: Path) -> Path:
        return Path(
            *(
                re.sub(rf"(?<![a-z0-9]){re.escape(self.old)}(?![a-z0-9])", self.new, part)
                for part in relative.parts
            )
        )


def _in_repository_path(name: str) -> str:
    """`name` inside a path of this repository (`connectors/crm/`, `cassettes/crm/`,
    `connectors/sandbox/crm.py`, `test_crm.py`, `test_crm_loopback.py`), which, unlike a
    URL path, is renamed."""
    escaped = re.escape(name)
    suffixes = "|".join(re.escape(suffix) for suffix in TEST_SUFFIXES)
    return (
        rf"(?<=connectors/){escaped}(?=[/.])|(?<=cassettes/){escaped}(?=/)"
        rf"|(?<=sandbox/){escaped}(?=\.py)|(?<=test_){escaped}(?=(?:{suffixes})\.py)"
    )


def camel(name: str) -> str:
    """`hubspot_contacts` -> `HubspotContacts`."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def title_of(name: str) -> str:
    """`my_shop` -> `My shop`."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
