"""Every body the checker reads is capped: beyond the cap the request fails at once, naming the size."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest

from polycheck.clients.capped import MIB, BodyLimits, BodyTooLarge, send_capped
from polycheck.clients.http import ExchangeLog, ServiceClient
from polycheck.clients.tracing import CheckTrace
from polycheck.core.config import EnvConfig
from polycheck.core.validate import value_problems


class Counting(httpx.SyncByteStream):
    """A body of `size` bytes in 64 KiB chunks, counting what the client pulled."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.pulled < self.size:
            step = min(65536, self.size - self.pulled)
            self.pulled += step
            yield b"x" * step


def client_of(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler, base_url="http://svc")


def test_a_body_under_the_cap_reads_as_usual() -> None:
    with client_of(httpx.MockTransport(lambda r: httpx.Response(200, json={"status": "ok"}))) as client:
        response = send_capped(client, client.build_request("GET", "/health"), 1024, "http.max_body_bytes")
    assert response.json() == {"status": "ok"} and response.status_code == 200


def test_a_streamed_body_over_the_cap_stops_at_the_cap() -> None:
    body = Counting(50 * MIB)
    with client_of(httpx.MockTransport(lambda r: httpx.Response(200, stream=body))) as client:
        with pytest.raises(BodyTooLarge, match=r"over the cap of 2\.0 MiB \(http\.max_body_bytes\)"):
            send_capped(client, client.build_request("GET", "/health"), 2 * MIB, "http.max_body_bytes")
    assert body.pulled <= 2 * MIB + 65536, f"read {body.pulled} bytes of a 50 MiB body"


def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    body = Counting(10 * MIB)
    answer = httpx.Response(200, headers={"content-length": str(10 * MIB)}, stream=body)
    with client_of(httpx.MockTransport(lambda r: answer)) as client:
        with pytest.raises(BodyTooLarge, match=r"declares a body of 10\.0 MiB"):
            send_capped(client, client.build_request("GET", "/health"), MIB, "http.max_body_bytes")
    assert body.pulled == 0


def test_a_compressed_bomb_counts_at_its_decoded_size() -> None:
    packed = gzip.compress(b"x" * (8 * MIB))  # about 8 KB on the wire
    answer = httpx.Response(200, headers={"content-encoding": "gzip", "content-length": str(len(packed))}, content=packed)
    with client_of(httpx.MockTransport(lambda r: answer)) as client:
        with pytest.raises(BodyTooLarge):
            send_capped(client, client.build_request("GET", "/health"), MIB, "http.max_body_bytes")


def test_the_service_client_fails_the_request_naming_the_size_and_metrics_have_their_own_cap() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Counting(3 * MIB))

    log = ExchangeLog()
    client = ServiceClient("payment", "http://svc", timeout=httpx.Timeout(2.0), trace=CheckTrace(), log=log,
                           limits=BodyLimits(body_bytes=MIB, metrics_bytes=4 * MIB), transport=httpx.MockTransport(answer))
    response, exchange = client.send("GET", "/health")
    assert response is None and exchange.error and "over the cap of 1.0 MiB (http.max_body_bytes)" in exchange.error
    metrics, seen = client.send("GET", "/metrics")
    assert metrics is not None and len(metrics.content) == 3 * MIB and seen.error is None


@pytest.mark.parametrize("value", [0, 10, 2 * 1024 ** 3])
def test_a_cap_outside_1_kib_to_1_gib_is_a_usage_error(value: int) -> None:
    from dataclasses import replace

    from polycheck.core.config import load_env
    from tests.support.stack_control import repo_root

    config: EnvConfig = load_env("local", repo_root() / "envs")
    broken = replace(config, http=replace(config.http, max_body_bytes=value))
    problems = [text for key, text in value_problems(broken) if key == "http.max_body_bytes"]
    assert problems and "size in bytes" in problems[0], problems
