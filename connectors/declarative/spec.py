"""A declarative connector's spec: read, validated against its JSON schema, and filled in.

A spec is a YAML file (or the same structure as a dict) in the shape of dlt's `rest_api`
config plus the catalog's keys (`spec.schema.json`). It is validated before anything
runs: a wrong key or type is one line naming the file, its line and the key
(`crm.yml:12: resources[1].endpoint: unknown key `pathh`; ...`).

`${NAME}` anywhere in a string is a value: a keyword argument of `declarative_source`,
or dlt config and secrets under `sources.<name>.<NAME>` (environment
`SOURCES__<NAME>__<KEY>`), or the default after `:-` (`${initial_since:-}`: none). A
string that is one placeholder takes the value as it is (a number stays a number); one
inside a longer string is formatted into it. A value used in `client.auth` or
`client.headers` is a secret:
read through `dlt.secrets` (so dlt's trace keeps no copy) and registered with the
source's redactor. A placeholder with no value is one line naming where to set it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shared.errors import ConfigurationError, config_key, env_var

SCHEMA_PATH = Path(__file__).with_name("spec.schema.json")
#: `${NAME}` or `${NAME:-default}`
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
#: where a value is a secret: credentials (`client.auth`), and the headers every request
#: sends (`Authorization: "Bearer ${TOKEN}"`, as a Dango `rest_api` block writes it)
SECRET_PLACES = (("client", "auth"), ("client", "headers"))
#: a spec path on the command line, as opposed to a catalog connector's name
SPEC_SUFFIXES = (".yml", ".yaml")

Where = tuple[Any, ...]


class SpecError(ConfigurationError):
    """A spec that cannot run: invalid, or a value not set. One line."""


@dataclass
class Spec:
    """A validated spec, its placeholders not yet filled in."""

    data: dict[str, Any]
    #: the file it was read from (None: given as a dict)
    path: Path | None = None
    #: the line of each key and item, by its path in `data`
    lines: dict[Where, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.data["name"])

    def where(self, at: Where) -> str:
        """`crm.yml:12` for the node at `at` (or its nearest ancestor with a line)."""
        shown = self.path.name if self.path else f"spec {self.name!r}"
        while at:
            if at in self.lines:
                return f"{shown}:{self.lines[at]}"
            at = at[:-1]
        return shown


def is_spec_path(name: str) -> bool:
    """Whether a command-line connector argument names a spec file, not a connector."""
    return name.endswith(SPEC_SUFFIXES) or "/" in name or "\\" in name


def load_spec(spec: str | Path | Mapping[str, Any] | Spec) -> Spec:
    """Read and validate `spec` (a path to a YAML file, or the structure as a dict)."""
    if isinstance(spec, Spec):
        return spec
    loaded = Spec(deepcopy(dict(spec))) if isinstance(spec, Mapping) else _read(Path(spec))
    validate(loaded)
    return loaded


def _read(path: Path) -> Spec:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"no spec at {path}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SpecError(f"{path.name}{line}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path.name}: a spec is a mapping (name, client, resources, ...)")
    lines: dict[Where, int] = {}
    _note_lines(node, (), lines)
    return Spec(data, path, lines)


def _note_lines(node: yaml.Node | None, at: Where, lines: dict[Where, int]) -> None:
    if node is None:
        return
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[(*at, key.value)] = key.start_mark.line + 1
            _note_lines(value, (*at, key.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _note_lines(item, (*at, index), lines)


@cache
def schema() -> dict[str, Any]:
    """The JSON schema of a spec."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def validate(spec: Spec) -> None:
    """Raise `SpecError` in one line for the first problem of `spec`: its file and line,
    the key, and what is wrong."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(spec.data))
    if errors:
        raise SpecError(_problem(spec, _pick(errors)))
    _check_names(spec)


def _pick(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """The error that says most: the deepest; a wrong type only when nothing else is
    wrong there; within a failed `oneOf`, the best of its branches' errors."""
    best = max(
        errors,
        key=lambda e: (len(e.absolute_path), e.validator != "type", e.validator != "oneOf"),
    )
    if best.validator in ("oneOf", "anyOf") and best.context:
        return _pick(list(best.context))
    return best


