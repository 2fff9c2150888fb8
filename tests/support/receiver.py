"""A local webhook receiver for the self-tests: records every JSON payload POSTed to it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from collections.abc import Iterator

import pytest


@pytest.fixture
def receiver() -> Iterator[list[dict[str, Any]]]:
    """received[0] is {"url": base URL}; every POST after it is {"path": ..., **payload}."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append({"path": self.path, **json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.append({"url": f"http://127.0.0.1:{server.server_port}"})
    yield received
    server.shutdown()
    server.server_close()
