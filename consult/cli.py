"""The command line (SPEC §4): ``consult serve|token|policy|db ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from consult.config import Settings, load_settings
from consult.errors import ConfigError

EXIT_USAGE = 2


def _settings(**overrides: object) -> Settings:
    from consult.config import validate

    base = load_settings(check=False)
    return validate(base.with_overrides(**{k: v for k, v in overrides.items() if v is not None}))


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # Third-party debug logs can carry SQL parameters; the service's own lines carry ids only.
    for noisy in ("aiohttp.access", "aiosqlite", "sqlalchemy", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from consult.auth.dev import DEMO_USERS
    from consult.http.app import create_app

    overrides: dict[str, object] = {"host": args.host, "port": args.port}
    if args.demo:
        overrides.update(dev=True, demo=True)
    settings = _settings(**overrides)
    _configure_logging()
    app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}/"

    async def announce(_app: web.Application) -> None:
        lines = [f"Konsulta is running: open {url}"]
        if settings.demo:
            lines.append("Demo mode (development issuer ON, synthetic demo users):")
            lines += [f"  {u.user_id:14} {u.org:7} {','.join(u.roles):16} {u.name}" for u in DEMO_USERS]
            lines.append("A token for the API: consult token --sub kela.aino --org kela --role advisor")
        print("\n".join(lines), flush=True)

    app.on_startup.append(announce)
    web.run_app(app, host=settings.host, port=settings.port, print=None, shutdown_timeout=10, access_log=None)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from consult.auth.dev import DevIssuer

    settings = load_settings()
    if not settings.dev:
        print("consult token is the development issuer: set CONSULT_DEV=1", file=sys.stderr)
        return EXIT_USAGE
    issuer = DevIssuer(settings.dev_key_file, issuer=settings.effective_issuer, audience=settings.audience)
    print(issuer.mint(sub=args.sub, org=args.org, roles=args.role, name=args.name, ttl=args.ttl))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from consult.storage import migrate

    settings = load_settings()
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at revision {migrate.current(settings.database_url)}")
    return 0


def cmd_policy_test(args: argparse.Namespace) -> int:
    from consult.policy.cli import run_policy_tests

    directory = Path(args.dir) if args.dir else load_settings_lenient().policy_dir
    return run_policy_tests(directory, sys.stdout)


def cmd_policy_explain(args: argparse.Namespace) -> int:
    from consult.policy.cli import explain

    directory = Path(args.dir) if args.dir else load_settings_lenient().policy_dir
    return explain(
        directory,
        args.sender_org,
        args.sender_role,
        args.recipient_org,
        args.recipient_role,
        args.category,
        args.purpose,
        args.with_consent,
        sys.stdout,
    )


@asynccontextmanager
async def _offline(settings: Settings) -> AsyncIterator[tuple[Any, Any, Any]]:
    """The database (migrated), keyring and vault, for commands that run beside the server."""
    from consult.crypto import FileKeyring, KeyFileError
    from consult.services.vault import Vault
    from consult.storage import migrate
    from consult.storage.db import Database

    if settings.is_sqlite:
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    try:
        keyring = FileKeyring.open(settings.key_file, create=True)
    except KeyFileError as exc:
        raise ConfigError(f"CONSULT_KEY_FILE: {exc}") from None
    db = Database(settings.database_url)
    await db.start()
    try:
        yield db, keyring, Vault(keyring, keyring)
    finally:
        await db.close()


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_keys(args: argparse.Namespace) -> int:
    from consult.model import SystemClock
    from consult.services.keys import KeyInUse, KeyManagement

    settings = load_settings_lenient()

    async def run() -> int:
        async with _offline(settings) as (db, keyring, _vault):
            keys = KeyManagement(db, keyring, SystemClock())
            try:
                if args.keys_command == "status":
                    _print_json(await keys.status())
                elif args.keys_command == "rotate":
                    _print_json(await keys.rotate())
                elif args.keys_command == "retire":
                    await keys.retire(args.version)
                    _print_json(await keys.status())
                elif args.keys_command == "remove":
                    await keys.remove(args.version)
                    _print_json(await keys.status())
            except (KeyInUse, ValueError) as exc:
                print(f"refused: {exc}", file=sys.stderr)
                return 1
        return 0

    return asyncio.run(run())


def cmd_retention_run(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from consult.model import SystemClock
    from consult.services.content import Content
    from consult.services.retention import Retention

    settings = load_settings_lenient()

    async def run() -> int:
        async with _offline(settings) as (db, _keyring, vault):
            retention = Retention(db, vault, Content(vault), SystemClock(),
                                  period=timedelta(days=settings.retention_days))
            _print_json((await retention.run()).as_json())
        return 0

    return asyncio.run(run())


def load_settings_lenient() -> Settings:
    """Settings for offline commands that need no identity provider."""
    import os

    env = dict(os.environ)
    env.setdefault("CONSULT_DEV", "1")
    return load_settings(env)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="consult", description="Konsulta: consultations between Kela and municipalities")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--demo", action="store_true", help="development issuer, demo users and demo experts")
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="mint a development token (CONSULT_DEV=1 only)")
    token.add_argument("--sub", required=True)
    token.add_argument("--org", required=True)
    token.add_argument("--role", required=True, action="append", help="repeat for several roles")
    token.add_argument("--name")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="seconds (default 8 h)")
    token.set_defaults(func=cmd_token)

    policy = sub.add_parser("policy", help="data-minimisation policy")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    ptest = psub.add_parser("test", help="run the policy test cases; fail on a failing case or an unused rule")
    ptest.add_argument("--dir")
    ptest.set_defaults(func=cmd_policy_test)
    pexp = psub.add_parser("explain", help="why one decision comes out as it does")
    pexp.add_argument("--dir")
    pexp.add_argument("--sender-org", required=True)
    pexp.add_argument("--sender-role", required=True)
    pexp.add_argument("--recipient-org", required=True)
    pexp.add_argument("--recipient-role", required=True)
    pexp.add_argument("--category", required=True)
    pexp.add_argument("--purpose", required=True)
    pexp.add_argument("--with-consent", action="store_true", help="assume a valid consent covering the item")
    pexp.set_defaults(func=cmd_policy_explain)

    keys = sub.add_parser("keys", help="key-encryption keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    ksub.add_parser("status", help="versions and how many data keys each wraps").set_defaults(func=cmd_keys)
    ksub.add_parser("rotate", help="add a new version and rewrap every data key (the service keeps serving)"
                    ).set_defaults(func=cmd_keys)
    for name, text in (("retire", "stop using a version that no data key needs any more"),
                       ("remove", "delete a retired, unused version's key material for good")):
        cmd = ksub.add_parser(name, help=text)
        cmd.add_argument("version", type=int)
        cmd.set_defaults(func=cmd_keys)

    retention = sub.add_parser("retention", help="retention of closed consultations")
    rsub = retention.add_subparsers(dest="retention_command", required=True)
    rsub.add_parser("run", help="crypto-shred closed consultations past the retention period"
                    ).set_defaults(func=cmd_retention_run)

    db = sub.add_parser("db", help="database")
    dsub = db.add_subparsers(dest="db_command", required=True)
    up = dsub.add_parser("upgrade", help="apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