def _problem(spec: Spec, error: jsonschema.ValidationError) -> str:
    at = tuple(error.absolute_path)
    place = f"{spec.where(at)}: {shown_path(at) or 'the spec'}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties") or {})
        extra = sorted(str(key) for key in error.instance if key not in allowed)
        key_at = (*at, extra[0]) if extra else at
        return (
            f"{spec.where(key_at)}: {shown_path(at) or 'the spec'}: unknown key `{extra[0]}`; "
            f"allowed: {', '.join(allowed)}"
        )
    if error.validator == "type" and error.parent is not None and error.parent.context:
        # every branch wanted another type: name them all
        wanted = [
            str(e.validator_value)
            for e in error.parent.context
            if e.validator == "type" and tuple(e.absolute_path) == at
        ]
        if len(wanted) == len(error.parent.context):
            return f"{place}: {error.instance!r} is not of type {' or '.join(wanted)}"
    message = error.message if len(error.message) < 200 else error.message[:197] + "..."
    return f"{place}: {message}"


def shown_path(at: Where) -> str:
    """`resources[1].endpoint.params` for ("resources", 1, "endpoint", "params")."""
    text = ""
    for part in at:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _check_names(spec: Spec) -> None:
    seen: set[str] = set()
    for index, resource in enumerate(spec.data["resources"]):
        name = resource["name"]
        if name in seen:
            raise SpecError(
                f"{spec.where(('resources', index, 'name'))}: resources[{index}]: "
                f"resource `{name}` is listed twice"
            )
        seen.add(name)


# -- values ---------------------------------------------------------------------------------


#: looks a value up in dlt's config (`secret`: through dlt.secrets); None when not set
Lookup = Callable[[str, bool], Any]


@dataclass
class Filled:
    """A spec with every placeholder filled in, and the values that are secrets."""

    data: dict[str, Any]
    secrets: list[str]
    #: placeholder name -> the config key a secret is set under (for error messages)
    secret_keys: list[str]


def placeholders(data: Any, at: Where = ()) -> Iterator[tuple[Where, str, str | None]]:
    """Every `${NAME}` of `data`: where it is, its name and its default (None: none)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from placeholders(value, (*at, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from placeholders(value, (*at, index))
    elif isinstance(data, str):
        for match in PLACEHOLDER.finditer(data):
            yield at, match.group(1), match.group(2)


def fill(spec: Spec, values: Mapping[str, Any], lookup: Lookup) -> Filled:
    """`spec`'s data with every placeholder replaced by its value (module docstring)."""
    name = spec.name
    secrets: list[str] = []
    secret_keys: list[str] = []
    resolved: dict[tuple[str, bool], Any] = {}

    def value_of(at: Where, key: str, default: str | None) -> Any:
        secret = at[:2] in SECRET_PLACES
        if (key, secret) in resolved:
            return resolved[(key, secret)]
        if key in values and values[key] is not None:
            value, from_secrets = values[key], False
        else:
            value, from_secrets = lookup(config_key(name, key), secret), secret
            if value is None and not secret:
                value = lookup(config_key(name, key), True)
                from_secrets = value is not None
            if value is None and default is not None:
                value = yaml.safe_load(default) if default.strip() else None
                from_secrets = False
            elif value is None:
                raise SpecError(
                    f"{spec.where(at)}: `${{{key}}}` is not set; pass {key}=... to "
                    f"declarative_source, or set `{config_key(name, key)}` in "
                    f".dlt/{'secrets' if secret else 'config'}.toml "
                    f"(env {env_var(name, key)})"
                )
        if secret or from_secrets:
            if value is not None:
                secrets.append(str(value))
            if key not in secret_keys:
                secret_keys.append(key)
        resolved[(key, secret)] = value
        return value

    def filled(data: Any, at: Where) -> Any:
        if isinstance(data, dict):
            return {key: filled(value, (*at, key)) for key, value in data.items()}
        if isinstance(data, list):
            return [filled(value, (*at, index)) for index, value in enumerate(data)]
        if not isinstance(data, str) or "${" not in data:
            return data
        whole = PLACEHOLDER.fullmatch(data)
        if whole:
            return value_of(at, whole.group(1), whole.group(2))
        return PLACEHOLDER.sub(
            lambda m: "" if (v := value_of(at, m.group(1), m.group(2))) is None else str(v), data
        )

    return Filled(filled(spec.data, ()), secrets, secret_keys)
