"""What a local PolyShop service's handlers can reach: its name, faults, metrics, peers and shared state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalog import STACK_VERSION, ServiceSpec
from .faults import FaultBoard
from .telemetry import ServiceMetrics


@dataclass
class ServiceContext:
    """Per-service state of the local stack."""

    spec: ServiceSpec
    faults: FaultBoard
    metrics: ServiceMetrics
    peers: dict[str, str] = field(default_factory=dict)  # service name -> base URL, filled at start
    shared: dict[str, Any] = field(default_factory=dict)  # the stack's domain state (see stack.domain)
    version: str = STACK_VERSION

    @property
    def name(self) -> str:
        return self.spec.name

    def reported_version(self) -> str:
        fault = self.faults.get(self.name, "wrong_version")
        return fault["version"] if fault else self.version
