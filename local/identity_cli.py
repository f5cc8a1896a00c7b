"""`smartgrid users`, `devices`, `auth` and `audit`: identity and access of the running platform.

- `users`, `devices` and `audit list` call the users service's admin API (shared/users/api.py) as the
  command line's OAuth client (local/users_client.py `cli_token`: SMARTGRID_CLIENT_ID / _SECRET with
  SMARTGRID_AUTH_ISSUER, else the running `smartgrid up`'s `smartgrid-cli`, role admin);
- `auth rotate-key` writes a new signing key into the keys folder (SMARTGRID_AUTH_KEYS_DIR, else
  `<state dir>/auth/keys`), which the running users service re-reads;
- `audit verify` walks the audit log's hash chain in the users database (SMARTGRID_DSN_USERS, else the
  running platform's).
A password is read from stdin (or prompted for without echo), never taken from the command line, where
`ps` and the shell's history would show it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import aiohttp
import orjson
import psycopg

from local import aio
from local.state import PlatformNotRunning, PlatformState
from local.users_client import UsersApiError, UsersClient, cli_token, issuer_of
from shared.audit.chain import Verification
from shared.audit.log import AuditLog
from shared.auth.client import ServiceToken
from shared.auth.keys import KeyRing, rotate
from shared.auth.principal import DEVICE_KINDS, USER_ROLES
from shared.config import Settings
from shared.stores.postgres import Database

T = TypeVar("T")
API_TIMEOUT_S = 30.0
MAX_AUDIT_LIMIT = 1000


def cli_token_if_any(settings: Settings) -> ServiceToken | None:
    """The command line's token (local/users_client.py `cli_token`), or None when it has no client: neither
    SMARTGRID_CLIENT_ID / _SECRET with SMARTGRID_AUTH_ISSUER nor a running platform (APIs then answer 401)."""
    try:
        return cli_token(settings)
    except PlatformNotRunning:
        return None


def refusal(error: UsersApiError) -> str:
    """What the users service refused and why, naming the field at fault when it names one."""
    field = error.body.get("field") if isinstance(error.body, dict) else None
    return f"the users service refused the call: {error}" + (f" (field {field})" if field else "")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `users`, `devices`, `auth` and `audit` to the `smartgrid` commands."""
    _add_users(commands)
    _add_devices(commands)
    _add_auth(commands)
    _add_audit(commands)


def _add_users(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser("users", help="user accounts of the running platform")
    actions = users.add_subparsers(required=True, metavar="COMMAND")
    create = actions.add_parser("create", help="create a user; the password comes from stdin, never from argv")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=USER_ROLES)
    create.add_argument("--password-stdin", required=True, action="store_true",
                        help="read the password as the first line of stdin (a prompt without echo on a terminal)")
    create.set_defaults(command=_users_create)
    actions.add_parser("list", help="every user as a table").set_defaults(command=_users_list)
    for name, change, what in (("disable", {"disabled": True}, "disable a user (ends its sessions)"),
                               ("enable", {"disabled": False}, "enable a disabled user"),
                               ("unlock", {"unlock": True}, "lift a user's login lockout")):
        action = actions.add_parser(name, help=what)
        action.add_argument("name")
        action.set_defaults(command=_users_update, change=change)


def _add_devices(commands: argparse._SubParsersAction) -> None:
    devices = commands.add_parser("devices", help="the device registry of the running platform")
    actions = devices.add_subparsers(required=True, metavar="COMMAND")
    register = actions.add_parser(
        "register", help="register a device; a sensor or gateway gets a client secret, shown once")
    register.add_argument("id")
    register.add_argument("--kind", required=True, choices=DEVICE_KINDS)
    register.add_argument("--gateway", metavar="GW", help="a meter's gateway (its readings come through it)")
    register.set_defaults(command=_devices_register)
    renew = actions.add_parser("renew-secret", help="give a device a new client secret (printed once; the old "
                                                    "one stops working)")
    renew.add_argument("id")
    renew.set_defaults(command=_devices_renew_secret)
    revoke = actions.add_parser("revoke", help="revoke a device: its secret no longer takes tokens")
    revoke.add_argument("id")
    revoke.set_defaults(command=_devices_revoke)
    listing = actions.add_parser("list", help="registered devices as a table")
    listing.add_argument("--kind", choices=DEVICE_KINDS)
    listing.add_argument("--gateway", metavar="GW", help="only the meters behind this gateway")
    listing.set_defaults(command=_devices_list)


