"""What a run sent over HTTP, counted from the session's request log: requests, retries,
answers by status, and the last few answers (method, redacted URL, status, seconds).

Every connector's requests go through `shared.http.session.ConnectorSession`, which
writes one DEBUG record per request sent, per answer and per retry to its request
logger while a handler asks for them; a replay's requests too. Only redacted URLs are
kept: a credential in a query never reaches a count or a line printed from here.

    with RequestLog() as log:
        pipeline.run(source)
    print(log.requests, log.retries, log.statuses[429])
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from shared.http import session

#: how many answers a log keeps, the latest last (a check reads one or two)
KEPT_ANSWERS = 8


@dataclass(frozen=True)
class Answer:
    """One answer the API gave: the request's method and redacted URL, its status, and
    the seconds the attempt took."""

    method: str
    url: str
    status: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.method} {self.url} {self.status} in {self.seconds:.2f} s"


class RequestLog(logging.Handler):
    """Counts the requests, retries and answers every connector session sends or gets
    while it is attached (as a context manager, or `attach` and `detach`)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.requests = 0
        self.retries = 0
        self.statuses: Counter[int] = Counter()
        self.answers: deque[Answer] = deque(maxlen=KEPT_ANSWERS)
        #: the method and redacted URL of the latest request sent, answered or not
        self.last_request: tuple[str, str] | None = None
        self._level: int | None = None

    @property
    def rate_limited(self) -> int:
        """How many answers were a 429 (too many requests)."""
        return self.statuses[429]

    def emit(self, record: logging.LogRecord) -> None:
        args: Any = record.args or ()
        if record.msg == session.REQUEST_SENT:
            self.requests += 1
            self.last_request = (str(args[1]), str(args[2]))
        elif record.msg == session.ANSWER_RECEIVED:
            _, method, url, status, seconds = args
            self.statuses[int(status)] += 1
            self.answers.append(Answer(str(method), str(url), int(status), float(seconds)))
        elif record.msg == session.RETRY_SCHEDULED:
            self.retries += 1

    def attach(self) -> None:
        """Start counting: the request logger writes its DEBUG records to this log."""
        logger = session.request_logger
        if self._level is None:
            self._level = logger.level
        logger.setLevel(logging.DEBUG)
        if self not in logger.handlers:
            logger.addHandler(self)

    def detach(self) -> None:
        """Stop counting, and give the request logger back the level it had."""
        logger = session.request_logger
        logger.removeHandler(self)
        if self._level is not None:
            logger.setLevel(self._level)
            self._level = None

    def __enter__(self) -> RequestLog:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()
