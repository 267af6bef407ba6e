"""Ending a resource's paging early, with a warning, on an answer that means "no further".

Some APIs answer an error, not an empty page, once a caller pages past what they serve: a
search that pages only its first 1,000 results answers `400 maximum-results-exceeded`.
That is the end of what the API will give, not a failed sync: the pages already read are
kept, the resource ends, and a warning says the data was cut short.

`stop_paging_on` builds a dlt `response_actions` entry (matched by status and a substring
of the body), so it runs before the builder's error hook, which would otherwise turn the
answer into a `RequestFailedError`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException
from requests import Response

from shared.errors import redact_url

logger = logging.getLogger(__name__)


def stop_paging_on(
    status_code: int,
    content: str,
    reason: str,
    sensitive_params: Sequence[str] = (),
) -> dict[str, Any]:
    """A dlt response action: on `status_code` with `content` in the body, log a warning and
    end this resource's paging, keeping the pages already loaded.

    Args:
        status_code: the status the API answers when asked past what it serves.
        content: a substring of that answer's body that tells it apart from other errors
            with the same status (e.g. `maximum-results-exceeded`).
        reason: what the limit is, for the warning (e.g. "only the first 1,000 search
            results can be paged").
        sensitive_params: query parameter names to redact in the warning's URL.
    """

    def stop(response: Response, *args: Any, **kwargs: Any) -> None:
        logger.warning(
            "%s answered %s %s: %s; stopping here and keeping the pages already loaded",
            redact_url(response.url, sensitive_params),
            response.status_code,
            content,
            reason,
        )
        raise IgnoreResponseException

    return {"status_code": status_code, "content": content, "action": stop}
