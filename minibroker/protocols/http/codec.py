"""The sans-IO HTTP/1.1 server codec: bytes in, requests out; responses in, bytes out.

Bytes go in with :meth:`HTTPCodec.receive_data`, requests come out of
:meth:`~HTTPCodec.next_frame` (or :meth:`~HTTPCodec.frames`), responses go in to
:meth:`~HTTPCodec.send` and bytes come out — the shape of the other codecs, so the session
pipeline drives all three alike. The codec never touches a socket or a clock (h11 style), and
speaks only what the management API needs: RFC 9112 message framing, strictly.

Rules:

1. Only :class:`HTTPError` escapes, whatever the bytes: 400 for anything malformed (bare CR or
   LF, obsolete line folding, a space before a header's colon, control characters, a missing or
   repeated ``Host`` in HTTP/1.1, conflicting ``Content-Length``), 414 for a request line over
   ``max_request_line``, 431 for more than ``max_header_count`` headers or a header section over
   ``max_header_bytes``, 413 for a ``Content-Length`` over ``max_body`` (refused as soon as the
   headers are read, before the body is buffered), 411 for a chunked upload (send
   ``Content-Length``), 501 for any other transfer coding, 417 for an ``Expect`` other than
   ``100-continue``, 505 for an HTTP version other than 1.0 and 1.1.
2. Requests come out in the order received (pipelining); responses must be sent in the same
   order, one per request (an :class:`ExpectContinue` waits until every earlier request is
   answered: call ``next_frame`` again after ``send``). Requests before a bad one come out
   first; the call after them raises, and every later call raises the same error. After an
   error, answer it with ``send(Response(err.status, ...))`` (the codec adds
   ``Connection: close``) and close.
3. Keep-alive follows RFC 9112 §9.3: HTTP/1.1 persists unless either side says
   ``Connection: close``; HTTP/1.0 only with ``Connection: keep-alive``. Nothing after a
   request that ends the connection is parsed; :attr:`must_close` says when to close.
4. The buffer never holds more than one request's head (bounded by the limits) plus its body
   (bounded by ``max_body``), plus whatever complete requests the caller has not taken yet.
5. ``HEAD`` responses carry the ``Content-Length`` of the body a ``GET`` would get, and no body.
"""

from __future__ import annotations

import re
from collections import deque

from minibroker.protocols.http.messages import (
    REASONS,
    ExpectContinue,
    Headers,
    HTTPError,
    Request,
    Response,
)
from minibroker.valueclass import valueclass

__all__ = ["DEFAULT_LIMITS", "HTTPCodec", "HTTPLimits"]


@valueclass(frozen=True)
class HTTPLimits:
    #: Longest request line (method, target, version), without its CRLF.
    max_request_line: int = 8192
    max_header_count: int = 100
    #: Largest header section (every header line with its CRLF), after the request line.
    max_header_bytes: int = 16384
    #: Largest request body (a definitions import is the largest the API takes).
    max_body: int = 10 * 1024 * 1024


DEFAULT_LIMITS = HTTPLimits()

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
_LOOKS_LIKE_REQUEST = re.compile(_TOKEN + rb" [\x21-\x7e]")
_HEADER_NAME = re.compile(_TOKEN)
#: Control characters other than HTAB may not appear in a field value (RFC 9110 §5.5).
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_ABSOLUTE = re.compile(r"https?://[^/?#]*", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]{1,19}")


@valueclass()
class _Head:
    """A request whose head is parsed and whose body is still arriving."""

    method: str
    target: str
    version: str
    headers: Headers
    length: int
    keep_alive: bool
    expect_continue: bool


