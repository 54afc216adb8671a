"""The ``riskgate`` command."""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import logging
import os
import secrets
import sys
import time
from pathlib import Path

__all__ = ["main"]


from gateway.cli_admin import add_admin_commands  # noqa: E402
from gateway.cli_audit import add_audit_commands  # noqa: E402
from gateway.cli_risk import add_risk_commands  # noqa: E402


def _config(args: argparse.Namespace):  # noqa: ANN202
    from gateway.config import load_config

    return load_config(args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.tls_serving import uvicorn_tls_options

    tls = {key: value for key, value in (("cert_file", args.tls_cert), ("key_file", args.tls_key),
                                         ("client_ca_file", args.client_ca),
                                         ("client_cert_required", args.client_cert_required or None))
           if value}
    config = load_config(args.config, overrides={"tls": tls})
    uvicorn.run(create_app(config), host=config.server.host, port=config.server.port,
                log_level=args.log_level, access_log=False, proxy_headers=False,
                log_config=None,  # keep the JSON lines set up in main()
                **uvicorn_tls_options(config.tls))
    return 0


def cmd_upstream(args: argparse.Namespace) -> int:
    import uvicorn

    from banking_upstream import Ledger, UpstreamConfig, create_upstream_app, seed_demo

    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    if args.seed_demo:
        ledger = Ledger.open(str(db))
        seed_demo(ledger)
        ledger.close()
    config = UpstreamConfig(db_path=str(db), jwks_url=args.jwks_url, issuer=args.issuer,
                            audience=args.audience)
    uvicorn.run(create_upstream_app(config), host=args.host, port=args.port, log_level=args.log_level,
                access_log=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.log_level.lower() != "debug":
        # The demo narrates each request itself; access lines would only interleave with it.
        logging.getLogger("riskgate.access").setLevel(logging.WARNING)
    try:
        return asyncio.run(run_demo(once=args.once, gateway_port=args.port,
                                    upstream_port=args.upstream_port, data_dir=data_dir, tls=args.tls))
    except KeyboardInterrupt:
        return 0


async def _rotate(args: argparse.Namespace) -> int:
    from gateway.data_keys import sealer_for
    from gateway.redis_store import RedisRuntime
    from gateway.sealing import load_kek
    from gateway.signing_keys import SigningKeyStore

    config = _config(args)
    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    try:
        sealer = await sealer_for(runtime.client, load_kek(config.assertion.kek, config.assertion.kek_file,
                                                           config.data_path))
        store = SigningKeyStore(runtime.client, sealer, token_lifetime=config.assertion.lifetime,
                                refresh_interval=config.assertion.key_refresh_interval)
        ahead = config.assertion.key_publish_ahead
        new, old = await store.rotate(time.time(), publish_ahead=ahead)
        print(f"new signing key: {new}")
        if old:
            print(f"published now; it signs in {ahead:g} s (assertion.key_publish_ahead); previous key "
                  f"{old} signs until then and stays published until its last tokens expire")
        return 0
    finally:
        await runtime.close()


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    return asyncio.run(_rotate(args))


async def _rotate_enc(args: argparse.Namespace) -> int:
    from gateway.data_keys import sealer_for
    from gateway.encryption_keys import EncryptionKeyStore
    from gateway.redis_store import RedisRuntime
    from gateway.sealing import load_kek

    config = _config(args)
    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    try:
        sealer = await sealer_for(runtime.client, load_kek(config.assertion.kek, config.assertion.kek_file,
                                                           config.data_path))
        store = EncryptionKeyStore(runtime.client, sealer, grace_seconds=config.encryption.key_grace_seconds)
        new, old = await store.rotate(time.time())
        print(f"new encryption key: {new}")
        if old:
            print(f"previous key {old} still decrypts for {config.encryption.key_grace_seconds} s")
        return 0
    finally:
        await runtime.close()


def cmd_keys_rotate_enc(args: argparse.Namespace) -> int:
    return asyncio.run(_rotate_enc(args))


async def _rotate_kek(args: argparse.Namespace, new_kek: bytes | None) -> int:
    from gateway.data_keys import drop_other_keks, rotate_kek
    from gateway.redis_store import RedisRuntime
    from gateway.sealing import kek_id_of, load_kek

    config = _config(args)
    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    try:
        kek = load_kek(config.assertion.kek, config.assertion.kek_file, config.data_path)
        if new_kek is None:
            dropped = await drop_other_keks(runtime.client, kek)
            print(f"data keys now wrapped only under KEK {kek_id_of(kek)}; dropped wrappings under: "
                  f"{', '.join(dropped) or 'none'}")
            return 0
        for key_id in await rotate_kek(runtime.client, kek, new_kek):
            print(f"re-wrapped data key {key_id}: KEK {kek_id_of(kek)} -> {kek_id_of(new_kek)}")
        print(f"gateways with KEK {kek_id_of(kek)} keep working; restart each with the new KEK, then run "
              "`riskgate keys rotate-kek --drop-other-keks` with the new KEK configured")
        return 0
    finally:
        await runtime.close()


def cmd_keys_rotate_kek(args: argparse.Namespace) -> int:
    from gateway.sealing import parse_kek, read_kek_file

    new_kek: bytes | None = None
    if args.new_kek_file:
        new_kek = read_kek_file(Path(args.new_kek_file), "--new-kek-file")
    elif args.new_kek_stdin:
        new_kek = parse_kek(sys.stdin.readline(), "--new-kek-stdin", "standard input")
    elif not args.drop_other_keks:
        print("riskgate: give --new-kek-file, --new-kek-stdin or --drop-other-keks", file=sys.stderr)
        return 2
    return asyncio.run(_rotate_kek(args, new_kek))


def cmd_keys_kek(args: argparse.Namespace) -> int:
    print(base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode())
    return 0


async def _add_user(args: argparse.Namespace, password: str) -> int:
    from gateway.redis_store import RedisRuntime
    from gateway.users import UserStore

    config = _config(args)
    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    try:
        users = UserStore(runtime.client, max_failures=config.login.max_failures,
                          lockout_seconds=config.login.lockout_seconds)
        await users.create(args.user_id, password, time.time())
        print(f"enrolled {args.user_id}")
        return 0
    finally:
        await runtime.close()


def cmd_users_add(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    return asyncio.run(_add_user(args, password))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="riskgate", description="Security and risk-control gateway")
    parser.add_argument("--log-level", default=os.environ.get("RISKGATE_LOG_LEVEL", "info"))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("--config", help="TOML file (see riskgate.example.toml)")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM; overrides tls.cert_file)")
    p.add_argument("--tls-key", help="private key of --tls-cert (PEM; overrides tls.key_file)")
    p.add_argument("--client-ca", help="request client certificates and verify them against this CA")
    p.add_argument("--client-cert-required", action="store_true",
                   help="with --client-ca: refuse connections without a client certificate")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("upstream", help="run the reference banking upstream")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--db", default="./data/upstream/ledger.sqlite3")
    p.add_argument("--jwks-url", default="http://127.0.0.1:8080/.well-known/jwks.json")
    p.add_argument("--issuer", default="riskgate")
    p.add_argument("--audience", default="riskgate-upstream")
    p.add_argument("--seed-demo", action="store_true", help="create the demo customers and accounts")
    p.set_defaults(func=cmd_upstream)

    p = sub.add_parser("demo", help="run everything locally and walk the reference client through it")
    p.add_argument("--once", action="store_true", help="exit after the journey (0 when it went as expected)")
    p.add_argument("--tls", action="store_true",
                   help="serve the gateway over HTTPS with a local CA made for this run")
    p.add_argument("--port", type=int, default=8080, help="gateway port (a free one if taken)")
    p.add_argument("--upstream-port", type=int, default=8081, help="upstream port (a free one if taken)")
    p.add_argument("--data-dir", help="keep state here instead of a temporary directory")
    p.set_defaults(func=cmd_demo)

    add_risk_commands(sub, _config)
    add_audit_commands(sub, _config)
    add_admin_commands(sub, _config)

    keys = sub.add_parser("keys", help="assertion signing keys").add_subparsers(dest="keys_command",
                                                                                required=True)
    p = keys.add_parser("rotate", help="make a new signing key; the old one stays published until its tokens expire")
    p.add_argument("--config")
    p.set_defaults(func=cmd_keys_rotate)
    p = keys.add_parser("rotate-enc", help="make a new payload-encryption key; the old one decrypts "
                                           "for encryption.key_grace_seconds")
    p.add_argument("--config")
    p.set_defaults(func=cmd_keys_rotate_enc)
    p = keys.add_parser("rotate-kek", help="wrap the data keys under a new key-encryption key too; "
                                           "--drop-other-keks once every gateway runs with it")
    p.add_argument("--config")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--new-kek-file", help="file holding the new KEK (from `riskgate keys kek`)")
    how.add_argument("--new-kek-stdin", action="store_true", help="read the new KEK from standard input")
    how.add_argument("--drop-other-keks", action="store_true",
                     help="keep only the wrappings under the configured KEK")
    p.set_defaults(func=cmd_keys_rotate_kek)
    p = keys.add_parser("kek", help="print a new random key-encryption key (base64url)")
    p.set_defaults(func=cmd_keys_kek)

    users = sub.add_parser("users", help="customer enrolment").add_subparsers(dest="users_command",
                                                                              required=True)
    p = users.add_parser("add", help="enrol a customer's password")
    p.add_argument("user_id")
    p.add_argument("--config")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_users_add)
    return parser


def main(argv: list[str] | None = None) -> int:
    from gateway.config import ConfigError
    from gateway.log_format import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"riskgate: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
