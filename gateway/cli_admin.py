"""``riskgate admin create NAME``: add a console analyst and print a one-time enrolment link."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from gateway.config import Config

__all__ = ["add_admin_commands"]


async def _create(args: argparse.Namespace, config: Config) -> int:
    from gateway.console.analysts import AnalystError, AnalystStore, Role, create_with_link
    from gateway.redis_store import RedisRuntime

    base = (args.base_url or (config.stepup.origin_list or ("http://localhost:8080",))[0]).rstrip("/")
    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    try:
        token = await create_with_link(AnalystStore(runtime.client), args.name, Role(args.role),
                                       now=time.time(), ttl=args.ttl)
    except AnalystError as exc:
        print(f"riskgate: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await runtime.close()
    print(f"created console analyst {args.name} ({args.role}); this link registers their passkey "
          f"once within {args.ttl // 3600} h:")
    print(f"{base}/console/enrol?token={token}")
    return 0


def add_admin_commands(sub, config_loader) -> None:  # noqa: ANN001
    """Register ``riskgate admin ...``; ``config_loader(args)`` -> Config."""
    from gateway.console.analysts import ENROLMENT_TTL, Role

    admin = sub.add_parser("admin", help="analyst console accounts").add_subparsers(
        dest="admin_command", required=True)
    p = admin.add_parser("create", help="add an analyst and print a one-time passkey enrolment link")
    p.add_argument("name")
    p.add_argument("--role", default=Role.ADMIN.value, choices=[r.value for r in Role])
    p.add_argument("--config", default=None)
    p.add_argument("--base-url", help="the console's origin in the link (default: first stepup.origins)")
    p.add_argument("--ttl", type=int, default=ENROLMENT_TTL, help="seconds the link stays valid")
    p.set_defaults(func=lambda a: asyncio.run(_create(a, config_loader(a))))
