"""HTTP codec: golden bytes in both directions, every refusal with its status, keep-alive."""

from __future__ import annotations

import pytest

from minibroker.errors import ProtocolError
from minibroker.protocols.http import (
    ExpectContinue,
    HTTPCodec,
    HTTPError,
    HTTPLimits,
    Request,
    Response,
)


def parse(data: bytes, limits: HTTPLimits | None = None) -> list[Request | ExpectContinue]:
    codec = HTTPCodec(limits) if limits else HTTPCodec()
    codec.receive_data(data)
    return codec.frames()


def refused(data: bytes, limits: HTTPLimits | None = None, *, eof: bool = False) -> HTTPError:
    codec = HTTPCodec(limits) if limits else HTTPCodec()
    codec.receive_data(data)
    if eof:
        codec.receive_data(b"")
    with pytest.raises(HTTPError) as info:
        codec.frames()
    return info.value


# --- requests: golden bytes ------------------------------------------------------------------

def test_a_get_with_headers() -> None:
    [request] = parse(b"GET /api/queues/%2F/q?columns=name HTTP/1.1\r\n"
                      b"Host: localhost:15680\r\nAuthorization:  Basic Z3Vlc3Q6Z3Vlc3Q= \r\n"
                      b"Accept: */*\r\n\r\n")
    assert request == Request(
        "GET", "/api/queues/%2F/q?columns=name",
        (("host", "localhost:15680"), ("authorization", "Basic Z3Vlc3Q6Z3Vlc3Q="),
         ("accept", "*/*")),
        b"", "1.1", True,
    )
    assert request.path == "/api/queues/%2F/q"
    assert request.query == "columns=name"
    assert request.header("AUTHORIZATION") == "Basic Z3Vlc3Q6Z3Vlc3Q="
    assert request.header("cookie") is None


def test_a_put_with_a_body() -> None:
    [request] = parse(b"PUT /api/queues/%2F/q HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n"
                      b"Content-Type: application/json\r\n\r\n{\"durable\":true}")
    assert isinstance(request, Request)
    assert request.method == "PUT"
    assert request.body == b'{"durable":true}'


def test_pipelined_requests_come_out_in_order() -> None:
    got = parse(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
                b"DELETE /c HTTP/1.1\r\nHost: h\r\n\r\n")
    assert [(r.method, r.target, r.body) for r in got if isinstance(r, Request)] == [
        ("GET", "/a", b""), ("POST", "/b", b"hi"), ("DELETE", "/c", b"")]


