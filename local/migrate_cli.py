"""`smartgrid migrate --domain D [--dsn DSN]`: apply one domain's migrations, as a Job before a new revision.

Idempotent: what is recorded is skipped. The DSN defaults to SMARTGRID_DSN_<DOMAIN>, else the running
platform's. A recorded migration that no longer matches its file (MigrationMismatch) exits 1.
"""

from __future__ import annotations

import argparse

from local.state import PlatformNotRunning, PlatformState
from shared.config import ConfigError, Settings
from shared.migrations import apply_migrations


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `migrate` to the `smartgrid` commands."""
    migrate = commands.add_parser(
        "migrate", help="apply one domain's schema migrations (idempotent; run before a new revision takes traffic)",
    )
    migrate.add_argument("--domain", required=True, metavar="D",
                         help="the domain whose migrations to apply (a folder under <schemas>/migrations)")
    migrate.add_argument("--dsn", help="the domain database (default SMARTGRID_DSN_<DOMAIN>, else the running "
                                       "platform's)")
    migrate.set_defaults(command=_migrate)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    domain = args.domain
    applied = apply_migrations(_dsn(args.dsn, domain, settings), domain, schemas_dir=settings.schemas_dir)
    for name in applied:
        print(f"{domain}: applied {name}")
    if not applied:
        print(f"{domain}: up to date")
    return 0


def _dsn(given: str | None, domain: str, settings: Settings) -> str:
    if given:
        return given
    if dsn := settings.domain_dsns.get(domain):
        return dsn
    try:
        dsn = PlatformState.load(settings.state_dir).dsns.get(domain)
    except PlatformNotRunning:
        dsn = None
    if dsn is None:
        raise ConfigError(
            f"--dsn / SMARTGRID_DSN_{domain.upper()}: expected the DSN of the {domain} database, found none "
            "(nor a running `smartgrid up` that has it)"
        )
    return dsn
