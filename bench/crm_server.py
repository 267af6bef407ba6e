"""The CRM fake at benchmark scale, served from its own process.

`tests/fakes/crm.py` materialises every row in memory; at a million parties that would
cost gigabytes and minutes before the first request. `LazyCrmFake` keeps the fake's
contract (bearer auth, `Link` paging, `since`, rate-limit headers) but builds each page
of parties when it is asked for, from the same `make_party(i)`.

`python -m bench.serve crm --parties N` serves it from a separate process.
"""

from __future__ import annotations

import json
from datetime import timedelta

from werkzeug.wrappers import Request, Response

from tests.fakes.crm import EPOCH, CrmFake, make_party, parse_stamp

# make_party(i) is updated at EPOCH + 1 hour + i minutes
FIRST_UPDATE = EPOCH + timedelta(hours=1)


class LazyCrmFake(CrmFake):
    """The CRM fake with `parties` parties, generated page by page on request.

    Args:
        parties: how many parties `/api/v2/parties` serves.
        latency: seconds every response is delayed.
        pregenerate_per_page: build and keep every page of this size up front, so that
            a throughput measurement times the client rather than the fake's JSON encoding.
    """

    def __init__(
        self, parties: int, latency: float = 0.0, pregenerate_per_page: int | None = None
    ) -> None:
        super().__init__(scale=1, latency=latency)
        self.party_count = parties
        self.bodies: dict[tuple[int, int], bytes] = {}
        if pregenerate_per_page:
            for start in range(0, parties, pregenerate_per_page):
                self.page_body(start, min(start + pregenerate_per_page, parties), keep=True)

    def page_body(self, start: int, stop: int, keep: bool = False) -> bytes:
        body = self.bodies.get((start, stop))
        if body is None:
            parties = [make_party(i) for i in range(start, stop)]
            body = json.dumps({"parties": parties}).encode()
            if keep:
                self.bodies[(start, stop)] = body
        return body

    def list_entities(self, request: Request, key: str) -> Response:
        if key != "parties":
            return super().list_entities(request, key)
        first = 0
        since = request.args.get("since")
        if since:
            minutes = (parse_stamp(since) - FIRST_UPDATE) // timedelta(minutes=1)
            first = max(0, minutes + 1)
        page = max(1, int(request.args.get("page", 1)))
        per_page = min(100, max(1, int(request.args.get("perPage", 50))))
        start = first + (page - 1) * per_page
        stop = min(start + per_page, self.party_count)
        body = self.page_body(start, stop)
        links = []
        origin = request.host_url.rstrip("/")
        if stop < self.party_count:
            links.append(f'<{self.page_url(request, origin, page + 1, per_page)}>; rel="next"')
        if page > 1:
            links.append(f'<{self.page_url(request, origin, page - 1, per_page)}>; rel="prev"')
        response = Response(body, mimetype="application/json")
        for header, value in self.common_headers().items():
            response.headers[header] = value
        if links:
            response.headers["Link"] = ", ".join(links)
        return response
