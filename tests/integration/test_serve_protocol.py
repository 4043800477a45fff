"""`featurectl serve` writes each response in one write (server/protocol.py): the same bytes as
uvicorn's own httptools protocol, in one TCP segment instead of two (head, then body)."""
from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
import time

import pytest

from tests.fixtures.feature_server import FeatureServer, ServingRepo, free_port
from tests.fixtures.repos import cli_env

pytestmark = pytest.mark.xdist_group("serve")

QUERY = b'{"features": ["stats:trips", "stats:label", "recent:score"], "entities": {"driver_id": [1, 2, 5]}}'


def request(method: str, path: str, body: bytes = b"", *headers: str, length: int | None = None) -> bytes:
    """The request's bytes; `length`: a Content-Length for a body sent later."""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if body or method == "POST":
        head.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# (request, whether it may be compared byte for byte: /metrics counts differ between servers)
REQUESTS = [
    (request("POST", "/get-online-features", QUERY), True),
    (request("POST", "/get-online-features?format=rows", QUERY), True),
    (request("POST", "/get-online-features", b"{not json"), True),
    (request("POST", "/get-online-features", b'{"features": ["stats:trips"]}'), True),
    (request("GET", "/get-online-features"), True),
    (request("GET", "/no-such-path"), True),
    (request("GET", "/health"), True),
    (request("HEAD", "/health"), True),
    (request("GET", "/ready"), True),
    (request("POST", "/push", b"{}"), True),
    (request("GET", "/metrics"), False),
]


def data_segments_in(sock: socket.socket) -> int:
    """Linux's tcp_info.tcpi_data_segs_in: TCP segments with data this socket received."""
    return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232), 152)[0]


def read_response(sock: socket.socket, head_only: bool = False) -> bytes:
    """One whole response (every answer here has a content-length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock)
    head = data.partition(b"\r\n\r\n")[0]
    length = 0 if head_only else int(re.search(rb"\r\ncontent-length: (\d+)", head).group(1))
    while len(data) < len(head) + 4 + length:
        data += _recv(sock)
    return data


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection mid-response")
    return chunk


def exchange(port: int, raw: bytes) -> tuple[bytes, int]:
    """(the response, the data segments it came in), on a kept-alive connection of its own."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        before = data_segments_in(sock)
        sock.sendall(raw)
        answer = read_response(sock, head_only=raw.startswith(b"HEAD "))
        return answer, data_segments_in(sock) - before


def comparable(answer: bytes) -> bytes:
    return re.sub(rb"x-request-id: [0-9a-f]{32}", b"x-request-id: ID", answer)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """`featurectl serve`, and the same app on uvicorn's own httptools protocol."""
    repo = ServingRepo.served(tmp_path_factory.mktemp("protocol") / "repo")
    with FeatureServer(repo.root) as served:
        port = free_port()
        reference = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "featurectl.server.app:create_app", "--factory", "--port", str(port),
             "--loop", "uvloop", "--http", "httptools", "--no-server-header", "--no-date-header", "--no-access-log",
             "--log-level", "warning"],
            cwd=repo.root, env=cli_env({"FEATURECTL_SERVE_REPO": str(repo.root)}), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if exchange(port, request("GET", "/health"))[0].startswith(b"HTTP/1.1 200 "):
                        break
                except OSError:
                    assert reference.poll() is None and time.monotonic() < deadline, "uvicorn did not start"
                    time.sleep(0.2)
            yield served.port, port
        finally:
            reference.kill()
            reference.wait(timeout=30)


@pytest.mark.parametrize("raw, same_bytes", REQUESTS, ids=[r.split(b" HTTP")[0].decode() for r, _ in REQUESTS])
def test_each_answer_is_uvicorns_bytes_in_one_segment(servers, raw, same_bytes):
    ours, theirs = servers
    answer, segments = exchange(ours, raw)
    reference, reference_segments = exchange(theirs, raw)
    if same_bytes:
        assert comparable(answer) == comparable(reference)
    assert answer.startswith(b"HTTP/1.1 ")
    assert reference_segments == (1 if raw.startswith(b"HEAD ") else 2)  # uvicorn's own: the head, then the body
    assert segments == 1


def test_answers_on_one_kept_alive_connection(servers):
    ours, _ = servers
    with socket.create_connection(("127.0.0.1", ours), timeout=30) as sock:
        for raw, _ in REQUESTS:
            before = data_segments_in(sock)
            sock.sendall(raw)
            assert read_response(sock, head_only=raw.startswith(b"HEAD ")).startswith(b"HTTP/1.1 ")
            assert data_segments_in(sock) - before == 1


def test_connection_close_answers_then_closes(servers):
    answers = []
    for port in servers:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(request("POST", "/get-online-features", QUERY, "Connection: close"))
            answers.append(comparable(read_response(sock)))
            assert sock.recv(1) == b""
    assert b"\r\nconnection: close\r\n" in answers[0] and answers[0] == answers[1]


def test_expect_100_continue_is_answered_before_the_body(servers):
    answers = []
    for port in servers:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(request("POST", "/get-online-features", b"", "Expect: 100-continue", length=len(QUERY)))
            interim = b""
            while b"\r\n\r\n" not in interim:
                interim += _recv(sock)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(QUERY)
            answers.append(comparable(read_response(sock)))
    assert answers[0].startswith(b"HTTP/1.1 200 ") and answers[0] == answers[1]
