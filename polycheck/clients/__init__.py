"""The clients of the outside world: HTTP per service, the shop, Kubernetes, Argo, Prometheus."""
