"""What the PolyShop contract (contracts/) says each service must expose."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from polycheck.core.config import ConfigError, EnvConfig


@dataclass(frozen=True)
class MetricsContract:
    """The metric families every service, and each named service, must export."""

    every_service: tuple[str, ...] = ()
    per_service: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> MetricsContract:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the metrics contract {path}: {exc}") from None
        return cls(
            every_service=tuple(data.get("every_service", [])),
            per_service={name: tuple(fams) for name, fams in data.get("services", {}).items()},
        )

    def families_for(self, config: EnvConfig, service: str) -> list[str]:
        """The env's override for the service if it has one, else the contract's list."""
        override = config.service(service).metric_families
        if override is not None:
            return list(override)
        return list(dict.fromkeys(self.every_service + self.per_service.get(service, ())))
