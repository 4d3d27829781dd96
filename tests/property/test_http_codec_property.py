"""HTTP codec properties: round trips, arbitrary splits, fuzzing (only HTTPError escapes)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from minibroker.protocols.http import ExpectContinue, HTTPCodec, HTTPError, HTTPLimits, Request
from minibroker.protocols.http.messages import Response

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TCHAR, min_size=1, max_size=12)
# visible characters and spaces inside (not at the ends: the codec strips those), plus obs-text
values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=30,
).map(lambda value: value.strip(" "))
targets = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                         exclude_characters="#"), max_size=40).map(
    lambda path: "/" + path)
framing = {"host", "content-length", "transfer-encoding", "connection", "expect"}
header_lists = st.lists(
    st.tuples(tokens.filter(lambda name: name.lower() not in framing), values), max_size=8)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    body = draw(st.binary(max_size=60))
    headers = [("host", draw(values)), *((n.lower(), v) for n, v in draw(header_lists))]
    if body or draw(st.booleans()):
        headers.append(("content-length", str(len(body))))
    return Request(draw(tokens), draw(targets), tuple(headers), body, "1.1", True)


def wire(request: Request) -> bytes:
    head = f"{request.method} {request.target} HTTP/{request.http_version}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in request.headers)
    return head.encode("latin-1") + b"\r\n" + request.body


def drain(codec: HTTPCodec) -> list[Request]:
    """Every request available now, answering each (so pipelining keeps moving)."""
    out: list[Request] = []
    while (event := codec.next_frame()) is not None:
        if isinstance(event, ExpectContinue):
            codec.send(Response(100))
            continue
        out.append(event)
        codec.send(Response(200))
    return out


@given(st.lists(requests(), min_size=1, max_size=5))
def test_requests_round_trip(sent: list[Request]) -> None:
    codec = HTTPCodec()
    codec.receive_data(b"".join(wire(request) for request in sent))
    assert drain(codec) == sent


@given(st.lists(requests(), min_size=1, max_size=4), st.data())
def test_any_split_parses_the_same(sent: list[Request], data: st.DataObject) -> None:
    stream = b"".join(wire(request) for request in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    codec = HTTPCodec()
    got: list[Request] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        if cut > start:  # b"" would mean the end of the stream
            codec.receive_data(stream[start:cut])
        start = cut
        got.extend(drain(codec))
    codec.receive_data(b"")
    got.extend(drain(codec))
    assert got == sent
    assert codec.closed


def feed_fuzz(chunks: list[bytes], limits: HTTPLimits) -> None:
    codec = HTTPCodec(limits)
    try:
        for chunk in [*(chunk for chunk in chunks if chunk), b""]:
            codec.receive_data(chunk)
            drain(codec)
    except HTTPError as err:
        assert 400 <= err.status <= 505
        # the codec can always answer its own error
        assert codec.send(Response(err.status)).startswith(b"HTTP/1.1 %d " % err.status)
        assert codec.must_close


SMALL = HTTPLimits(max_request_line=64, max_header_count=4, max_header_bytes=128, max_body=32)


@given(st.lists(st.binary(max_size=80), max_size=6))
def test_fuzz_random_bytes_only_raise_http_errors(chunks: list[bytes]) -> None:
    feed_fuzz(chunks, SMALL)


fragments = st.sampled_from([
    b"GET ", b"PUT ", b"POST ", b"HEAD ", b"/", b"/api", b"?q=1", b" HTTP/1.1", b" HTTP/1.0",
    b" HTTP/2.0", b"\r\n", b"\r", b"\n", b"Host: h", b"Content-Length: 3", b"Content-Length: 99",
    b"Content-Length: x", b"Transfer-Encoding: chunked", b"Expect: 100-continue",
    b"Connection: close", b"Connection: keep-alive", b": ", b" ", b"\t", b"abc", b"\x00",
    b"\xff", b"#",
])


@given(st.lists(st.lists(fragments, max_size=30).map(b"".join), max_size=5))
def test_fuzz_near_valid_bytes_only_raise_http_errors(chunks: list[bytes]) -> None:
    feed_fuzz(chunks, SMALL)


@given(st.lists(requests(), min_size=1, max_size=3), st.integers(0, 200), st.binary(max_size=40))
def test_fuzz_a_corrupted_stream(sent: list[Request], at: int, junk: bytes) -> None:
    stream = b"".join(wire(request) for request in sent)
    at = min(at, len(stream))
    feed_fuzz([stream[:at] + junk + stream[at:]], HTTPLimits())
