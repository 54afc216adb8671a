"""``riskgate learner`` and ``riskgate backtest``: the risk engine's two offline commands.

The learner is one process per deployment: it consumes the label stream,
learns with the features stored with each decision and publishes HMAC-signed
model snapshots that every gateway loads within a second. The backtest replays
recorded decisions with a candidate rule set (and optionally a model version)
and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time

from gateway.config import Config

__all__ = ["add_risk_commands"]

log = logging.getLogger("riskgate.learner")


async def _model_store(config: Config, runtime):  # noqa: ANN001, ANN202
    """The model store, keyed like the gateways': derived from the data key in Redis."""
    from gateway.data_keys import load_data_keys
    from gateway.sealing import load_kek
    from risk_engine import ModelStore

    kek = load_kek(config.assertion.kek, config.assertion.kek_file, config.data_path)
    keys = await load_data_keys(runtime.client, kek)
    return ModelStore(runtime.client, keys.derived_keys()["model-snapshot"])


async def _learner(args: argparse.Namespace, config: Config) -> int:
    from gateway.redis_store import RedisRuntime
    from risk_engine import Learner

    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        learner = Learner(runtime.client, await _model_store(config, runtime), batch_size=args.batch_size)
        print(f"learner: consuming labels from {runtime.description}; publishing every "
              f"{args.publish_interval:g} s", flush=True)
        if args.once:
            await learner.start()
            while await learner.step(time.time(), block_ms=None):
                pass
            published = await learner.publish(time.time())
            print(f"learned {learner.labels_learned} labels; published "
                  f"{', '.join(s.label for s in published)}")
            return 0
        # a blocking read waits at most half the Redis deadline, so the deadline never cuts it
        await learner.run(stop, time.time, publish_interval=args.publish_interval,
                          block_ms=int(min(1000.0, config.redis.timeout * 500)))
        return 0
    finally:
        await runtime.close()


async def _backtest(args: argparse.Namespace, config: Config) -> int:
    from gateway.redis_store import RedisRuntime
    from risk_engine import RuleSetInvalid, backtest, load_rule_file

    try:
        candidate = load_rule_file(args.rules)
    except (OSError, RuleSetInvalid) as exc:
        print(f"riskgate backtest: {args.rules}: {exc}")
        return 2
    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    try:
        model = None
        if args.model is not None:
            model = await (await _model_store(config, runtime)).load("champion", args.model)
        try:
            report = await backtest(runtime.client, candidate, model=model)
        except RuleSetInvalid as exc:
            print(f"riskgate backtest: {args.rules}: {exc}")
            return 2
    finally:
        await runtime.close()
    print(f"replayed {report.recorded.decisions} recorded money decisions "
          f"(model {report.model_version or 'as recorded'})")
    print(f"{'':<22}{'recorded':>12}{'candidate':>12}")
    for name, fmt in (("step-up rate", "{:.2%}"), ("block rate", "{:.2%}"), ("flagged rate", "{:.2%}"),
                      ("precision", "{:.3f}"), ("recall", "{:.3f}")):
        attr = name.replace("-", "_").replace(" ", "_")
        before, after = getattr(report.recorded, attr), getattr(report.candidate, attr)
        show = (lambda v, f=fmt: "n/a" if v is None else f.format(v))  # noqa: E731
        print(f"{name:<22}{show(before):>12}{show(after):>12}")
    print(f"{'fraud amount caught':<22}{report.recorded.fraud_amount_caught_fen / 100:>12,.2f}"
          f"{report.candidate.fraud_amount_caught_fen / 100:>12,.2f}   of "
          f"{report.recorded.fraud_amount_fen / 100:,.2f} labelled fraud")
    print(f"changed outcomes: {len(report.changed)}")
    for c in report.changed[: args.show]:
        label = {True: "fraud", False: "legit", None: "unlabelled"}[c.fraud]
        print(f"  {c.decision_id}  {c.before} -> {c.after}  ({c.level_before} -> {c.level_after}, {label})")
    return 0


def add_risk_commands(sub, config_loader) -> None:  # noqa: ANN001
    """Register the commands on the ``riskgate`` parser; ``config_loader(args)`` -> Config."""
    p = sub.add_parser("learner", help="learn from labels and publish signed model snapshots")
    p.add_argument("--config", default=None)
    p.add_argument("--publish-interval", type=float, default=5.0)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--once", action="store_true", help="learn what is queued, publish, exit")
    p.set_defaults(func=lambda a: asyncio.run(_learner(a, config_loader(a))))

    p = sub.add_parser("backtest", help="replay recorded decisions with a candidate rule set (writes nothing)")
    p.add_argument("--config", default=None)
    p.add_argument("--rules", required=True, help="rule set file (.toml with [[rules]], or .json)")
    p.add_argument("--model", type=int, default=None, help="champion model version to score with")
    p.add_argument("--show", type=int, default=20, help="changed outcomes to list")
    p.set_defaults(func=lambda a: asyncio.run(_backtest(a, config_loader(a))))
