"""HTTP/1.1 messages as the codec hands them out and takes them in: requests, responses, errors.

Rules:

1. A :class:`Request` is complete when the codec hands it out: request line, headers and the
   whole body (``Content-Length`` bytes). Header names are lower-cased; values are the octets
   the peer sent, decoded as ISO-8859-1 (RFC 9110 §5.5: "obs-text" survives unchanged) with the
   surrounding whitespace removed. The request target stays percent-encoded: only the
   application knows which ``%2F`` is a separator and which is a name (``/api/queues/%2F/q``).
2. :class:`HTTPError` is the one exception the codec raises on bad input. It is a
   ``ProtocolError`` (the connection cannot continue: after a framing error the next request's
   start is unknown) and carries the status code to answer with (400, 411, 413, 414, 417, 431,
   501, 505) and a text naming the fault.
3. :class:`ExpectContinue` is the codec's second event: the peer sent ``Expect: 100-continue``
   and waits for an interim ``100 Continue`` before sending the body (RFC 9110 §10.1.1).
"""

from __future__ import annotations

from typing import ClassVar

from minibroker.errors import ProtocolError
from minibroker.valueclass import valueclass

__all__ = [
    "REASONS", "ExpectContinue", "HTTPError", "Headers", "Request", "Response",
]

Headers = tuple[tuple[str, str], ...]

#: Reason phrases of the status codes minibroker sends (RFC 9110 §15).
REASONS: dict[int, str] = {
    100: "Continue",
    200: "OK",
    201: "Created",
    204: "No Content",
    301: "Moved Permanently",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class HTTPError(ProtocolError):
    """Bad input from the peer: answer with ``status`` (``text`` says why), then close."""

    reply_code: ClassVar[int] = 501  # as an AMQP-style error: a framing error

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status

    @property
    def reason(self) -> str:
        return REASONS.get(self.status, "Bad Request")

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.text}"


@valueclass(frozen=True)
class Request:
    method: str  #: as sent, case-sensitive (RFC 9110 §9.1): "GET", "PUT"...
    target: str  #: the request target as sent, percent-encoded: "/api/queues/%2F?x=1"
    headers: Headers  #: (lower-cased name, value) pairs in the order received
    body: bytes = b""
    http_version: str = "1.1"  #: "1.1" or "1.0"
    #: May the connection carry another request after this one's response?
    keep_alive: bool = True

    @property
    def path(self) -> str:
        """The target without its query, still percent-encoded."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The raw query string (after ``?``), ``""`` when there is none."""
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case); repeated headers are joined with ", "
        (RFC 9110 §5.3)."""
        wanted = name.lower()
        values = [value for key, value in self.headers if key == wanted]
        return ", ".join(values) if values else None


@valueclass(frozen=True)
class Response:
    status: int
    #: Extra headers; the codec adds ``Content-Length`` and ``Connection`` itself.
    headers: Headers = ()
    body: bytes = b""
    #: Close the connection after this response (the codec also closes when the request
    #: asked for it, or after an :class:`HTTPError`).
    close: bool = False


@valueclass(frozen=True)
class ExpectContinue:
    """The request being received waits for ``100 Continue`` before sending its body:
    answer with ``codec.send(Response(100))``, or with a final response to refuse it."""

    target: str

