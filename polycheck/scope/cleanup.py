"""`python -m polycheck cleanup`: cancel, refund and release what earlier runs left behind (polycheck.core.leftovers).

    python -m polycheck cleanup --env prod [--dry-run] [--older-than 30m] [--ledger PATH]

Reads the env's journal ([probe] ledger, or --ledger), takes every entry not cleaned whose intent is older than
--older-than (default 15m: longer than any run's deadline, so no live run's data is touched), signs in as the
account that created it (the env's synthetic account, or the throwaway account a local run provisioned) and
cleans it, reading back the end state of everything it touched. Exit 0 when everything is clean and read back, 1
when something could not be cleaned (it stays in the journal), 3 when something was done but cannot be verified
(a hold the shop may have kept for a create whose answer never came: reported by key, SKU and quantity), 4 for
a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from polycheck.core import resolve
from polycheck.core.config import ConfigError, EnvConfig, MissingSecretError, load_env
from polycheck.clients.http import ExchangeLog, ServiceClient, timeout_from
from polycheck.core.leftovers import Entry, Journal, pending, sweep
from polycheck.doubles.localstack import LocalStackError, StackInfo
from polycheck.clients.prometheus import parse_duration
from polycheck.clients.shop import Account, ShopApi
from polycheck.clients.tracing import CheckTrace

EXIT_LEFT, EXIT_UNVERIFIED, EXIT_USAGE = 1, 3, 4
DEFAULT_OLDER_THAN = "15m"


def journal_path(config: EnvConfig, root: Path, ledger: str | None, reports: Path | None = None) -> Path:
    """--ledger, else the env's [probe] ledger; a relative path under reports/ is in `reports` (as for a run)."""
    path = resolve.in_reports(ledger or config.probe.ledger.replace("{env}", config.name), reports)
    return path if path.is_absolute() else root / path


def credentials(config: EnvConfig, entry: Entry) -> Account:
    """The account that created the entry: its own recorded password (a provisioned account), else the env's secrets."""
    if entry.password:
        return Account(entry.email, entry.password)
    synthetic = config.synthetic
    if synthetic.email is not None and synthetic.password is not None and synthetic.email.reveal() == entry.email:
        return Account(entry.email, synthetic.password.reveal())
    raise MissingSecretError(f"no credentials for {entry.email}: it is not the env's synthetic.email and the journal "
                             "keeps no password for it")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m polycheck cleanup", description=__doc__.splitlines()[0])
    parser.add_argument("--env", help="envs/NAME.toml (default: ini polycheck_env, $POLYCHECK_ENV, else local)")
    parser.add_argument("--env-dir", default=None, help="folder of the environment files (default: ini polycheck_env_dir "
                        "under ROOT, envs/)")
    parser.add_argument("--root", default=".", help="the checkout: its pytest ini is read, relative ledger paths start here")
    parser.add_argument("--ledger", help="the journal to sweep (default: the env's [probe] ledger; under reports/: "
                        "in --reports-dir)")
    parser.add_argument("--reports-dir", help="the runs' folder, as for the plugin (default: ini polycheck_reports_dir "
                        "under ROOT, reports/)")
    parser.add_argument("--older-than", default=DEFAULT_OLDER_THAN,
                        help=f"only entries at least this old, e.g. 30m, 0s (default {DEFAULT_OLDER_THAN})")
    parser.add_argument("--dry-run", action="store_true", help="say what would be cleaned, change nothing")
    parser.add_argument("--stack-file", help="the running local stack (for --env local; default $POLYCHECK_STACK_FILE)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    try:
        ini = resolve.ini_file(root)  # the options resolve as the plugin's do: CLI, ini, environment, default
        config = load_env(resolve.env_name(args.env, ini), resolve.env_dir(args.env_dir, ini, root, resolve.env_name(args.env, ini)))
        older_than = parse_duration(args.older_than)
        stack_file = resolve.stack_file(args.stack_file)
        if config.environment.local_stack:
            if not stack_file:
                raise ConfigError(f"--env {config.name} needs the running stack: --stack-file PATH (or $POLYCHECK_STACK_FILE)")
            stack = StackInfo.from_file(Path(stack_file))
            config = config.with_urls(stack.gateway, stack.services)
    except (ConfigError, LocalStackError, ValueError) as exc:
        print(f"polycheck cleanup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    journal = Journal(journal_path(config, root, args.ledger, resolve.reports_dir(args.reports_dir, ini, root)), env=config.name)
    entries = pending(journal, older_than)
    print(f"polycheck cleanup: {journal.path}: {len(entries)} leftover(s) older than {args.older_than} in env {config.name}"
          + (" (dry run)" if args.dry_run else ""))
    clients: list[ServiceClient] = []

    def sign_in(entry: Entry) -> Any:
        client = ServiceClient("gateway", config.gateway.url, trace=CheckTrace(), log=ExchangeLog(),
                               timeout=timeout_from(config.http.connect_timeout_seconds, config.http.read_timeout_seconds))
        clients.append(client)
        shop = ShopApi(client)
        return shop.signed_in(shop.login(credentials(config, entry))["access_token"])

    try:
        lines = sweep(journal, entries, sign_in, dry_run=args.dry_run,
                      keep_cleaned_seconds=config.thresholds.look_back_seconds)
    finally:
        for client in clients:
            client.close()
    for line in lines:
        print(f"  {line.outcome:8} {line.entry.describe()}: {line.detail}")
    failed = [line for line in lines if line.outcome == "failed"]
    if failed:
        print(f"polycheck cleanup: {len(failed)} leftover(s) could not be cleaned; they stay in the journal for the next sweep")
        return EXIT_LEFT
    unverified = [line for line in lines if line.outcome == "unverified"]
    if unverified:
        print(f"polycheck cleanup: {len(unverified)} leftover(s) cleaned as far as the API shows, but not verified (see "
              f"above): a human must check the stock named")
        return EXIT_UNVERIFIED
    return 0
