"""``riskgate learner`` and ``riskgate backtest`` as an operator runs them, against the
gateway's own Redis and key-encryption key."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from risk_engine import CHAMPION, LabelSource, submit_label

SOURCE = "6222020000000001"


def _riskgate(*args: str, redis_url: str, data_dir: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    env.update({"RISKGATE_REDIS_URL": redis_url, "RISKGATE_SERVER_DATA_DIR": data_dir})
    return subprocess.run([sys.executable, "-m", "gateway", "--log-level", "warning", *args],
                          env=env, capture_output=True, text=True, timeout=120)


async def test_learner_publishes_a_model_every_gateway_can_load_and_backtest_replays(
        gateway_factory, echo_upstream, redis_url, tmp_path):
    _echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url})
    client = await gw.enrolled("alice")
    await set_reserved_phone(gw.services, "alice", "+8613912345678", time.time())
    await gw.services.accounts.set("alice", {SOURCE: AccountClass.I})
    ids = []
    for i in range(4):  # more in an hour would be a velocity burst
        body = {"from_account": SOURCE, "payee_account": "6217000000004321", "amount": "20.00",
                "currency": "CNY"}
        resp = await client.call("POST", "/v1/transfers", body, headers={"Idempotency-Key": f"c{i}"})
        ids.append(resp.headers["x-riskgate-decision"])
    while gw.services.background:
        await asyncio.gather(*list(gw.services.background))
    for i, decision_id in enumerate(ids):
        await submit_label(gw.services.redis, decision_id, fraud=i % 3 == 0,
                           source=LabelSource.ANALYST, now=time.time(), author="analyst-1")

    data_dir = str(gw.config.data_path)
    learned = _riskgate("learner", "--once", redis_url=redis_url, data_dir=data_dir)
    assert learned.returncode == 0, learned.stderr
    assert "learned 4 labels" in learned.stdout
    snapshot = await gw.services.risk.model_store.load(CHAMPION)
    assert snapshot.labels_learned == 4  # signed with the gateway's derived key, verified on load

    rules = tmp_path / "candidate.toml"
    rules.write_text('[[rules]]\nid = "block_all_money"\nexpression = "moves_money"\n'
                     'effect = "block"\ndescription = "what if we blocked everything"\n')
    replay = _riskgate("backtest", "--rules", str(rules), redis_url=redis_url, data_dir=data_dir)
    assert replay.returncode == 0, replay.stderr
    assert "replayed 4 recorded money decisions" in replay.stdout
    assert "changed outcomes: 4" in replay.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nid = "typo"\nexpression = "amout_cny > 1"\neffect = "block"\n')
    refused = _riskgate("backtest", "--rules", str(bad), redis_url=redis_url, data_dir=data_dir)
    assert refused.returncode == 2 and "unknown feature 'amout_cny'" in refused.stdout
