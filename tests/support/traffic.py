"""The local stack's customers and kubelet probes, for the self-tests and the bench (polycheck.doubles.customers)."""

from polycheck.doubles.customers import API_PATHS, PROBE_PATHS, Traffic, probes, shoppers

__all__ = ["API_PATHS", "PROBE_PATHS", "Traffic", "probes", "shoppers"]
