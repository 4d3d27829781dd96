"""The API's HTTP surface: login, routing, methods, listings, errors — no sockets."""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.management import ManagementApp
from minibroker.management.backend import LocalBackend
from minibroker.protocols.http import HTTPError, Request
from tests.management.harness import World


def test_no_credentials_is_a_challenge_without_body() -> None:
    reply = World().request("GET", "/api/overview", auth=None)
    assert (reply.status, reply.body) == (401, b"")
    assert reply.headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'


def test_the_web_page_gets_no_challenge() -> None:
    reply = World().request("GET", "/api/overview", auth=None,
                            headers={"X-Requested-With": "XMLHttpRequest"})
    assert reply.status == 401
    assert "www-authenticate" not in reply.headers


def test_wrong_credentials() -> None:
    world = World()
    for auth, headers in ((("guest", "nope"), None), (("nobody", "guest"), None),
                          (None, {"Authorization": "Bearer abc"}),
                          (None, {"Authorization": "Basic !!!"})):
        reply = world.request("GET", "/api/whoami", auth=auth, headers=headers)
        assert (reply.status, reply.json) == (
            401, {"error": "not_authorized", "reason": "Login failed"})


def test_users_come_from_the_backend() -> None:
    world = World()
    world.backend.user_table = {"alice": "s3cret"}
    assert world.get("/api/whoami", auth=("alice", "s3cret")) == {
        "name": "alice", "tags": ["administrator"]}
    assert world.request("GET", "/api/whoami").status == 401


def test_unknown_paths_and_methods() -> None:
    world = World()
    assert world.request("GET", "/api/nothing").json == {
        "error": "Object Not Found", "reason": "Not Found"}
    reply = world.request("POST", "/api/overview", auth=None)  # 405 before login, as RabbitMQ
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD, OPTIONS"
    reply = world.request("OPTIONS", "/api/queues/%2F/q")
    assert (reply.status, reply.headers["allow"]) == (200, "DELETE, GET, HEAD, OPTIONS, PUT")


def test_head_has_the_length_of_get_and_no_body() -> None:
    world = World()
    length = len(world.request("GET", "/api/whoami").body)
    reply = world.request("HEAD", "/api/whoami")
    assert (reply.status, reply.headers["content-length"], reply.body) == (200, str(length), b"")


def test_percent_decoding_per_segment_and_trailing_slash() -> None:
    world = World()
    assert world.request("PUT", "/api/queues/%2F/a%2Fb%20c").status == 201
    assert world.get("/api/queues/%2F/a%2Fb%20c")["name"] == "a/b c"
    assert [q["name"] for q in world.get("/api/queues/%2F/")] == ["a/b c"]
    assert world.request("GET", "/api/queues/%2F/%ff").json == {
        "error": "bad_request", "reason": "the path is not valid UTF-8 once percent-decoded"}


def test_a_vhost_that_does_not_exist() -> None:
    world = World()
    assert world.request("GET", "/api/queues/other").status == 404
    assert world.request("PUT", "/api/queues/other/q").json == {
        "error": "not_found", "reason": "vhost_not_found"}
    assert world.request("GET", "/api/aliveness-test/other").status == 404


def test_columns_sort_and_pages() -> None:
    world = World()
    for name, count in (("b", 2), ("a", 0), ("c", 1)):
        world.request("PUT", f"/api/queues/%2F/{name}")
        for _ in range(count):
            world.request("POST", "/api/exchanges/%2F/amq.default/publish", {
                "routing_key": name, "payload": "x", "payload_encoding": "string"})
    assert world.get("/api/queues?columns=name,messages") == [
        {"name": "a", "messages": 0}, {"name": "b", "messages": 2}, {"name": "c", "messages": 1}]
    assert [q["name"] for q in world.get("/api/queues?sort=messages&sort_reverse=true")] == [
        "b", "c", "a"]
    page = world.get("/api/queues?page=2&page_size=2&columns=name")
    assert page == {"filtered_count": 3, "item_count": 1, "items": [{"name": "c"}], "page": 2,
                    "page_count": 2, "page_size": 2, "total_count": 3}
    assert world.get("/api/queues?page=1&name=^[ab]$&use_regex=true")["filtered_count"] == 2
    assert world.request("GET", "/api/queues?page=3&page_size=2").json == {
        "error": "page_out_of_range", "reason": "Page out of range, page: 3 page size: 2, len: 3"}
    assert world.request("GET", "/api/queues?page=x").status == 400


def test_a_codec_error_is_answered_in_json() -> None:
    response = World().app.error_response(HTTPError(413, "the body is too large"))
    assert response.status == 413
    assert response.body == b'{"error":"content_too_large","reason":"the body is too large"}'


def test_a_failing_handler_is_a_500_and_the_broker_keeps_serving() -> None:
    world = World()

    class Broken(LocalBackend):
        def alarms(self) -> list[str]:
            raise RuntimeError("boom")

    world.app = ManagementApp(Broken({"/": world.broker}, world.clock))
    reply = world.request("GET", "/api/health/checks/alarms")
    assert (reply.status, reply.json["error"]) == (500, "internal_error")
    assert world.request("GET", "/api/whoami").status == 200


def test_static_page_files() -> None:
    world = World()
    page = world.request("GET", "/", auth=None)
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert b"<html" in page.body
    for name, kind in (("app.js", "text/javascript"), ("pages.js", "text/javascript"),
                       ("charts.js", "text/javascript"), ("style.css", "text/css")):
        reply = world.request("GET", f"/{name}", auth=None)
        assert (reply.status, reply.headers["content-type"].split(";")[0]) == (200, kind)
    for path in ("/missing.js", "/../pyproject.toml", "/%2e%2e/app.py", "/app.py"):
        assert world.request("GET", path, auth=None).status == 404
    assert world.request("DELETE", "/", auth=None).status == 405


def test_the_api_holds_no_core_connection_between_requests() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/q")
    world.request("POST", "/api/queues/%2F/q/get",
                  {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert world.broker.connections == {}
    assert world.broker.statistics().connections == 0


def test_requests_are_plain_values() -> None:
    world = World()
    request = Request("GET", "/api/whoami", (("host", "h"), ("authorization",
                                                            "Basic Z3Vlc3Q6Z3Vlc3Q=")))
    assert world.app.handle(request).status == 200
    world.run(c.OpenConnection(1))
    assert world.app.handle(request).status == 200
