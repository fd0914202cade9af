"""Limits a live server enforces on the wire: a stalled request body gets 408 instead of holding a worker."""

from __future__ import annotations

import json
import socket
import time

from conftest import LiveServer


def _read_response(s: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_stalled_body_is_408(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BRAGSERVE_BODY_TIMEOUT_S", "1")
    server = LiveServer(index_dir=tmp_path / "index", log_path=tmp_path / "server.log")
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"POST /documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"documents\": [")  # ...and then nothing more
            started = time.monotonic()
            reply = _read_response(s)
            waited = time.monotonic() - started
        assert reply.startswith("HTTP/1.1 408"), reply
        body = json.loads(reply.split("\r\n\r\n", 1)[1])
        assert body["error"]["code"] == "request_timeout" and 0.5 < waited < 5
        assert "no API keys exist: serving OPEN" in server.log()  # open mode says so at start
    finally:
        server.stop()
