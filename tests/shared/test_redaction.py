"""shared.redaction: secrets masked by value in messages, exception chains and library logs."""

from __future__ import annotations

import base64
import copy
import json
import logging
import pickle
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from shared.http.auth import http_basic
from shared.http.credentials import attach_redactor
from shared.redaction import MASK, Redactor, active_redactors, watching_redactors

SECRET = "tok/9a8b+7c6d"


def test_every_form_of_a_secret_is_masked_whatever_surrounds_it() -> None:
    redactor = Redactor([f" {SECRET}\n"])
    encoded = base64.b64encode(SECRET.encode()).decode()
    text = (
        f"Bearer {SECRET}; url ?k={quote(SECRET, safe='')}&j={quote_plus(SECRET)}; "
        f"b64 {encoded}; with newline {SECRET}\n"
    )
    assert redactor.redact(text) == (
        # the value as configured (space and line break included) is masked whole
        f"Bearer {MASK}; url ?k={MASK}&j={MASK}; b64 {MASK}; with newline{MASK}"
    )
    assert redactor.redact(text, mask="REDACTED").count("REDACTED") == 5


def test_a_secret_containing_another_is_masked_whole() -> None:
    redactor = Redactor(["abcd1234", "abcd1234-longer", None, ""])
    assert redactor.redact("x abcd1234-longer y abcd1234") == f"x {MASK} y {MASK}"


def test_a_short_secret_is_masked_only_where_it_stands_as_a_whole_token() -> None:
    """A password `user` must not mask `username` or `users`, and never shows alone."""
    redactor = Redactor(["user", "ab"])
    assert (
        redactor.redact("username=user; users: ab, abc, (user)")
        == f"username={MASK}; users: {MASK}, abc, ({MASK})"
    )
    assert redactor.contains_secret("key ab") and not redactor.contains_secret("username abc")


#: holds what every encoding changes: `/`, `"`, `\`, a regex metacharacter, non-ASCII
ODD_SECRET = 'tok/9a"b\\c+(d)*é'


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(ODD_SECRET, id="raw"),
        pytest.param(json.dumps(ODD_SECRET)[1:-1], id="json-ascii"),
        pytest.param(json.dumps(ODD_SECRET, ensure_ascii=False)[1:-1], id="json-utf8"),
        pytest.param(json.dumps(ODD_SECRET)[1:-1].replace("/", "\\/"), id="json-slash"),
        pytest.param(quote(ODD_SECRET, safe=""), id="url"),
        pytest.param(quote_plus(ODD_SECRET), id="url-plus"),
        pytest.param(base64.b64encode(ODD_SECRET.encode()).decode(), id="base64"),
        pytest.param(repr(ODD_SECRET)[1:-1], id="python-escaped"),
    ],
)
def test_every_encoded_form_of_a_secret_is_masked(form: str) -> None:
    redactor = Redactor([ODD_SECRET])
    assert redactor.redact(f"echo: {form}!") == f"echo: {MASK}!"
    assert redactor.contains_secret(f"<{form}>")


def test_a_token_with_a_line_break_is_masked_as_http_client_prints_it() -> None:
    redactor = Redactor(["tok-1234567\r\nX-Evil: 1"])
    printed = repr(b"Bearer tok-1234567\r\nX-Evil: 1")
    assert "tok-1234567" not in redactor.redact(f"Invalid header value {printed}")


def test_basic_credentials_are_masked_in_their_header_form() -> None:
    redactor = Redactor()
    attach_redactor(http_basic("user", "pa55word-xyz"), redactor)
    header = base64.b64encode(b"user:pa55word-xyz").decode()
    assert redactor.redact(f"Basic {header}") == f"Basic {MASK}"


def test_copies_share_one_registry_so_a_token_registered_by_a_copy_is_known() -> None:
    redactor = Redactor(["first-secret"])
    deep, shallow = copy.deepcopy({"r": redactor})["r"], copy.copy(redactor)
    deep.register("token-from-a-copy")
    assert deep is redactor and shallow is redactor
    assert redactor.redact("token-from-a-copy") == MASK
    restored = pickle.loads(pickle.dumps(redactor))  # a lock cannot be pickled: dropped
    restored.register("after-unpickling")
    assert restored.redact("first-secret after-unpickling") == f"{MASK} {MASK}"


