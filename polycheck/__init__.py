"""polycheck: the library behind the PolyShop smoke and synthetic checks.

Config, plugin hooks, HTTP/Kubernetes/Prometheus clients, polling, rollback and reporting.
It never imports `suites/` (the checks) nor `stack/` (the local stack it may start as a process).
"""

__version__ = "0.1.0"