class HTTPCodec:
    """The server side of one HTTP/1.1 connection."""

    def __init__(self, limits: HTTPLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self._scanned = 0  # the head search resumes here (no quadratic rescans)
        self._head: _Head | None = None
        self._continue_due = False
        #: (method, keep_alive, version) of each request handed out and not yet answered
        self._outstanding: deque[tuple[str, bool, str]] = deque()
        self._error: HTTPError | None = None
        self._eof = False
        self._stopped = False  # a request that ends the connection was handed out
        self._must_close = False

    # -- state ------------------------------------------------------------------------------

    @property
    def must_close(self) -> bool:
        """A response that ends the connection was sent: close once it is written."""
        return self._must_close

    @property
    def closed(self) -> bool:
        """The peer ended the stream and every request it sent has been handed out."""
        return self._eof and not self._buffer and self._head is None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out in a request."""
        return len(self._buffer)

    @property
    def outstanding(self) -> int:
        """Requests handed out and not yet answered."""
        return len(self._outstanding)

    # -- input ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the peer; ``b""`` means the peer closed its side."""
        if self._eof:
            if data:
                self._fail(HTTPError(400, "data received after the end of the stream"))
            return
        if not data:
            self._eof = True
        elif not self._stopped:
            self._buffer += data

    def next_frame(self) -> Request | ExpectContinue | None:
        """The next complete request (or a request head waiting for ``100 Continue``), or
        ``None`` when more bytes are needed or the connection is ending."""
        if self._error is not None:
            raise self._error
        if self._stopped:
            return None
        try:
            return self._next()
        except HTTPError as err:
            self._fail(err)
            raise

    def frames(self) -> list[Request | ExpectContinue]:
        """Every complete request buffered, in order; an error after them is raised by the
        next call (rule 2)."""
        out: list[Request | ExpectContinue] = []
        while True:
            try:
                event = self.next_frame()
            except HTTPError:
                if out:
                    return out
                raise
            if event is None:
                return out
            out.append(event)
            if isinstance(event, ExpectContinue):
                return out

    def _fail(self, err: HTTPError) -> None:
        self._error = err
        self._buffer.clear()
        self._head = None

    # -- parsing ----------------------------------------------------------------------------

    def _next(self) -> Request | ExpectContinue | None:
        head = self._head
        if head is None:
            head = self._parse_head()
            if head is None:
                if self._eof and self._buffer:
                    raise HTTPError(400, "the connection closed in the middle of a request")
                return None
            self._head = head
            self._continue_due = head.expect_continue and head.length > 0
        buffer = self._buffer
        if len(buffer) < head.length:
            if self._eof:
                raise HTTPError(400, f"the connection closed after {len(buffer)} of "
                                     f"{head.length} body bytes")
            if self._continue_due and not self._outstanding:
                self._continue_due = False  # rule 2: never ahead of an earlier response
                return ExpectContinue(head.target)
            return None
        body = bytes(buffer[: head.length])
        del buffer[: head.length]
        self._head = None
        self._outstanding.append((head.method, head.keep_alive, head.version))
        if not head.keep_alive:
            self._stopped = True
            buffer.clear()
        return Request(head.method, head.target, head.headers, body, head.version,
                       head.keep_alive)

    def _parse_head(self) -> _Head | None:
        buffer, limits = self._buffer, self.limits
        # RFC 9112 §2.2: "a server [...] SHOULD ignore at least one empty line (CRLF)
        # received prior to the request-line".
        skip = 0
        while buffer.startswith(b"\r\n", skip):
            skip += 2
        if skip:
            del buffer[:skip]
            self._scanned = max(0, self._scanned - skip)
        most = limits.max_request_line + limits.max_header_bytes + 4
        end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3), most)
        if end < 0:
            self._check_partial_head()
            self._scanned = len(buffer)
            return None
        head = bytes(buffer[:end])
        del buffer[: end + 4]
        self._scanned = 0
        return self._head_of(head)

    def _check_partial_head(self) -> None:
        """Refuse an incomplete head as soon as it breaks a rule (no waiting for more)."""
        buffer, limits = self._buffer, self.limits
        start = self._scanned
        while (lf := buffer.find(b"\n", start)) >= 0:
            if lf == 0 or buffer[lf - 1] != 0x0D:
                raise HTTPError(400, "a line ends in a bare LF: lines end with CRLF")
            start = lf + 1
        line_end = buffer.find(b"\r\n", 0, limits.max_request_line + 2)
        if line_end < 0:
            if len(buffer) > limits.max_request_line + 1:
                raise self._long_line(bytes(buffer[:64]))
            return
        if len(buffer) - line_end - 2 > limits.max_header_bytes:
            raise HTTPError(431, f"the header section is over {limits.max_header_bytes} bytes")

    def _long_line(self, start: bytes) -> HTTPError:
        if _LOOKS_LIKE_REQUEST.match(start):
            return HTTPError(414, f"the request line is over {self.limits.max_request_line} "
                                  "bytes")
        return HTTPError(400, "this is not an HTTP request line")

    def _head_of(self, head: bytes) -> _Head:
        limits = self.limits
        line, _, rest = head.partition(b"\r\n")
        if len(line) > limits.max_request_line:
            raise self._long_line(line[:64])
        if len(rest) + 2 > limits.max_header_bytes:
            raise HTTPError(431, f"the header section is over {limits.max_header_bytes} bytes")
        if b"\r" in line or b"\n" in line:
            raise HTTPError(400, "a bare CR or LF in the request line")
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            raise HTTPError(400, f"malformed request line {_show(line)}")
        method = match[1].decode("ascii")
        major, minor = match[3], match[4]
        if (major, minor) not in ((b"1", b"1"), (b"1", b"0")):
            raise HTTPError(505, f"HTTP/{major.decode()}.{minor.decode()} is not supported: "
                                 "use HTTP/1.1")
        version = "1.1" if minor == b"1" else "1.0"
        target = _origin_form(method, match[2].decode("ascii"))
        lines = rest.split(b"\r\n") if rest else []
        if len(lines) > limits.max_header_count:
            raise HTTPError(431, f"more than {limits.max_header_count} header fields")
        headers = tuple(_header(line) for line in lines)
        return _framing(method, target, version, headers, limits)

    # -- output -----------------------------------------------------------------------------

    def send(self, response: Response) -> bytes:
        """The bytes of ``response`` to the oldest unanswered request (``100 Continue`` for a
        request waiting to send its body when ``response.status`` is 100)."""
        status = response.status
        if not 100 <= status <= 999:
            raise ValueError(f"status {status} is not a three-digit code")
        out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"]
        for name, value in response.headers:
            if not _HEADER_NAME.fullmatch(name.encode("latin-1")) or _BAD_VALUE.search(
                    value.encode("latin-1")):
                raise ValueError(f"invalid response header {name!r}: {value!r}")
            out.append(f"{name}: {value}\r\n")
        if status < 200:
            out.append("\r\n")
            return "".join(out).encode("latin-1")
        if self._outstanding:
            method, keep_alive, version = self._outstanding.popleft()
        else:  # an error, or a refusal of a body not read (ExpectContinue): close after it
            method, keep_alive, version = "", False, "1.1"
        close = response.close or not keep_alive or self._error is not None
        body = response.body
        if status not in (204, 304):
            out.append(f"Content-Length: {len(body)}\r\n")
        if close:
            out.append("Connection: close\r\n")
            self._must_close = self._stopped = True
            self._buffer.clear()
            self._head = None
        elif version == "1.0":
            out.append("Connection: keep-alive\r\n")
        out.append("\r\n")
        data = "".join(out).encode("latin-1")
        if method == "HEAD" or status in (204, 304):
            return data
        return data + body


