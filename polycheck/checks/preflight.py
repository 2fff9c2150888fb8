"""Before any check: can this runner reach the environment at all? One concurrent probe of every service.

The answer separates the checker's own outage from a broken release: when neither the gateway nor any
service can be reached (no name resolves, every connection is refused or times out), nothing the checks
could say would be about the release, so the run is INCONCLUSIVE. A service that accepts the connection
and then never answers is remembered as hanging, so its checks fail at once instead of each waiting.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from polycheck.core.attribution import ServiceBoard
from polycheck.clients.http import shared_tls

REACHED = ("answered", "hanging")
PROBE_PATH = "/health/live"


@dataclass(frozen=True)
class Reach:
    """What one service's liveness probe showed: answered, hanging, refused, unresolvable, unreachable."""

    service: str
    url: str
    state: str
    detail: str

    @property
    def reached(self) -> bool:
        return self.state in REACHED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _unresolvable(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        text = str(seen).lower()
        if "name or service not known" in text or "name resolution" in text or "nodename nor servname" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def probe(service: str, base_url: str, timeout: httpx.Timeout) -> Reach:
    url = base_url.rstrip("/") + PROBE_PATH
    try:
        with httpx.Client(timeout=timeout, headers={"X-Synthetic": "true", "User-Agent": "polycheck-preflight"},
                          verify=shared_tls()) as client:
            response = client.get(url)
    except httpx.ReadTimeout:
        return Reach(service, url, "hanging", f"accepted the connection but sent no answer within the read timeout of {timeout.read:g} s")
    except httpx.ConnectTimeout:
        return Reach(service, url, "unreachable", f"no connection within the connect timeout of {timeout.connect:g} s")
    except httpx.ConnectError as exc:
        if _unresolvable(exc):
            return Reach(service, url, "unresolvable", f"its host name does not resolve ({exc})")
        return Reach(service, url, "refused", f"connection failed ({exc or 'refused'})")
    except httpx.HTTPError as exc:
        return Reach(service, url, "unreachable", f"{type(exc).__name__}: {exc}")
    return Reach(service, url, "answered", f"HTTP {response.status_code}")


def preflight(targets: dict[str, str], timeout: httpx.Timeout) -> dict[str, Reach]:
    """Probe every target's /health/live at once; at most one read timeout in all."""
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        futures = {name: pool.submit(probe, name, url, timeout) for name, url in targets.items() if url}
        return {name: future.result() for name, future in futures.items()}


def cut_off(reaches: dict[str, Reach]) -> str | None:
    """Why this runner cannot judge the environment (nothing reached at all), else None."""
    if not reaches or any(r.reached for r in reaches.values()):
        return None
    kinds = sorted({r.state for r in reaches.values()})
    sample = "; ".join(f"{r.service}: {r.detail}" for r in list(reaches.values())[:3])
    return (
        f"neither the gateway nor any of the {len(reaches) - 1} services could be reached from this runner "
        f"({', '.join(kinds)}): DNS, VPN or network of the runner, not the release — {sample}"
    )


def seed_board(board: ServiceBoard, reaches: dict[str, Reach]) -> None:
    for reach in reaches.values():
        if reach.state == "hanging":
            board.mark_hanging(reach.service, f"GET {reach.url} {reach.detail} (preflight at the start of the run)")


def reaches_from_json(data: dict[str, Any]) -> dict[str, Reach]:
    return {name: Reach(**value) for name, value in data.items()}
