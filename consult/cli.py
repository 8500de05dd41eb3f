"""The command line (SPEC §4): ``consult serve|token|policy|db ...``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

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
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


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