def _add_auth(commands: argparse._SubParsersAction) -> None:
    auth = commands.add_parser("auth", help="the token issuer's signing keys")
    actions = auth.add_subparsers(required=True, metavar="COMMAND")
    rotate_key = actions.add_parser(
        "rotate-key", help="write a new signing key; new tokens are signed with it, the previous key stays "
                           "published (tokens of the key before that stop verifying)")
    rotate_key.add_argument("--keys-dir", type=Path, metavar="DIR",
                            help="the keys folder (default: SMARTGRID_AUTH_KEYS_DIR, else <state dir>/auth/keys)")
    rotate_key.set_defaults(command=_rotate_key)


def _add_audit(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser("audit", help="the hash-chained audit log")
    actions = audit.add_subparsers(required=True, metavar="COMMAND")
    actions.add_parser(
        "verify", help="walk the hash chain in the users database; exit 1 naming the first changed, removed or "
                       "reordered row").set_defaults(command=_audit_verify)
    listing = actions.add_parser("list", help="audit entries, oldest first, through the audit API")
    listing.add_argument("--actor", help="only this actor's entries")
    listing.add_argument("--action", help="only entries of this action, e.g. user.create")
    listing.add_argument("--after", type=int, default=0, metavar="SEQ", help="entries after this seq (paging)")
    listing.add_argument("--limit", type=int, default=100, metavar="N", help=f"at most N (1 to {MAX_AUDIT_LIMIT})")
    listing.set_defaults(command=_audit_list)


def _users_create(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(sys.stdin, f"password for {args.name}: ")
    if not password:
        print("smartgrid users create: --password-stdin: expected a password as the first line of stdin, found "
              "none", file=sys.stderr)
        return 2
    user = _admin(settings, lambda client: client.create_user(args.name, args.role, password))
    print(format_users([user]))
    return 0


def _users_list(_args: argparse.Namespace, settings: Settings) -> int:
    print(format_users(_admin(settings, lambda client: client.users())))
    return 0


def _users_update(args: argparse.Namespace, settings: Settings) -> int:
    print(format_users([_admin(settings, lambda client: client.update_user(args.name, **args.change))]))
    return 0


def _devices_register(args: argparse.Namespace, settings: Settings) -> int:
    spec = {"device_id": args.id, "kind": args.kind, "gateway_id": args.gateway}
    [device] = _admin(settings, lambda client: client.register([spec]))
    behind = f" behind gateway {device['gateway_id']}" if device.get("gateway_id") else ""
    print(f"registered {device['kind']} {device['device_id']}{behind}")
    if "client_secret" in device:
        _print_secret(device["client_id"], device["client_secret"])
    else:
        print("no client secret: its readings come through its gateway")
    return 0


def _devices_renew_secret(args: argparse.Namespace, settings: Settings) -> int:
    secret = _admin(settings, lambda client: client.new_secret(args.id))
    print(f"new client secret for {args.id}; the previous one no longer takes tokens")
    _print_secret(args.id, secret)
    return 0


def _print_secret(client_id: str, secret: str) -> None:
    print(f"client id:     {client_id}")
    print(f"client secret: {secret}")
    print("store it now; it is not shown again")


def _devices_revoke(args: argparse.Namespace, settings: Settings) -> int:
    device = _admin(settings, lambda client: client.revoke(args.id))
    print(f"revoked {device['kind']} {device['device_id']} at {_time(device['revoked_at'])}: "
          "its client secret no longer takes tokens")
    return 0


def _devices_list(args: argparse.Namespace, settings: Settings) -> int:
    print(format_devices(_admin(settings, lambda client: client.devices(kind=args.kind, gateway=args.gateway))))
    return 0


def _rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    folder = args.keys_dir or settings.keys_dir()
    had_keys = any(folder.glob("key-*.pem"))
    key = rotate(folder)
    published = [each.kid for each in KeyRing(folder).keys()]  # noqa: SIM118 (a method, not a dict)
    roles = ["signs new tokens", *["verifies the tokens it signed until they expire"] * (len(published) - 1)]
    print(f"new signing key {key.kid} in {folder}")
    print("published keys: " + "; ".join(f"{kid} ({role})" for kid, role in zip(published, roles, strict=True)))
    if not had_keys:
        print(f"note: {folder} held no key before; the running users service reads SMARTGRID_AUTH_KEYS_DIR, else "
              "<its state dir>/auth/keys", file=sys.stderr)
    return 0


def _audit_verify(_args: argparse.Namespace, settings: Settings) -> int:
    try:
        result = aio.run(verify_audit_log(settings))
    except psycopg.Error as error:
        print(f"smartgrid audit verify: expected to read the users database's audit_log, found: {error}",
              file=sys.stderr)
        return 1
    if result.intact:
        print(f"audit log intact: {result.rows} rows, head {result.head}")
        return 0
    print(f"audit log NOT intact: {result.problem}; the {result.rows} rows before it check out", file=sys.stderr)
    return 1


def _audit_list(args: argparse.Namespace, settings: Settings) -> int:
    params = {"actor": args.actor, "action": args.action, "after": str(args.after), "limit": str(args.limit)}
    page = _admin(settings, lambda client: client.audit(
        **{name: value for name, value in params.items() if value is not None}))
    print(format_audit(page["entries"]))
    if page.get("next") is not None:
        print(f"more entries: add --after {page['next']}", file=sys.stderr)
    return 0


async def verify_audit_log(settings: Settings) -> Verification:
    """Walk the audit log of the users database (SMARTGRID_DSN_USERS, else the running platform's)."""
    dsn = settings.domain_dsns.get("users") or PlatformState.load(settings.state_dir).dsns["users"]
    database = Database(dsn, max_size=1)
    try:
        return await AuditLog(database).verify()
    finally:
        await database.close()


def read_password(stream: TextIO, prompt: str) -> str:
    """The first line of `stream` without its line break; on a terminal a prompt without echo."""
    if stream.isatty():
        return getpass.getpass(prompt)
    return stream.readline().rstrip("\r\n")


def _admin(settings: Settings, call: Callable[[UsersClient], Awaitable[T]]) -> T:
    """Run one call of the admin API as the command line's client; raises UsersApiError, PlatformNotRunning,
    TokenUnavailable or TokenRefused."""

    async def run() -> T:
        token, issuer = cli_token(settings), issuer_of(settings)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_S)) as session:
            return await call(UsersClient(issuer, token, session))

    return aio.run(run())


