"""Launchers of the local doubles a run starts: the PolyShop stack, Prometheus, the Pushgateway."""
