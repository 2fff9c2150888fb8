"""Read a Prometheus text exposition the way Prometheus would, and say what it carries."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created", "_info")


class ExpositionError(ValueError):
    """The text is not a valid Prometheus exposition."""


@dataclass
class Exposition:
    """The families of an exposition by the names a PromQL query would use, with their samples' labels."""

    families: dict[str, str] = field(default_factory=dict)  # name -> type
    labels: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # name -> label sets

    def has(self, family: str) -> bool:
        return family in self.families

    def label_values(self, family: str, label: str) -> set[str]:
        return {labels[label] for labels in self.labels.get(family, []) if label in labels}


def parse_exposition(text: str) -> Exposition:
    """Parse `text`; raises ExpositionError with the parser's reason when it is malformed."""
    result = Exposition()
    try:
        for family in text_string_to_metric_families(text):
            name = family.name
            if family.type == "counter" and not name.endswith("_total"):
                name = f"{name}_total"
            result.families[name] = family.type
            result.labels[name] = [dict(sample.labels) for sample in family.samples]
    except (ValueError, TypeError, IndexError) as exc:
        raise ExpositionError(str(exc) or type(exc).__name__) from None
    return result
