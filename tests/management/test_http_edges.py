"""The management listener's socket handling, over real sockets: ``Expect: 100-continue``, an
unreadable request, the alarms health check while a resource alarm is on, a connection that
is gone, and HTTP sockets still open when the broker stops."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket

import pika

from minibroker.testing import broker_in_thread

TIMEOUT = 10
AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


class Answers:
    """The answers on one HTTP socket, read one at a time (each has a Content-Length)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def _more(self) -> None:
        chunk = self.sock.recv(1 << 20)
        assert chunk, self.data
        self.data += chunk

    def next(self) -> tuple[bytes, bytes]:
        """(status line and headers, body)."""
        while b"\r\n\r\n" not in self.data:
            self._more()
        head, _, rest = self.data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        self.data = rest
        while len(self.data) < length:
            self._more()
        body, self.data = self.data[:length], self.data[length:]
        return head, body


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    return Answers(sock).next()


def test_expect_100_continue_gets_100_before_the_body_is_sent() -> None:
    body = json.dumps({"durable": True}).encode()
    with broker_in_thread(management=True, heartbeat=0) as broker, socket.create_connection(
            ("127.0.0.1", broker.server.management.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"PUT /api/queues/%2F/continued HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: {AUTH}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        head, _ = _read_response(sock)
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 201 Created"
        assert [queue.name for queue in broker.broker.snapshot().queues] == ["continued"]


def test_an_unreadable_request_is_answered_400_and_the_socket_closed() -> None:
    with broker_in_thread(management=True, heartbeat=0) as broker, socket.create_connection(
            ("127.0.0.1", broker.server.management.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        head, _ = _read_response(sock)
        assert head.split(b"\r\n")[0].startswith(b"HTTP/1.1 400 ")
        assert sock.recv(1) == b""  # closed after the answer


def test_the_alarms_health_check_fails_while_a_queue_alarm_is_on() -> None:
    with broker_in_thread(management=True, heartbeat=0, queue_high_water=2) as broker:
        api = http.client.HTTPConnection("127.0.0.1", broker.server.management.port,
                                         timeout=TIMEOUT)
        api.request("GET", "/api/health/checks/alarms", headers={"Authorization": AUTH})
        ok = api.getresponse()
        assert (ok.status, json.loads(ok.read())) == (200, {"status": "ok"})
        client = pika.BlockingConnection(pika.URLParameters(
            broker.amqp_url + "?heartbeat=0&connection_attempts=1"))
        channel = client.channel()
        channel.confirm_delivery()
        channel.queue_declare("backlog")
        for _ in range(3):  # the third passes the queue's high-water mark of 2
            channel.basic_publish("", "backlog", b"m")
        api.request("GET", "/api/health/checks/alarms", headers={"Authorization": AUTH})
        failed = api.getresponse()
        node = broker.server.management.app.api.node  # type: ignore[union-attr]
        # RabbitMQ knows memory and disk: the queue-length alarm guards memory
        assert (failed.status, json.loads(failed.read())) == (503, {
            "status": "failed", "reason": "There are alarms in effect in the cluster",
            "alarms": [{"node": node, "resource": "memory"}]})
        # deleting the backlog clears the alarm: the blocked publisher is read again
        api.request("DELETE", "/api/queues/%2F/backlog", headers={"Authorization": AUTH})
        deleted = api.getresponse()
        assert (deleted.status, deleted.read()) == (204, b"")
        client.close()
        api.request("GET", "/api/health/checks/alarms", headers={"Authorization": AUTH})
        cleared = api.getresponse()
        assert (cleared.status, json.loads(cleared.read())) == (200, {"status": "ok"})
        api.close()


def test_http_sockets_still_open_are_closed_when_the_broker_stops() -> None:
    with broker_in_thread(management=True, heartbeat=0) as broker:
        idle = socket.create_connection(("127.0.0.1", broker.server.management.port),
                                        timeout=TIMEOUT)
        idle.sendall(b"GET /api/overview HTTP/1.1\r\nHost: x\r\n"
                     + f"Authorization: {AUTH}\r\n\r\n".encode())
        head, _ = _read_response(idle)  # answered: the listener holds the socket
        assert head.startswith(b"HTTP/1.1 200 ")
    with idle, contextlib.suppress(ConnectionResetError):  # aborted: a reset is closed too
        assert idle.recv(1) == b""


def test_a_client_that_does_not_read_its_answers_is_not_read_until_it_does() -> None:
    queues = 300
    requests = 30  # each answer lists every queue: far more than the socket buffers hold
    with broker_in_thread(management=True, heartbeat=0) as broker:
        for number in range(queues):
            broker.declare_queue(f"listed-{number:03d}")
        listener = broker.server.management
        assert listener is not None
        with socket.create_connection(("127.0.0.1", listener.port), timeout=TIMEOUT) as sock:
            sock.sendall((b"GET /api/queues HTTP/1.1\r\nHost: x\r\n"
                          + f"Authorization: {AUTH}\r\n\r\n".encode()) * requests)
            answers = Answers(sock)
            for _ in range(requests):  # every answer arrives once the client reads
                head, answer = answers.next()
                assert head.startswith(b"HTTP/1.1 200 ")
                assert len(json.loads(answer)) == queues
    assert listener.port == 0  # closed: it listens nowhere
