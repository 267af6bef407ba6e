"""The vendors' published OpenAPI specs (kept as fetched in `specs/`, their sources in
`specs/SOURCES.md`), and a check of one recorded or faked HTTP exchange against them.

`check(connector, method, url, status, body, request_body)` maps the request to the
spec's operation, picks the response schema for the status (or `default`) and validates
the body (and a JSON request body) with `jsonschema` (Draft 4, the dialect of both
Swagger 2.0 and OpenAPI 3.0 schema objects). Each violation becomes a `Finding` keyed by
where it is (`parties/*/title`, list indices as `*`) and what it is (`null`, `type`,
`required expandable`, ...). `ALLOWLIST` in `allowlist.py` names the known spec defects;
anything else fails the contract test.

OpenAPI 3.0's `nullable: true` (and Swagger's `x-nullable`) is read as "or null"; no spec
used here declares one, so every null the vendors document is an allowlisted defect.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft4Validator

SPECS_DIR = Path(__file__).parent / "specs"

#: connector -> the spec file its fake follows
SPEC_FILES = {
    "crm": "capsule_crm_v2.openapi.yml",
    "incident_analytics": "opsgenie.swagger.json",
    "hubspot_contacts": "hubspot_crm_contacts_v3.json",
}

#: connector -> (request path pattern, the spec's path): every path the connector or its
#: fake speaks that the spec describes
OPERATIONS: dict[str, list[tuple[str, str]]] = {
    "crm": [
        (r"/api/v2/parties", "/api/v2/parties"),
        (r"/api/v2/kases", "/api/v2/kases"),
        (r"/api/v2/opportunities", "/api/v2/opportunities"),
        (r"/api/v2/tasks", "/api/v2/tasks"),
    ],
    "incident_analytics": [
        (r"/v2/users", "/v2/users"),
        (r"/v2/teams", "/v2/teams"),
        (r"/v2/integrations", "/v2/integrations"),
        (r"/v1/incidents", "/v1/incidents/"),
        (r"/v2/alerts", "/v2/alerts"),
    ],
    "hubspot_contacts": [
        (r"/crm/v3/objects/contacts", "/crm/v3/objects/contacts"),
        (r"/crm/v3/objects/contacts/search", "/crm/v3/objects/contacts/search"),
    ],
}

#: connector -> (request path pattern, why no spec covers it): checked by nothing but
#: named here, so a path in neither table fails the test
NOT_IN_SPEC: dict[str, list[tuple[str, str]]] = {
    "crm": [
        (
            r"/api/v2/(users|pipelines|milestones|lostreasons|boards|categories|activitytypes"
            r"|stages|site)",
            "the community Capsule spec describes parties, kases, opportunities and tasks only",
        ),
        (r"/api/v2/parties/\d+/people", "not in the community Capsule spec"),
        (r"/api/v2/(parties|kases|opportunities)/deleted", "not in the community Capsule spec"),
        (r"/api/v2/(parties|kases|opportunities)/(tags|fields/definitions)", "not in the spec"),
    ],
    "incident_analytics": [
        (r"/v1/services", "Opsgenie's spec has no service API (it documents it separately)"),
    ],
    "hubspot_contacts": [],
}


@dataclass(frozen=True)
class Finding:
    """One violation: the connector, the operation (`GET /api/v2/tasks 200`, or
    `... request` for a request body), where in the body and what."""

    connector: str
    operation: str
    where: str
    what: str
    message: str

    def __str__(self) -> str:
        return f"{self.connector}: {self.operation}: {self.where}: {self.what} ({self.message})"


def _nullable(node: Any) -> Any:
    """The schema tree with `nullable: true` / `x-nullable: true` read as "or null" (and
    YAML's integer keys, the response statuses, as strings)."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {str(key): _nullable(value) for key, value in node.items()}
    if out.pop("nullable", False) is True or out.pop("x-nullable", False) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def load_spec(connector: str) -> dict[str, Any]:
    path = SPECS_DIR / SPEC_FILES[connector]
    text = path.read_text(encoding="utf-8")
    yml = path.suffix in (".yml", ".yaml")
    document = yaml.load(text, Loader=yaml.CSafeLoader) if yml else json.loads(text)
    return _nullable(document)  # type: ignore[no-any-return]


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _schema_of(spec: dict[str, Any], holder: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of a response or request body object (Swagger 2 or OpenAPI 3)."""
    holder = _resolve(spec, holder)
    if "schema" in holder:
        return holder["schema"]  # type: ignore[no-any-return]
    content = holder.get("content") or {}
    media = content.get("application/json") or next(iter(content.values()), None)
    return None if media is None else media.get("schema")


@cache
def _validator(connector: str, pointer: str) -> Draft4Validator:
    """A validator for the schema at `pointer` in the connector's spec, its `$ref`s
    inlined (a reference back into itself stays a `$ref`, resolved against the spec,
    which stays the root document)."""
    spec = load_spec(connector)
    schema = _inline(spec, {"$ref": pointer}, ())
    return Draft4Validator({**spec, **schema} if "$ref" in schema else schema)


def _inline(spec: dict[str, Any], node: Any, seen: tuple[str, ...]) -> Any:
    """`node` with every `$ref` into the spec replaced by its target (Draft 4: a `$ref`
    ignores its siblings), but one already being inlined above it."""
    if isinstance(node, list):
        return [_inline(spec, item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        if ref in seen:
            return {"$ref": ref}
        return _inline(spec, _resolve(spec, {"$ref": ref}), (*seen, ref))
    return {key: _inline(spec, value, seen) for key, value in node.items()}


def operation_of(connector: str, path: str) -> str | None:
    """The spec's path for a request path; None where the spec does not describe it
    (then `NOT_IN_SPEC` must name it)."""
    for pattern, spec_path in OPERATIONS[connector]:
        if re.fullmatch(pattern, path):
            return spec_path
    return None


def not_in_spec_reason(connector: str, path: str) -> str | None:
    for pattern, reason in NOT_IN_SPEC[connector]:
        if re.fullmatch(pattern, path):
            return reason
    return None


def _where(error: Any) -> str:
    return "/".join("*" if isinstance(part, int) else str(part) for part in error.absolute_path)


def _what(error: Any) -> str:
    if error.instance is None:
        return "null"
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        return f"required {missing.group(1) if missing else error.message}"
    return str(error.validator)


def _pointer(schema: dict[str, Any], fallback: str) -> str:
    ref = schema.get("$ref")
    return ref if isinstance(ref, str) and ref.startswith("#/") else fallback


def check(
    connector: str,
    method: str,
    url: str,
    status: int,
    body: Any,
    request_body: Any = None,
) -> list[Finding]:
    """Every violation of the spec by this exchange. A path the spec does not describe
    and `NOT_IN_SPEC` does not name is a finding; so is a status the operation documents
    no schema for."""
    path = urlsplit(url).path
    method = method.lower()
    spec_path = operation_of(connector, path)
    if spec_path is None:
        if not_in_spec_reason(connector, path) is not None:
            return []
        return [Finding(connector, f"{method.upper()} {path}", "", "unknown operation", "")]
    operation = f"{method.upper()} {spec_path} {status}"
    spec = load_spec(connector)
    spec_operation = spec["paths"][spec_path].get(method)
    if spec_operation is None:
        return [Finding(connector, operation, "", "unknown method", "")]
    findings: list[Finding] = []
    responses = spec_operation.get("responses") or {}
    response = responses.get(str(status)) or responses.get("default")
    schema = None if response is None else _schema_of(spec, response)
    if schema is None:
        findings.append(Finding(connector, operation, "", "no schema for the status", ""))
    else:
        status_key = str(status) if str(status) in responses else "default"
        at = f"#/paths/{_escape(spec_path)}/{method}/responses/{status_key}"
        pointer = _pointer(schema, _schema_pointer(spec, at))
        findings += _validate(connector, operation, pointer, body)
    if request_body is not None and "requestBody" in spec_operation:
        request_schema = _schema_of(spec, spec_operation["requestBody"])
        if request_schema is not None:
            at = f"#/paths/{_escape(spec_path)}/{method}/requestBody"
            pointer = _pointer(request_schema, _schema_pointer(spec, at))
            request_operation = f"{method.upper()} {spec_path} request"
            findings += _validate(connector, request_operation, pointer, request_body)
    return findings


def _escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def _schema_pointer(spec: dict[str, Any], response_pointer: str) -> str:
    """The pointer to the schema of a response or request body, following a `$ref` to a
    shared one."""
    node: Any = spec
    for part in response_pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if "$ref" in node:
        response_pointer = node["$ref"]
        node = _resolve(spec, node)
    if "schema" in node:
        return f"{response_pointer}/schema"
    content = node.get("content") or {}
    media = "application/json" if "application/json" in content else next(iter(content))
    return f"{response_pointer}/content/{_escape(media)}/schema"


def _validate(connector: str, operation: str, pointer: str, body: Any) -> list[Finding]:
    return [
        Finding(connector, operation, _where(error), _what(error), error.message[:200])
        for error in _validator(connector, pointer).iter_errors(body)
    ]