def format_users(users: Iterable[dict[str, Any]]) -> str:
    """Users as a text table."""
    now = datetime.now(UTC)
    return format_table(("USERNAME", "ROLE", "STATE", "FAILED LOGINS", "CREATED"), (
        (user["username"], user["role"], _user_state(user, now), user.get("failed_logins", 0),
         _time(user.get("created_at"))) for user in users))


def format_devices(devices: Iterable[dict[str, Any]]) -> str:
    """Devices as a text table."""
    return format_table(("DEVICE", "KIND", "GATEWAY", "STATE", "CREATED"), (
        (device["device_id"], device["kind"], device.get("gateway_id"),
         f"revoked {_time(device['revoked_at'])}" if device.get("revoked") else "active",
         _time(device.get("created_at"))) for device in devices))


def format_audit(entries: Iterable[dict[str, Any]]) -> str:
    """Audit entries as a text table."""
    return format_table(("SEQ", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "SOURCE", "DETAIL"), (
        (entry["seq"], _time(entry["at"]), entry["actor"], entry["action"], entry.get("target"), entry["outcome"],
         entry["source"], orjson.dumps(entry["detail"]).decode() if entry.get("detail") else None)
        for entry in entries))


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A text table: one line per row, columns as wide as their widest cell, None as `-`."""
    cells = [["-" if value is None else str(value) for value in row] for row in rows]
    widths = [max([len(header), *(len(row[column]) for row in cells)]) for column, header in enumerate(headers)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in [list(headers), *cells])


def _user_state(user: dict[str, Any], now: datetime) -> str:
    if user.get("disabled"):
        return "disabled"
    locked_until = _parse_time(user.get("locked_until"))
    return f"locked until {_time(locked_until)}" if locked_until is not None and locked_until > now else "enabled"


def _parse_time(value: str | datetime | None) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _time(value: str | datetime | None) -> str | None:
    """An RFC 3339 time of the API as `YYYY-MM-DD HH:MM:SS` UTC."""
    at = _parse_time(value)
    return None if at is None else f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