def _show(line: bytes) -> str:
    text = line[:80].decode("latin-1")
    return repr(text + ("..." if len(line) > 80 else ""))


def _origin_form(method: str, target: str) -> str:
    """The target as origin-form (``/path?query``), RFC 9112 §3.2."""
    if "#" in target:
        raise HTTPError(400, "the request target may not contain a fragment ('#')")
    if target.startswith("/"):
        return target
    if target == "*" and method == "OPTIONS":
        return target
    absolute = _ABSOLUTE.match(target)
    if absolute is not None:  # §3.2.2: a server MUST accept the absolute form
        rest = target[absolute.end():]
        return rest if rest.startswith("/") else "/" + rest
    raise HTTPError(400, f"request target {target[:80]!r} is not a path")


def _header(line: bytes) -> tuple[str, str]:
    if line[:1] in (b" ", b"\t"):
        raise HTTPError(400, "obsolete line folding in the header section")
    name, colon, value = line.partition(b":")
    if not colon or not _HEADER_NAME.fullmatch(name):
        raise HTTPError(400, f"malformed header line {_show(line)}")
    value = value.strip(b" \t")
    if _BAD_VALUE.search(value):
        raise HTTPError(400, f"a control character in header {name.decode('ascii')!r}")
    return name.decode("ascii").lower(), value.decode("latin-1")


def _framing(
    method: str, target: str, version: str, headers: Headers, limits: HTTPLimits
) -> _Head:
    """How the body is framed and whether the connection persists (RFC 9112 §6, §9)."""
    hosts = [value for name, value in headers if name == "host"]
    if version == "1.1" and len(hosts) != 1:
        raise HTTPError(400, "an HTTP/1.1 request needs exactly one Host header")
    lengths = {value for name, value in headers if name == "content-length"}
    codings = [value for name, value in headers if name == "transfer-encoding"]
    if codings:
        if lengths:
            raise HTTPError(400, "both Transfer-Encoding and Content-Length")
        if ",".join(codings).strip().lower() == "chunked":
            raise HTTPError(411, "chunked uploads are not accepted: send Content-Length")
        raise HTTPError(501, f"transfer coding {', '.join(codings)!r} is not implemented")
    length = 0
    if lengths:
        if len(lengths) > 1:
            raise HTTPError(400, "conflicting Content-Length headers")
        text = lengths.pop()
        if not _DIGITS.fullmatch(text):
            raise HTTPError(400, f"invalid Content-Length {text[:40]!r}")
        length = int(text)
        if length > limits.max_body:
            raise HTTPError(413, f"the body ({length} bytes) is over the limit of "
                                 f"{limits.max_body} bytes")
    tokens = {token.strip().lower() for name, value in headers if name == "connection"
              for token in value.split(",")}
    keep_alive = "close" not in tokens if version == "1.1" else "keep-alive" in tokens
    expect = [value.lower() for name, value in headers if name == "expect"]
    if expect and expect != ["100-continue"]:
        raise HTTPError(417, f"only 'Expect: 100-continue' is understood, not {expect[0]!r}")
    return _Head(method, target, version, headers, length, keep_alive,
                 bool(expect) and version == "1.1")