def test_repeated_headers_are_joined() -> None:
    [request] = parse(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n")
    assert isinstance(request, Request)
    assert request.header("X-A") == "1, 2"


def test_obs_text_survives_as_latin_1() -> None:
    [request] = parse(b"GET / HTTP/1.1\r\nHost: h\r\nX-Reason: caf\xe9\r\n\r\n")
    assert isinstance(request, Request)
    assert request.header("x-reason") == "caf\xe9"


def test_empty_lines_before_a_request_are_ignored() -> None:
    [request] = parse(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(request, Request)
    assert request.target == "/"


def test_absolute_form_becomes_origin_form() -> None:
    [request] = parse(b"GET http://h:15680/api/overview?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(request, Request)
    assert request.target == "/api/overview?x=1"


def test_http_1_0_without_host_is_accepted_and_closes() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n")
    [request] = codec.frames()
    assert isinstance(request, Request)
    assert request.http_version == "1.0"
    assert not request.keep_alive
    assert codec.send(Response(200, body=b"x")) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
    assert codec.must_close


def test_http_1_0_keep_alive_is_echoed() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    [request] = codec.frames()
    assert isinstance(request, Request)
    assert request.keep_alive
    assert codec.send(Response(204)) == b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
    assert not codec.must_close


def test_connection_close_stops_parsing() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                       b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    assert [r.target for r in codec.frames() if isinstance(r, Request)] == ["/a"]
    codec.receive_data(b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
    assert codec.frames() == []
    assert codec.send(Response(200)).endswith(b"Connection: close\r\n\r\n")
    assert codec.must_close


def test_a_body_split_anywhere_waits_for_the_rest() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
    assert codec.frames() == []
    codec.receive_data(b"cde")
    [request] = codec.frames()
    assert isinstance(request, Request)
    assert request.body == b"abcde"


def test_clean_end_of_stream() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    codec.receive_data(b"")
    assert len(codec.frames()) == 1
    assert codec.closed


# --- 100-continue -----------------------------------------------------------------------------

def test_expect_continue_is_an_event_then_the_request() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                       b"Expect: 100-continue\r\n\r\n")
    assert codec.frames() == [ExpectContinue("/x")]
    assert codec.send(Response(100)) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert codec.frames() == []
    codec.receive_data(b"ok")
    [request] = codec.frames()
    assert isinstance(request, Request)
    assert request.body == b"ok"
    assert codec.send(Response(204)) == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_expect_continue_waits_for_earlier_responses() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                       b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                       b"Expect: 100-continue\r\n\r\n")
    [first] = codec.frames()
    assert isinstance(first, Request)
    assert codec.frames() == []  # /a is not answered yet: no 100 ahead of its response
    codec.send(Response(200))
    assert codec.frames() == [ExpectContinue("/x")]


def test_refusing_an_expected_body_closes_the_connection() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                       b"Expect: 100-continue\r\n\r\n")
    assert codec.frames() == [ExpectContinue("/x")]
    assert codec.send(Response(401)).endswith(b"Connection: close\r\n\r\n")
    assert codec.must_close


def test_an_unknown_expectation_is_417() -> None:
    assert refused(b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n").status == 417


# --- responses: golden bytes ----------------------------------------------------------------

def answered(response: Response, request: bytes = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n") -> bytes:
    codec = HTTPCodec()
    codec.receive_data(request)
    assert codec.frames()
    return codec.send(response)


def test_a_json_response() -> None:
    assert answered(Response(200, (("Content-Type", "application/json"),), b'{"a":1}')) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
        b'{"a":1}')


def test_created_with_location() -> None:
    assert answered(Response(201, (("Location", "q/k"),))) == (
        b"HTTP/1.1 201 Created\r\nLocation: q/k\r\nContent-Length: 0\r\n\r\n")


def test_no_content_has_no_length() -> None:
    assert answered(Response(204)) == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_head_gets_the_length_and_no_body() -> None:
    response = Response(200, (), b"12345")
    assert answered(response, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n") == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")


def test_a_response_that_closes() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
    assert len(codec.frames()) == 2
    assert codec.send(Response(503, close=True)) == (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert codec.must_close
    assert codec.frames() == []


def test_a_response_header_with_a_line_break_is_refused() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    codec.frames()
    with pytest.raises(ValueError, match="invalid response header"):
        codec.send(Response(200, (("X-Evil", "a\r\nSet-Cookie: x"),)))


def test_an_error_response_closes() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"BAD\r\n\r\n")
    with pytest.raises(HTTPError) as info:
        codec.frames()
    assert codec.send(Response(info.value.status)) == (
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert codec.must_close


# --- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "status", "words"), [
    (b"GET / HTTP/1.1\nHost: h\n\n", 400, "bare LF"),
    (b"GET /\rx HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request line"),
    (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed request line"),
    (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "malformed request line"),
    (b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed request line"),
    (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "HTTP/2.0"),
    (b"GET / HTTPS/1.1\r\nHost: h\r\n\r\n", 400, "malformed request line"),
    (b"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "fragment"),
    (b"GET api HTTP/1.1\r\nHost: h\r\n\r\n", 400, "not a path"),
    (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "not a path"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "Host"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"),
    (b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400, "folding"),
    (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "malformed header"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n", 400, "malformed header"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400, "control character"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400, "control character"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
     "conflicting"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "chunked"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "gzip"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
     400, "both"),
])
def test_bad_requests(data: bytes, status: int, words: str) -> None:
    err = refused(data)
    assert (err.status, words in err.text) == (status, True), err.text
    assert isinstance(err, ProtocolError)


def test_a_long_request_line_is_414_before_its_end_arrives() -> None:
    limits = HTTPLimits(max_request_line=100)
    err = refused(b"GET /" + b"a" * 200, limits)
    assert err.status == 414


def test_a_long_garbage_line_is_400() -> None:
    assert refused(b"\x16\x03\x01" + b"\x00" * 200, HTTPLimits(max_request_line=100)).status == 400


def test_a_long_header_section_is_431_before_its_end_arrives() -> None:
    limits = HTTPLimits(max_header_bytes=200)
    err = refused(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 300, limits)
    assert err.status == 431


def test_too_many_headers_is_431() -> None:
    limits = HTTPLimits(max_header_count=3)
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(4))
    assert refused(b"GET / HTTP/1.1\r\n" + headers + b"\r\n", limits).status == 431


def test_a_large_body_is_413_before_it_arrives() -> None:
    limits = HTTPLimits(max_body=10)
    err = refused(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits)
    assert err.status == 413
    assert "11 bytes" in err.text


def test_end_of_stream_inside_a_request_is_400() -> None:
    assert refused(b"GET / HTTP/1.1\r\nHo", eof=True).status == 400
    assert refused(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nab",
                   eof=True).status == 400


def test_requests_before_a_bad_one_come_out_first_then_the_error_stays() -> None:
    codec = HTTPCodec()
    codec.receive_data(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/9.9\r\n\r\n")
    [good] = codec.frames()
    assert isinstance(good, Request)
    for _ in range(2):
        with pytest.raises(HTTPError) as info:
            codec.frames()
        assert info.value.status == 505
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    with pytest.raises(HTTPError):
        codec.next_frame()
