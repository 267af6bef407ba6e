"""Is this response a page of data? The check every resource's pages pass.

A server under load, a proxy or a half-deployed API answers `200` with things that are
not data: `{}`, `{"users": null}`, an object where the list should be, a list of strings,
an HTML error page, JSON cut short. dlt's `rest_api` reads each of them as an empty or
bogus page, and a sync "succeeds" with rows missing while its cursor moves past them.

`PageCheck` says what a resource's page must hold: its data selector must find a list of
objects (an empty list is fine), or, for a resource the API documents as one object
(crm `site`), one object. The builder attaches one to every resource as a dlt response
action; `ConnectorSession` finds it among the request's hooks and runs it on every 2xx
answer *inside* its retry loop, so a bad page is retried like a 5xx and, when the retries
run out, fails the sync with one `InvalidResponseError` naming connector, resource,
redacted URL, status, content type and a short redacted excerpt of the body.

The JSON is parsed once, here; the parsed document is cached on the response, so dlt's
`extract_response` and the paginators (`response.json()`) do not parse it again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from dlt.common import jsonpath
from requests import Response

from shared._dlt_compat import find_in_response_hooks
from shared.errors import InvalidResponseError, redact_query_values, redact_url
from shared.redaction import Redactor

#: characters of the body quoted in an error
EXCERPT_CHARS = 200
#: set on a response the session has checked: the hook then has nothing left to do
CHECKED = "_page_checked"
#: set on a response the check rejected: the reason, for the retry loop and the error
PROBLEM = "page_problem"

#: the charset parameter of a Content-Type header
CHARSET = re.compile(r"charset=([^;\s]+)", re.IGNORECASE)


class NotJson(ValueError):
    """The body does not parse as JSON; the message says why in a few words."""


@dataclass(frozen=True)
class PageCheck:
    """What one resource's pages must hold, and the error when one does not.

    It is also a response hook (a dlt `response_actions` entry): on a response the
    session has not checked already (another session, a test), calling it checks and
    raises `InvalidResponseError` at once.

    Args:
        connector: the connector's name, for messages.
        resource: the resource (table) the pages belong to.
        data_selector: the dlt data selector (JSON path) of the records, or None when the
            whole body is the data.
        single_object: the selector finds one object (the API documents one), not a list.
        sensitive_params: query parameter names to redact from URLs and body excerpts.
        redactor: the source's redactor; every message passes through it.
    """

    connector: str
    resource: str
    data_selector: jsonpath.TJsonPath | None = None
    single_object: bool = False
    sensitive_params: Sequence[str] = ()
    redactor: Redactor = field(default_factory=Redactor, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.data_selector, str):
            # parsing a JSON path costs about a millisecond; a check runs on every page
            object.__setattr__(self, "data_selector", jsonpath.compile_path(self.data_selector))

    def __deepcopy__(self, memo: dict[int, Any]) -> PageCheck:
        # immutable, and it holds the source's one redactor: dlt deep-copies resource
        # configs, and every copy must keep masking the same secrets
        return self

    def problem(self, response: Response) -> str | None:
        """What is wrong with `response` as a page, or None when it is one.

        Parses the body once and caches the document on the response (`response.json()`
        returns it from then on); the outcome is remembered on the response too.
        """
        setattr(response, CHECKED, True)
        try:
            document = parse_json(response)
        except NotJson as error:
            return self._remember(response, str(error))
        cache_json(response, document)
        return self._remember(response, self._shape_problem(document))

    def error(self, response: Response, problem: str) -> InvalidResponseError:
        """The one-line error for a response that is not a page."""
        attempts = getattr(response, "attempts", None)
        content_type = response.headers.get("Content-Type") or "no content type"
        url = redact_url(response.url or "", self.sensitive_params)
        method = response.request.method if response.request is not None else "GET"
        message = (
            f"{self.connector}: resource `{self.resource}`: {method} {url} answered "
            f"{response.status_code} ({content_type}) with {problem}"
            + (f", after {attempts} attempt(s)" if attempts else "")
            + ". That is not a page of data: the API (or a proxy in front of it) is failing "
            "or its format changed; nothing of this run was loaded. "
            f"Body: {self.excerpt(response)}"
        )
        return InvalidResponseError(
            self.redactor.redact(message),
            connector=self.connector,
            resource=self.resource,
            status_code=response.status_code,
        )

    def excerpt(self, response: Response, limit: int = EXCERPT_CHARS) -> str:
        """The start of the body as one line of text, secrets masked."""
        body = response.content or b""
        # read past the cut by the longest secret form, so one across it is still masked
        read = limit * 4 + self.redactor.longest * 4
        text = redact_query_values(
            body[:read].decode("utf-8", errors="replace"), self.sensitive_params
        )
        text = self.redactor.excerpt(text, limit)
        if not text:
            return "(empty)"
        return repr(text + ("…" if len(body) > read and not text.endswith("…") else ""))

    def __call__(self, response: Response, *args: Any, **kwargs: Any) -> None:
        if not 200 <= response.status_code < 300:
            return
        if getattr(response, CHECKED, False):
            problem = getattr(response, PROBLEM, None)
        else:
            problem = self.problem(response)
        if problem is not None:
            raise self.error(response, problem)

    # -- the shape ---------------------------------------------------------------------
    def _shape_problem(self, document: Any) -> str | None:
        if self.data_selector is None:
            # dlt finds the records itself (`detect_data_selector`): only a body that is
            # neither an object nor a list of objects is certainly not a page
            if isinstance(document, dict):
                return None
            return (
                _non_objects(document, "the body")
                if isinstance(document, list)
                else (f"the body {_kind(document)}, not records")
            )
        found = jsonpath.find_values(self.data_selector, document)
        where = f"`{self.data_selector}`"
        if not found:
            return f"no {where} in the body"
        if len(found) > 1:
            # a selector with wildcards picks the records itself
            return _non_objects(found, where)
        (data,) = found
        if self.single_object:
            if isinstance(data, dict):
                return None
            return f"{where} {_kind(data)}, not the one object this resource is"
        if isinstance(data, list):
            return _non_objects(data, where)
        return f"{where} {_kind(data)}, not a list of objects"

    @staticmethod
    def _remember(response: Response, problem: str | None) -> str | None:
        setattr(response, PROBLEM, problem)
        return problem


def _non_objects(rows: Sequence[Any], where: str) -> str | None:
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            return f"{where} holding {_kind(row)[3:]} at position {position}, not an object"
    return None


def _kind(value: Any) -> str:
    """`is null`, `is an object`, `is a string` ... for messages."""
    if value is None:
        return "is null"
    if isinstance(value, bool):
        return "is a boolean"
    if isinstance(value, Mapping):
        return "is an object"
    if isinstance(value, list):
        return "is a list"
    if isinstance(value, str):
        return "is a string"
    if isinstance(value, (int, float)):
        return "is a number"
    return f"is a {type(value).__name__}"


def parse_json(response: Response) -> Any:
    """The body as JSON, strictly: invalid UTF-8, JSON nested too deeply for Python and
    anything that is not JSON raise `NotJson` (requests' `response.json()` would replace
    bad bytes silently, or raise `RecursionError` from deep inside the library)."""
    body = response.content
    if not body or not body.strip():
        raise NotJson("an empty body, not JSON")
    # only a charset the server names counts: requests assumes ISO-8859-1 for any text/*
    # type without one, which would garble UTF-8 JSON
    charset = CHARSET.search(response.headers.get("Content-Type") or "")
    encoding = charset.group(1).strip("\"'").lower() if charset else "utf-8"
    try:
        if encoding.startswith("utf"):
            try:
                # orjson parses plain UTF-8 JSON about twice as fast; whatever it refuses
                # (a BOM, UTF-16/32, NaN, integers beyond 64 bits, bad bytes, deep
                # nesting) goes to the json module, which decides and words the error
                return orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
            # bytes: the json module detects UTF-8/16/32 (and a BOM) itself, strictly
            return json.loads(body)
        return json.loads(body.decode(encoding))
    except RecursionError:
        raise NotJson("JSON nested too deeply to parse") from None
    except UnicodeDecodeError as error:
        raise NotJson(f"a body that is not valid {error.encoding.upper()} text") from None
    except LookupError:
        raise NotJson(f"a body in an unknown text encoding ({encoding})") from None
    except ValueError as error:
        what = "JSON cut short" if "Unterminated" in str(error) or _truncated(error) else None
        reason = getattr(error, "msg", None) or str(error)
        raise NotJson(f"{what or 'a body that is not JSON'} ({reason})") from None


def _truncated(error: ValueError) -> bool:
    position = getattr(error, "pos", None)
    document = getattr(error, "doc", None)
    return position is not None and document is not None and position >= len(document.rstrip())


def cache_json(response: Response, document: Any) -> None:
    """Make `response.json()` return `document` without parsing the body again."""

    def cached(**kwargs: Any) -> Any:
        return document

    json_method: Callable[..., Any] = cached
    response.json = json_method  # type: ignore[method-assign]


def find_page_check(hooks: Mapping[str, Any] | None) -> PageCheck | None:
    """The `PageCheck` among a request's response hooks, if any (itself, or inside the
    hook dlt's `rest_api` makes of a `response_actions` entry)."""
    return find_in_response_hooks(hooks, PageCheck)