class CarriesUrl(Exception):
    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


def test_scrub_exception_masks_the_whole_cause_and_context_chain_in_place() -> None:
    redactor = Redactor([SECRET])
    try:
        try:
            try:
                raise CarriesUrl(f"GET /x?k={quote(SECRET, safe='')}", f"/x?k={SECRET}")
            except CarriesUrl as inner:
                raise ValueError("wrapped") from inner
        except ValueError:
            raise RuntimeError(f"Invalid header value b'Bearer {SECRET}\\n'") from None
    except RuntimeError as raised:
        outer = raised
    outer.add_note(f"note {SECRET}")
    assert redactor.scrub_exception(outer) is outer
    assert str(outer) == f"Invalid header value b'Bearer {MASK}\\n'"
    assert outer.__notes__ == [f"note {MASK}"]
    middle = outer.__context__
    assert isinstance(middle, ValueError) and str(middle) == "wrapped"
    inner = middle.__cause__
    assert isinstance(inner, CarriesUrl)
    assert str(inner) == f"GET /x?k={MASK}" and inner.url == f"/x?k={MASK}"


def test_scrub_exception_masks_a_secret_inside_an_exception_argument() -> None:
    redactor = Redactor([SECRET])
    exc = ConnectionError(CarriesUrl(f"pool: /x?api_key={SECRET}", ""))
    redactor.scrub_exception(exc)
    assert str(exc) == f"pool: /x?api_key={MASK}"


@pytest.mark.parametrize(
    "logger_name", ["urllib3.connectionpool", "urllib3.util.retry", "dlt", "shared.http.session"]
)
def test_an_active_redactor_masks_its_secrets_in_library_loggers(
    logger_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger(logger_name)  # exists before any source runs (module import)
    redactor = Redactor([SECRET])
    redactor.activate()
    # the logger's own level too: dlt sets its logger's level when a pipeline starts
    caplog.set_level(logging.DEBUG, logger=logger_name)
    logger.debug('"GET /v1/events?api_key=%s HTTP/1.1" 200', quote(SECRET, safe=""))
    try:
        raise OSError(f"cannot reach ?k={SECRET}")
    except OSError:
        logger.exception("failed")
    assert caplog.records and all(SECRET not in r.getMessage() for r in caplog.records)
    assert quote(SECRET, safe="") not in caplog.text and SECRET not in caplog.text
    assert f"api_key={MASK}" in caplog.text and f"cannot reach ?k={MASK}" in caplog.text
    del redactor


def test_an_unactivated_redactor_leaves_library_logs_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    Redactor(["never-activated-value"])
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug("x never-activated-value")
    assert "x never-activated-value" in caplog.text


def test_a_redactor_stops_masking_once_its_source_is_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import gc

    redactor = Redactor(["short-lived-secret"])
    redactor.activate()
    assert redactor in active_redactors()
    del redactor
    gc.collect()
    assert not any(r.contains_secret("short-lived-secret") for r in active_redactors())


def test_watching_collects_the_redactors_activated_inside_the_block() -> None:
    before = Redactor(["before-the-block"])
    before.activate()
    with watching_redactors() as seen:
        inside = Redactor(["inside-the-block"])
        inside.activate()
        inside.activate()
    after = Redactor(["after-the-block"])
    after.activate()
    assert seen == [inside]


FILTERS_LEAVE = """
import gc, logging
from shared.redaction import Redactor, LIBRARY_LOGGERS

def filtered():
    return sorted(n for n in LIBRARY_LOGGERS if logging.getLogger(n).filters)

before = filtered()
first, second = Redactor(["s3cr3t-value-1"]), Redactor(["s3cr3t-value-2"])
first.activate()
second.activate()
during = filtered()
del first
gc.collect()
one_left = filtered()
del second
gc.collect()
print(before, during == sorted(LIBRARY_LOGGERS), one_left == during, filtered())
"""


def test_the_library_loggers_filters_leave_with_the_last_active_redactor() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FILTERS_LEAVE],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert result.stdout.split("\n")[0] == "[] True True []", result.stderr
