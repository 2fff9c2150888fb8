"""Before any check: can this runner reach the environment at all? One concurrent probe of every service.

The answer separates the checker's own outage from a broken release: when neither the gateway nor any
service can be reached (no name resolves, every connection is refused or times out), nothing the checks
could say would be about the release, so the run is INCONCLUSIVE. A service that accepts the connection
and then never answers is remembered as hanging, so its checks fail at once instead of each waiting.
"""

from __future__ import annotations

import hashlib
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from polycheck.clients.capped import DEFAULT_LIMITS, BodyTooLarge, send_capped
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
    signature: str = ""  # an error answer's status, type and body hash: the same one from most targets is a shared cause

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


def probe(service: str, base_url: str, timeout: httpx.Timeout, limit: int = DEFAULT_LIMITS.body_bytes) -> Reach:
    url = base_url.rstrip("/") + PROBE_PATH
    try:
        with httpx.Client(timeout=timeout, headers={"X-Synthetic": "true", "User-Agent": "polycheck-preflight"},
                          verify=shared_tls()) as client:
            response = send_capped(client, client.build_request("GET", url), limit, "http.max_body_bytes")
    except BodyTooLarge as exc:  # it answered: reachable (its checks judge the body)
        return Reach(service, url, "answered", str(exc))
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
    signature = ""
    if response.status_code >= 400:
        body = response.content[:65536]
        first = " ".join(response.text[:80].split())
        signature = (f"HTTP {response.status_code} {response.headers.get('content-type', '?').split(';')[0]} "
                     f"body sha256:{hashlib.sha256(body).hexdigest()[:12]} ({first!r})")
    return Reach(service, url, "answered", f"HTTP {response.status_code}", signature)


def preflight(targets: dict[str, str], timeout: httpx.Timeout) -> dict[str, Reach]:
    """Probe every target's /health/live at once; at most one read timeout in all."""
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        futures = {name: pool.submit(probe, name, url, timeout) for name, url in targets.items() if url}
        return {name: future.result() for name, future in futures.items()}


def most(reaches: dict[str, Reach]) -> int:
    """How many targets make "most of them": more than half, and at least 3."""
    return max(3, len(reaches) // 2 + 1)


def shared_cause(reaches: dict[str, Reach]) -> str | None:
    """Most targets gave the same error answer (a proxy or ingress in front of them all), or most hang (overload, the
    network): one cause they share, not a release that broke them all at once."""
    if len(reaches) < 3:
        return None
    signatures = Counter(r.signature for r in reaches.values() if r.signature)
    if signatures:
        signature, count = signatures.most_common(1)[0]
        if count >= most(reaches):
            return (f"{count} of {len(reaches)} targets answered the same {signature} at {PROBE_PATH}: a shared cause in "
                    f"front of them (a proxy, an ingress, the network), not the release")
    hanging = sorted(r.service for r in reaches.values() if r.state == "hanging")
    if len(hanging) >= most(reaches):
        return (f"{len(hanging)} of {len(reaches)} targets accepted the connection and did not answer {PROBE_PATH} "
                f"({', '.join(hanging)}): a shared cause (overload, the network, the checker's own load), not the release")
    return None


def cut_off(reaches: dict[str, Reach]) -> str | None:
    """Why this runner cannot judge the environment (nothing reached at all, or a shared cause), else None."""
    if not reaches:
        return None
    if any(r.reached for r in reaches.values()):
        return shared_cause(reaches)
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
