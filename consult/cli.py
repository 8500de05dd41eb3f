"""The command line: ``consult serve|token|policy|audit|keys|retention|db ...`` (the run contract,
docs/capabilities.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from consult.config import Settings, load_settings
from consult.errors import ApiError, ConfigError

EXIT_USAGE = 2


def _settings(**overrides: object) -> Settings:
    from consult.config import validate

    base = load_settings(check=False)
    return validate(base.with_overrides(**{k: v for k, v in overrides.items() if v is not None}))


def _configure_logging(settings: Settings) -> None:
    from consult.logs import configure

    # Third-party debug logs can carry SQL parameters; the service's own lines carry ids only.
    configure(settings.log_format, settings.log_level)


class UsageError(Exception):
    """A command-line value is not acceptable (exit 2)."""


def _cli_actor(args: argparse.Namespace, org: str | None = None,
               roles: frozenset[str] = frozenset({"operator"})) -> tuple[Any, Any]:
    """Who acts from the command line, for the audit log, and the context of the act.

    The actor is ``--actor`` (the person's user id) when given, otherwise ``system:cli:<OS user>``;
    either way the record's source names the operating-system user (``cli:<OS user>``)."""
    import getpass
    import re

    from consult.model import Principal
    from consult.model.context import RequestContext
    from consult.model.identifiers import is_user_id

    try:
        os_user = re.sub(r"[^A-Za-z0-9._@-]", "_", getpass.getuser())[:40] or "unknown"
    except (KeyError, OSError):  # no name for this uid
        os_user = f"uid{os.getuid()}"
    named = getattr(args, "actor_id", None)
    if named is not None and not is_user_id(named):
        raise UsageError("--actor must be a user id (letters, digits, . _ @ : -; at most 128)")
    actor = Principal(user_id=named or f"system:cli:{os_user}", org=org or "system",
                      roles=roles, name="command line")
    return actor, RequestContext(request_id="cli", source=f"cli:{os_user}")


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from consult import __version__
    from consult.auth.dev import DEMO_USERS
    from consult.http.app import create_app
    from consult.http.listen import bind

    overrides: dict[str, object] = {"host": args.host, "port": args.port}
    if args.demo:
        overrides.update(dev=True, demo=True)
    settings = _settings(**overrides)
    _configure_logging(settings)
    # Bound first: a port another process holds stops start-up here, before anything is opened.
    sockets = bind(settings.host, settings.port)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{settings.port}/"
    print("\n".join([f"Konsulta {__version__}", *(f"  {name}: {value}" for name, value in paths_in_use(settings))]),
          flush=True)
    app = create_app(settings)

    def announce(_aiohttp_banner: str) -> None:
        """run_app calls its ``print`` once, after every site listens: only then is it running."""
        lines = [f"Konsulta is running: open {url}"]
        if settings.demo:
            lines.append("Demo mode (development issuer ON, synthetic demo users):")
            lines += [f"  {u.user_id:14} {u.org:7} {','.join(u.roles):16} {u.name}" for u in DEMO_USERS]
            lines.append("A token for the API: consult token --sub kela.aino --org kela --role advisor")
        print("\n".join(lines), flush=True)
        settle_heap()

    web.run_app(app, sock=sockets, print=announce, shutdown_timeout=10, access_log=None)
    return 0


#: Young objects allocated before the cyclic garbage collector runs (Python's default is 700).
GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Once the service is running: the objects made at start-up (policy, vocabularies, number
    metadata, compiled statements) live as long as the process, so they are moved out of the
    garbage collector's generations (``gc.freeze``), and the young generation is collected less
    often. A full collection otherwise walked the whole start-up heap every few hundred requests
    (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def paths_in_use(settings: Settings) -> list[tuple[str, str]]:
    """The absolute files and directories the service uses (no secrets: a database URL shows
    without its password), printed at start-up and by `consult config check`."""
    from consult.config import mask_url_secrets
    from consult.storage.db import sqlite_path

    database = sqlite_path(settings.database_url)
    rows = [
        ("data directory", str(settings.data_dir)),
        ("database", str(database.absolute()) if database else mask_url_secrets(settings.database_url)),
        ("key file", str(settings.key_file)),
        ("audit signing key", str(settings.effective_audit_key_file)),
        ("audit checkpoint file", str(settings.effective_checkpoint_file)),
        ("policies", f"{settings.policy_dir} (profile {settings.policy_profile})"),
        ("web app", str(settings.web_dir)),
    ]
    if settings.dev:
        rows.append(("development issuer key", str(settings.dev_key_file)))
    return rows


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
    """Needs only the database URL: migrating is not serving, so no identity provider is asked for."""
    from consult.config import validate_database_url
    from consult.storage import migrate

    settings = validate_database_url(load_settings(check=False))
    try:
        migrate.upgrade(settings.database_url, args.revision)
        revision = migrate.current(settings.database_url)
    except migrate.DatabaseInUse as exc:
        print(f"refused: {exc}; nothing changed", file=sys.stderr)
        return 1
    except Exception as exc:  # unreachable server, unknown revision, a file that is no database
        raise ConfigError(f"CONSULT_DATABASE_URL: the upgrade failed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    print(f"database at revision {revision}")
    return 0


def cmd_policy_test(args: argparse.Namespace) -> int:
    from consult.policy.cli import run_policy_tests

    directory = Path(args.dir) if args.dir else _offline_settings().policy_dir
    return run_policy_tests(directory, sys.stdout, args.profile)


def cmd_policy_explain(args: argparse.Namespace) -> int:
    from consult.policy.cli import explain

    settings = _offline_settings()
    directory = Path(args.dir) if args.dir else settings.policy_dir
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
        profile=args.profile or settings.policy_profile,
    )


@asynccontextmanager
async def _offline(settings: Settings, *, keys: bool = True) -> AsyncIterator[tuple[Any, Any, Any]]:
    """The database and (with ``keys``) the keyring and vault, from the composition root
    (``consult.app.offline``): nothing here creates keys."""
    from consult import app as root

    async with root.offline(settings, with_keys=keys) as opened:
        yield opened.db, opened.keyring, opened.vault


async def _schema_for_empty_server_database(settings: Settings) -> None:
    """`consult init` on a database server's empty database (no tables of ours, no revision)
    brings it to the schema head; one behind the head is left to `consult db upgrade`."""
    from consult.storage import migrate

    if not settings.is_sqlite and await asyncio.to_thread(migrate.current, settings.database_url) is None:
        await asyncio.to_thread(migrate.upgrade, settings.database_url)


def cmd_init(args: argparse.Namespace) -> int:
    """Keys for an empty database: create the key files that are missing and record their fingerprints."""
    from consult.crypto import signing
    from consult.model import SystemClock
    from consult.services.deployment import KeyFiles
    from consult.storage import deployment as deployment_store

    settings = _offline_settings()
    files = KeyFiles.of(settings)
    try:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"CONSULT_DATA_DIR: {settings.data_dir} cannot be created ({exc.strerror})") from None

    async def run() -> int:
        from consult import app as root

        await _schema_for_empty_server_database(settings)
        async with root.database(settings) as db:  # a new embedded database gets the schema head
            async with db.read() as conn:
                recorded = await deployment_store.recorded(conn)
                holds_data = await deployment_store.holds_data(conn)
            if recorded is not None:
                print(f"refused: this database already has its keys (deployment {recorded.origin}, recorded "
                      f"{recorded.recorded_at:%Y-%m-%d}); nothing changed", file=sys.stderr)
                return 1
            if holds_data:
                print("refused: this database holds data, and its keys are never replaced; start the service "
                      "with its existing key files (CONSULT_KEY_FILE, CONSULT_AUDIT_KEY_FILE) to adopt them",
                      file=sys.stderr)
                return 1
            existed = {"key_file": files.key_file.exists(), "audit_key_file": files.audit_key_file.exists()}
            bound = await root.keys(db, settings, SystemClock(), create=True)
        _print_json({
            "data_dir": str(settings.data_dir),
            "database": dict(paths_in_use(settings))["database"],
            "deployment": settings.deployment,
            "origin": bound.origin,
            "key_file": {"path": str(files.key_file), "created": not existed["key_file"],
                         "fingerprints": {str(v): fp for v, fp in bound.keyring.fingerprints().items()},
                         "blind_index_fingerprint": bound.keyring.blind_index_fingerprint()},
            "audit_key_file": {"path": str(files.audit_key_file), "created": not existed["audit_key_file"],
                               "fingerprint": signing.signing_key_fingerprint(bound.audit_seed)},
        })
        return 0

    return asyncio.run(run())


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_keys(args: argparse.Namespace) -> int:
    from consult.model import SystemClock
    from consult.services.keys import KeyInUse, KeyManagement, RotationRefused

    settings = _offline_settings()
    operator, ctx = _cli_actor(args)

    async def run() -> int:
        async with _offline(settings) as (db, keyring, _vault):
            keys = KeyManagement(db, keyring, SystemClock(), operator=operator, ctx=ctx)
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
            except (KeyInUse, RotationRefused, ValueError) as exc:
                print(f"refused: {exc}", file=sys.stderr)
                return 1
        return 0

    return asyncio.run(run())


def cmd_retention_run(args: argparse.Namespace) -> int:
    from consult.model import SystemClock
    from consult.services.content import Content
    from consult.services.retention import Retention

    settings = _offline_settings()
    operator, ctx = _cli_actor(args)

    async def run() -> int:
        async with _offline(settings) as (db, _keyring, vault):
            retention = Retention(db, vault, Content(vault), SystemClock(),
                                  schedule=settings.retention_schedule, actor=operator)
            _print_json((await retention.run(ctx)).as_json())
        return 0

    return asyncio.run(run())


def cmd_retention_export(args: argparse.Namespace) -> int:
    """The client-record export as the local operator of ``--org``; exit 0 written, 2 usage."""
    from consult.model import SystemClock
    from consult.model.identifiers import is_client_ref

    settings = _offline_settings()
    if args.org not in settings.orgs:
        print(f"usage: --org must be one of {', '.join(settings.orgs)}", file=sys.stderr)
        return EXIT_USAGE
    if not all(is_client_ref(r) for r in args.client_ref):
        print("usage: --client-ref must be client references (cl_...)", file=sys.stderr)
        return EXIT_USAGE
    try:
        since, until = _moment(args.from_, end=False), _moment(args.to, end=True)
    except ValueError as exc:
        print(f"usage: --from/--to: {exc}", file=sys.stderr)
        return EXIT_USAGE
    operator, ctx = _cli_actor(args, args.org)

    async def run() -> int:
        async with _offline(settings) as (db, _keyring, vault):
            exporter = await _client_record_export(settings, db, vault, SystemClock())
            lines = await exporter.export(operator, ctx, since=since,
                                          until=until, client_refs=tuple(args.client_ref))
        if args.out:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.writelines(lines)
        else:
            sys.stdout.writelines(lines)
        return 0

    return asyncio.run(run())


def _moment(text: str | None, *, end: bool) -> Any:
    """A --from/--to value: ISO 8601 with a zone, or a date (Helsinki; ``end`` means the next day's start).
    The API's parser (``consult.model.instant``); raises ValueError."""
    from consult.model.instant import parse_instant

    if not text:
        return None
    return parse_instant(text, day="next_start" if end else "start")


async def _client_record_export(settings: Settings, db: Any, vault: Any, clock: Any) -> Any:
    """The export service over the same policy and services the server wires (``consult.app.core``)."""
    from consult import app as root
    from consult.services.client_record import ClientRecordExport

    core = await root.core(settings, db, vault, root.policy(settings), clock)
    return ClientRecordExport(db, core.messages, clock)


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent online copy of the embedded database and its manifest; exit 0 done, 1 refused,
    2 usage (PostgreSQL has its own tools)."""
    from consult.config import validate_database_url
    from consult.model import SystemClock
    from consult.services.backup import BackupRefused, manifest_path, take_backup
    from consult.storage.db import Database, sqlite_path

    settings = validate_database_url(load_settings(check=False))
    source = sqlite_path(settings.database_url)
    if not settings.is_sqlite:
        print("usage: consult backup copies the embedded SQLite database; back up PostgreSQL with pg_dump "
              "as README.md describes under \"Backup and restore\"", file=sys.stderr)
        return EXIT_USAGE
    if source is None or not source.is_file():
        print(f"usage: no database at {source}", file=sys.stderr)
        return EXIT_USAGE
    target = Path(args.path).absolute()

    async def run() -> int:
        db = Database(settings.database_url)  # reads only: no writer is started
        try:
            manifest = await take_backup(db, target, SystemClock())
        except BackupRefused as exc:
            print(f"refused: {exc}; nothing written", file=sys.stderr)
            return 1
        finally:
            await db.close()
        _print_json({"backup": str(target), "manifest": str(manifest_path(target)), **manifest})
        return 0

    return asyncio.run(run())


def cmd_clients_merge(args: argparse.Namespace) -> int:
    """Re-index clients under the canonical identity-code form and merge the duplicates (audited)."""


    from consult.model import SystemClock
    from consult.services.client_merges import ClientMerges

    settings = _offline_settings()
    operator, ctx = _cli_actor(args)

    async def run() -> int:
        async with _offline(settings) as (db, _keyring, vault):
            merges = ClientMerges(db, vault, SystemClock())
            if args.dry_run:
                survey = await merges.survey()
                _print_json({"legacy": survey.legacy, "duplicates": survey.duplicates,
                             "unreadable": survey.unreadable, "links_pending": survey.links_pending})
            else:
                report = await merges.merge_duplicates(operator, ctx)
                _print_json(report.as_json())
        return 0

    return asyncio.run(run())


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Exit 0 intact, 1 tampered or inconsistent with a signed checkpoint, 2 usage."""
    from datetime import timedelta

    from consult.audit.anchor import checkpoint_file_mismatch
    from consult.audit.checkpoint import parse_verifier_key, verifier_key
    from consult.audit.verify import unanchored_cutoff
    from consult.crypto import KeyFileError, signing
    from consult.model import SystemClock
    from consult.services.audit import verify_database
    from consult.services.deployment import KeyFiles, audit_key_mismatch, deployment_mismatch, recorded_deployment
    from consult.storage.migrate import current

    settings = _offline_settings()
    url = args.database_url or settings.database_url
    keys, origin, seed = list(args.verifier_key or []), None, b""
    for vkey in keys:
        try:
            parse_verifier_key(vkey)
        except ValueError as exc:
            print(f"usage: --verifier-key: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if not keys:  # the operator's own check: trust the log key on this host
        try:
            seed = signing.load_signing_key(settings.effective_audit_key_file)
        except KeyFileError as exc:
            print(f"usage: no --verifier-key given and {exc}", file=sys.stderr)
            return EXIT_USAGE
        keys, origin = [verifier_key(settings.audit_origin, signing.public_key(seed))], settings.audit_origin
    external = []
    for path in args.checkpoint or []:
        try:
            external.append(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"usage: cannot read checkpoint {path}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).is_file():
        print(f"usage: no database at {url.split('///', 1)[-1]}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if current(url) is None:
            print("usage: the database has no schema; run `consult db upgrade`", file=sys.stderr)
            return EXIT_USAGE
        recorded = recorded_deployment(url)
    except Exception as exc:  # an unreadable database is not a verdict on the log
        print(f"usage: cannot read the database ({type(exc).__name__})", file=sys.stderr)
        return EXIT_USAGE
    if recorded is not None and origin is not None:
        # Another deployment's name or log key is a configuration error, not tampering.
        files = KeyFiles.of(settings)
        if recorded.origin != origin:
            raise ConfigError(deployment_mismatch(recorded.origin, files))
        problem = audit_key_mismatch(recorded, seed, files.audit_key_file)
        if problem:
            raise ConfigError(problem)
    # The operator's own check reads this host's checkpoint file; a third party (--verifier-key)
    # names the copy it was given, if any.
    checkpoint_file = (Path(args.checkpoint_file) if args.checkpoint_file
                       else settings.effective_checkpoint_file if origin is not None else None)
    if args.checkpoint_file and checkpoint_file is not None and not checkpoint_file.is_file():
        print(f"usage: no checkpoint file at {checkpoint_file}", file=sys.stderr)
        return EXIT_USAGE
    if origin is not None and checkpoint_file is not None:
        problem = checkpoint_file_mismatch(checkpoint_file, origin)
        if problem:
            raise ConfigError(problem)
    cutoff = unanchored_cutoff(SystemClock().now(), timedelta(seconds=settings.audit_checkpoint_seconds))
    try:
        report = verify_database(url, keys, origin, external, checkpoint_file=checkpoint_file,
                                 unanchored_before=cutoff)
    except Exception as exc:  # an unreadable database is not a verdict on the log
        print(f"usage: cannot read the audit log ({type(exc).__name__}); is the schema current?", file=sys.stderr)
        return EXIT_USAGE
    if report.checkpoint_file == "absent" and not args.json:
        where = f"at {checkpoint_file}" if checkpoint_file is not None else "given (--checkpoint-file)"
        print(f"note: no checkpoint file {where}; checked against the signed checkpoints in the database "
              "and on the command line only", file=sys.stderr)
    if args.json:
        _print_json(report.as_json())
    elif report.ok:
        anchored = (f"; the checkpoint file's newest checkpoint ({report.file_newest} records) matches"
                    if report.file_newest is not None else "")
        print(f"audit log intact: {report.size} records, root {report.root.hex()}, "
              f"{report.checkpoints_verified} signed checkpoints and {report.external_checkpoints} external "
              f"ones consistent{anchored}")
    elif report.state == "restored" and report.restored is not None:
        n, m = report.restored
        print(f"audit log RESTORED: {report.summary} (from leaf {n} on, the log is not what checkpoint {m} signed)")
        print("  if this database was restored from a backup, accept the lost records with "
              "`consult audit acknowledge-restore --reason TEXT`;")
        print(f"  if it was not, records {n}..{m - 1} were removed behind the log's back")
    else:
        if report.first_bad_index is not None:
            print(f"audit log TAMPERED: first bad entry is leaf {report.first_bad_index}")
        elif report.first_bad_range is not None:
            after, upto = report.first_bad_range
            print(f"audit log TAMPERED: the first bad entry is among leaves {after}..{upto - 1}")
        else:
            print("audit log TAMPERED")
        for finding in report.problems:
            print(f"  {finding.kind}: {finding.detail}")
    return 0 if report.ok else 1


def cmd_audit_acknowledge_restore(args: argparse.Namespace) -> int:
    """Exit 0 acknowledged, 1 refused (nothing changed), 2 usage or configuration."""
    from consult.errors import Unprocessable
    from consult.model import SystemClock
    from consult.services.audit import written_reason
    from consult.services.checkpoints import RestoreRefused

    settings = _offline_settings()
    try:
        reason = written_reason(args.reason, "--reason", "Acknowledging a restore")
    except Unprocessable as exc:
        print(f"usage: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    operator, ctx = _cli_actor(args)

    async def run() -> int:
        from consult import app as root

        async with root.database(settings, new_schema=False) as db:
            bound = await root.keys(db, settings, SystemClock(), create=False)
            keeper = root.checkpoints(db, settings, bound.audit_seed, bound.origin)
            try:
                result = await keeper.acknowledge_restore(operator, reason, ctx)
            except RestoreRefused as exc:
                print(f"refused: {exc}; nothing changed", file=sys.stderr)
                return 1
        _print_json(result)
        return 0

    return asyncio.run(run())


def cmd_audit_export(args: argparse.Namespace) -> int:


    from consult.model import SystemClock, secrecy
    from consult.services.audit import AuditQuery, export_records

    try:
        query = AuditQuery(
            client_ref=args.client_ref, actor_id=args.actor,
            actions=tuple(args.action.split(",")) if args.action else (), outcome=args.outcome,
            category=args.category, basis=args.basis,
            since=_moment(args.from_, end=False), until=_moment(args.to, end=True),
        )
    except ValueError as exc:
        print(f"usage: --from/--to: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as exc:  # a filter the content gate refuses
        print(f"usage: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    settings = _offline_settings()
    operator, ctx = _cli_actor(args, args.org)

    async def run() -> int:
        async with _offline(settings, keys=False) as (db, _keyring, _vault):
            lines = await export_records(db, SystemClock(), operator, query, args.format, ctx, org=args.org)
            # A one-shot command: opening its output file blocks nothing else (hence ASYNC230).
            with (open(args.output, "w", encoding="utf-8", newline="")  # noqa: ASYNC230
                  if args.output else contextlib.nullcontext(sys.stdout)) as out:
                # The data stays parseable; the operator is told, beside it, that it is secret.
                print(" / ".join(secrecy.MARKING.values()), file=sys.stderr)
                async for chunk in lines:
                    out.write(chunk)
        return 0

    return asyncio.run(run())


def cmd_stats(args: argparse.Namespace) -> int:
    """The steering-meeting statistics of one organisation (docs/capabilities.md C8), as CSV or JSON on stdout."""
    from consult.errors import ApiError
    from consult.model import SystemClock
    from consult.services.statistics import Statistics, parse_month

    settings = _offline_settings()
    # the organisation's own statistics, read as its administrator would (nothing is audited)
    reader, _ctx = _cli_actor(args, org=args.org, roles=frozenset({"admin"}))

    async def run() -> int:
        async with _offline(settings, keys=False) as (db, _keyring, _vault):
            stats = Statistics(db, SystemClock())
            try:
                first, last = parse_month(args.first, "--from"), parse_month(args.last, "--to")
                if args.json:
                    _print_json(await stats.report(reader, first, last))
                else:
                    sys.stdout.write(await stats.csv(reader, first, last))
            except ApiError as exc:
                print(f"refused: {exc.message}", file=sys.stderr)
                return EXIT_USAGE
        return 0

    return asyncio.run(run())


def cmd_config_check(args: argparse.Namespace) -> int:
    """The effective configuration, secrets masked, and every problem found that would stop or
    cripple `consult serve`; exit 0 none, 1 problems, 2 a value that cannot even be read."""
    from consult import __version__
    from consult.config import effective_configuration, validate

    settings = load_settings(check=False)
    print(f"konsulta {__version__}")
    for key, value in effective_configuration(settings):
        print(f"{key}={value}")
    for name, value in paths_in_use(settings):
        print(f"# {name}: {value}")
    problems = []
    try:
        validate(settings)
    except ConfigError as exc:
        problems.append(str(exc))
    problems += _file_problems(settings)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"configuration check: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def _file_problems(settings: Settings) -> list[str]:
    """What the files and directories of ``settings`` would make fail at start-up."""
    from consult.policy.loader import PolicyError, load_policy

    problems = []
    try:
        load_policy(settings.policy_dir, profile=settings.policy_profile)
    except PolicyError as exc:
        problems.append(f"CONSULT_POLICY_DIR: {exc}")
    except OSError as exc:
        problems.append(f"CONSULT_POLICY_DIR: {settings.policy_dir} cannot be read ({exc.strerror})")
    if not (settings.web_dir / "index.html").is_file():
        problems.append(f"CONSULT_WEB_DIR: {settings.web_dir} has no index.html; the browser app would not be served")
    existing = settings.data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        problems.append(f"CONSULT_DATA_DIR: {settings.data_dir} is not a directory this user can write "
                        f"(nearest existing: {existing})")
    offset = len(settings.identity_providers) - len(settings.issuers)
    for index, provider in enumerate(settings.identity_providers):
        if "://" in provider.jwks or Path(provider.jwks).is_file():
            continue
        where = "CONSULT_JWKS" if index < offset else f"CONSULT_CONFIG: issuers[{index - offset}].jwks"
        problems.append(f"{where}: {provider.jwks} is not a file")
    return problems


def _offline_settings() -> Settings:
    """Settings for offline commands, which verify no token: no identity provider is required and
    development mode is never switched on here (``consult.app.offline_settings``)."""
    from consult import app as root

    return root.offline_settings()


def _acting(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A command whose act is audited: who acts, when not the operating-system user."""
    command.add_argument("--actor", dest="actor_id", metavar="USER_ID",
                         help="record this user id as the actor in the audit log (default: system:cli:<OS user>; "
                              "the OS user is recorded as the source either way)")
    return command


def parser() -> argparse.ArgumentParser:
    from consult import __version__

    p = argparse.ArgumentParser(prog="consult",
                                description="Konsulta: consultations between Kela and wellbeing services counties")
    p.add_argument("--version", action="version", version=f"konsulta {__version__}")
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
    ptest.add_argument("--profile", help="only this policy profile (default: every profile)")
    ptest.set_defaults(func=cmd_policy_test)
    pexp = psub.add_parser("explain", help="why one decision comes out as it does")
    pexp.add_argument("--dir")
    pexp.add_argument("--profile", help="policy profile (default CONSULT_POLICY_PROFILE, today)")
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
    _acting(ksub.add_parser("rotate", help="add a new version and rewrap every data key (the service keeps "
                            "serving)")).set_defaults(func=cmd_keys)
    for name, text in (("retire", "stop using a version that no data key needs any more"),
                       ("remove", "delete a retired, unused version's key material for good")):
        cmd = _acting(ksub.add_parser(name, help=text))
        cmd.add_argument("version", type=int)
        cmd.set_defaults(func=cmd_keys)

    retention = sub.add_parser("retention", help="retention per record type, and the client-record export")
    rsub = retention.add_subparsers(dest="retention_command", required=True)
    _acting(rsub.add_parser("run", help="close inactive consultations, crypto-shred closed ones, delete ended "
                            "consents, revoked prohibitions and idle client entries past their periods (all audited)"
                            )).set_defaults(func=cmd_retention_run)
    export = _acting(rsub.add_parser("export-client-record", help="§ 35 contacts and decision-relevant advice of an "
                             "organisation's closed consultations as JSON Lines for its client record (audited)"))
    export.add_argument("--org", required=True, help="the organisation whose consultations are exported")
    export.add_argument("--from", dest="from_", help="closed at or after (ISO 8601 time with zone, or a date)")
    export.add_argument("--to", help="closed before (a date counts whole)")
    export.add_argument("--client-ref", action="append", default=[], help="only this client (repeatable)")
    export.add_argument("--out", help="write to this file (created with mode 0600) instead of standard output")
    export.set_defaults(func=cmd_retention_export)

    clients = sub.add_parser("clients", help="the client registry")
    csub = clients.add_subparsers(dest="clients_command", required=True)
    merge = _acting(csub.add_parser("merge-duplicates", help="re-index clients under the canonical identity-code "
                                    "form and merge those that are one person (audited)"))
    merge.add_argument("--dry-run", action="store_true", help="only count what would change")
    merge.set_defaults(func=cmd_clients_merge)

    stats = sub.add_parser("stats", help="statistics for the steering meeting (no personal data)")
    stats.add_argument("--org", required=True, help="the organisation whose consultations are counted")
    stats.add_argument("--from", dest="first", help="first month YYYY-MM (default: 11 months before --to)")
    stats.add_argument("--to", dest="last", help="last month YYYY-MM (default: this month)")
    stats.add_argument("--json", action="store_true", help="JSON instead of CSV")
    stats.set_defaults(func=cmd_stats)

    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    averify = asub.add_parser("verify", help="recompute the whole log and check every signed checkpoint "
                              "(exit 0 intact, 1 tampered, 2 usage)")
    averify.add_argument("--verifier-key", action="append",
                         help="trust this note verifier key (repeatable); default: the log key on this host")
    averify.add_argument("--checkpoint", action="append", metavar="FILE",
                         help="a signed checkpoint kept elsewhere that the log must still contain (repeatable)")
    averify.add_argument("--checkpoint-file", metavar="FILE",
                         help="the checkpoint file whose newest checkpoint the log must match; default: "
                              "CONSULT_CHECKPOINT_FILE (audit-checkpoints.jsonl in the data directory)")
    averify.add_argument("--database-url", help="default: CONSULT_DATABASE_URL")
    averify.add_argument("--json", action="store_true", help="print the report as JSON")
    averify.set_defaults(func=cmd_audit_verify)
    aack = _acting(asub.add_parser("acknowledge-restore",
                                   help="accept that the log was restored to an earlier state (or its checkpoint "
                                        "file lost): recorded in the log and the checkpoint file; refused otherwise"))
    aack.add_argument("--reason", required=True,
                      help="why (20-2000 characters, e.g. the incident and backup used; no identity codes)")
    aack.set_defaults(func=cmd_audit_acknowledge_restore)
    aexport = asub.add_parser("export", help="export records as CSV or JSON Lines (the export is itself logged)")
    aexport.add_argument("--format", choices=("csv", "jsonl"), required=True)
    aexport.add_argument("--org", help="only records that concern this organisation")
    aexport.add_argument("--client-ref")
    aexport.add_argument("--actor")
    aexport.add_argument("--action", help="one action, or several comma-separated")
    aexport.add_argument("--outcome", choices=("permit", "deny"))
    aexport.add_argument("--category")
    aexport.add_argument("--basis", help="statute, consent, internal, or an exact basis")
    aexport.add_argument("--from", dest="from_", metavar="FROM", help="ISO 8601 time with zone, or a date")
    aexport.add_argument("--to", help="ISO 8601 time with zone, or a date (inclusive)")
    aexport.add_argument("--output", "-o", help="file to write (default: standard output)")
    aexport.set_defaults(func=cmd_audit_export)

    config = sub.add_parser("config", help="the configuration")
    cfgsub = config.add_subparsers(dest="config_command", required=True)
    cfgsub.add_parser("check", help="print the effective configuration (secrets masked) and every problem "
                      "found; exit 0 none, 1 problems").set_defaults(func=cmd_config_check)

    init = sub.add_parser("init", help="create the data directory, a new database at the schema head and its "
                          "keys (refused once the database has keys or data)")
    init.set_defaults(func=cmd_init)

    backup = sub.add_parser("backup", help="consistent online copy of the SQLite database, with a manifest "
                            "beside it (PATH.manifest.json); PostgreSQL: see README")
    backup.add_argument("path", metavar="PATH", help="the new backup file (never overwritten)")
    backup.set_defaults(func=cmd_backup)

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
    except UsageError as exc:
        print(f"usage: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
