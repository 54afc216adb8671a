"""``riskgate audit verify``: recompute the hash chains of the audit trail (analyst and
admin actions) and of the decision stream (every decision)."""

from __future__ import annotations

import argparse
import asyncio

import orjson

from gateway.config import Config

__all__ = ["add_audit_commands"]


async def _verify(args: argparse.Namespace, config: Config) -> int:
    from gateway.audit_trail import AuditTrail
    from gateway.redis_store import RedisRuntime
    from risk_engine import verify_decisions

    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    try:
        result = await AuditTrail(runtime.client).verify()
        decisions = await verify_decisions(runtime.client)
    finally:
        await runtime.close()
    if args.json:
        print(orjson.dumps({**result.to_dict(), "decisions": decisions.to_dict()}).decode())
    else:
        if result.ok:
            print(f"audit trail intact: {result.entries} entries, head {result.head_hash}")
        else:
            print(f"audit trail BROKEN at entry {result.first_broken_seq}: {result.problem} "
                  f"({result.entries} entries before it verify)")
        print(decisions.summary())
    return 0 if result.ok and decisions.ok else 1


def add_audit_commands(sub, config_loader) -> None:  # noqa: ANN001
    """Register ``riskgate audit ...``; ``config_loader(args)`` -> Config."""
    audit = sub.add_parser("audit", help="the hash-chained audit trail").add_subparsers(
        dest="audit_command", required=True)
    p = audit.add_parser("verify", help="recompute the audit and decision chains; exit 1 naming the first "
                                            "broken entry")
    p.add_argument("--config", default=None)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=lambda a: asyncio.run(_verify(a, config_loader(a))))


