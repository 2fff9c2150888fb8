"""What one check owns: its trace, its HTTP exchanges, its clients, its synthetic orders and the SKUs it holds.

The pytest fixtures hand these out for a check that runs in its turn; a check that runs ahead in the
background (`pytest_plugin.concurrent`) is given the same things from the same scope, so its evidence,
clean-up and failures are exactly those of a check run in its turn. Everything a scope builds is built once:
a value, or the error building it raised (which the check's set-up then reports as its own).
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar
from collections.abc import Callable

from polycheck.core.attribution import GATEWAY, Routes, ServiceBoard
from polycheck.core.config import EnvConfig
from polycheck.clients.http import Connections, ExchangeLog, ServiceClient, timeout_from
from polycheck.core.leftovers import Journal
from polycheck.checks.orders import Leases, OrderLedger
from polycheck.clients.shop import Account, ShopApi
from polycheck.clients.capped import BodyLimits
from polycheck.clients.tracing import CheckTrace

T = TypeVar("T")


def new_client(config: EnvConfig, service: str, trace: CheckTrace, log: ExchangeLog, board: ServiceBoard | None,
               base_url: str | None = None, connections: Connections | None = None) -> ServiceClient:
    """A client of one service (or of the gateway's public URL, attributing each path to the service it routes to)."""
    timeout = timeout_from(config.http.connect_timeout_seconds, config.http.read_timeout_seconds)
    limits = BodyLimits(config.http.max_body_bytes, config.http.max_metrics_body_bytes)
    if service == GATEWAY:
        direct = {name: svc.url for name, svc in config.services.items() if svc.url and name != GATEWAY}
        return ServiceClient(GATEWAY, base_url or config.gateway.url, timeout=timeout, trace=trace, log=log, board=board,
                             routes=Routes(config.gateway_routes()), direct_urls=direct, connections=connections,
                             limits=limits)
    return ServiceClient(service, base_url or config.service(service).url, timeout=timeout, trace=trace, log=log,
                         board=board, connections=connections, limits=limits)


class CheckScope:
    """One check's trace, exchange log, clients, order ledger and SKU leases; `clean_up` then `close` end it."""

    def __init__(self, config: EnvConfig, board: ServiceBoard | None, connections: Connections | None,
                 trace: CheckTrace | None = None) -> None:
        self.config, self.board, self.connections = config, board, connections
        self.trace = trace or CheckTrace()
        self.log = ExchangeLog()
        self.leases = Leases()
        self._clients: list[ServiceClient] = []
        self._made: dict[str, tuple[Any, BaseException | None]] = {}
        self._lock = threading.RLock()

    def once(self, key: str, build: Callable[[], T]) -> T:
        """Build once; later calls get the same value, or the same error raised again."""
        with self._lock:
            if key not in self._made:
                try:
                    self._made[key] = (build(), None)
                except BaseException as exc:  # noqa: BLE001 - the check's set-up reports it, whatever it is
                    self._made[key] = (None, exc)
            value, error = self._made[key]
        if error is not None:
            raise error
        return value

    def client(self, service: str, base_url: str | None = None) -> ServiceClient:
        """A new client of `service` under this check's trace and exchange log (closed with the scope)."""
        client = new_client(self.config, service, self.trace, self.log, self.board, base_url, self.connections)
        with self._lock:
            self._clients.append(client)
        return client

    def shop(self) -> ShopApi:
        """The PolyShop API through the gateway, not signed in."""
        return self.once("shop", lambda: ShopApi(self.client(GATEWAY, self.config.gateway.url)))

    def signed_in(self, account: Account) -> ShopApi:
        """The PolyShop API signed in as `account` (one login per check and account)."""
        return self.once(f"signed-in {account.email}",
                          lambda: self.shop().signed_in(self.shop().login(account)["access_token"]))

    def orders(self, account: Account, journal: Journal | None, run: Any) -> OrderLedger:
        """The ledger of the synthetic orders this check creates as `account`."""
        return self.once("orders", lambda: OrderLedger(self.signed_in(account), account, journal=journal,
                                                        journal_password=journal_password(run, account),
                                                        leases=self.leases))

    def workload(self, kube: Any, config: EnvConfig, service: str) -> dict[str, Any]:
        """The service's Deployment or Rollout, read once for this check."""
        from polycheck.checks.rollout import read_workload

        return self.once("workload", lambda: read_workload(kube, config, service))

    def clean_up(self) -> list[str]:
        """Cancel and refund what the check created, then let go of its SKUs; what was left behind, as sentences.
        Done once: a check run ahead cleans up in the background, and its teardown reads the same answer."""
        def run() -> list[str]:
            try:
                with self._lock:
                    made = self._made.get("orders")
                ledger = made[0] if made is not None and made[1] is None else None
                return ledger.clean_up() if isinstance(ledger, OrderLedger) else []
            finally:
                self.leases.release()
        return self.once("clean-up", run)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


def journal_password(run: Any, account: Account) -> str | None:
    """The account's password for the leftovers journal: only for a throwaway account this run provisioned itself
    (the sweeper needs it to sign in); never the env's own secrets."""
    return account.password if run.config.synthetic.email is None else None
