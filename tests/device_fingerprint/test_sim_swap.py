"""After a SIM swap or number port, SMS stops counting as a factor for N days."""

from __future__ import annotations

import pytest

from device_fingerprint.errors import DeviceConfigInvalid, SimSwapReportInvalid
from device_fingerprint.sim_swap import SimSwapConfig, SimSwapKind, SimSwapStore

DAY = 86_400.0


@pytest.fixture
def swaps(redis) -> SimSwapStore:
    return SimSwapStore(redis, SimSwapConfig.from_dict({"sms_block_days": 7}))


async def test_sim_swap_blocks_sms_then_the_window_expires(swaps, now):
    assert await swaps.sms_allowed("alice", now)
    await swaps.report("alice", "sim_swap", source="carrier.cmcc", at=now, now=now)

    assert not await swaps.sms_allowed("alice", now + 1)
    assert not await swaps.sms_allowed("alice", now + 7 * DAY - 1)
    assert await swaps.sms_blocked_until("alice", now + DAY) == now + 7 * DAY
    assert await swaps.sms_allowed("alice", now + 7 * DAY)
    assert await swaps.sms_allowed("bob", now + 1)  # only the reported user


async def test_window_counts_from_when_the_swap_happened(swaps, now):
    """A carrier reporting two days late does not buy the attacker two extra days."""
    await swaps.report("alice", SimSwapKind.NUMBER_PORT, source="mnp.gateway", at=now - 2 * DAY,
                       now=now)
    assert await swaps.sms_blocked_until("alice", now) == now + 5 * DAY
    (report,) = await swaps.reports("alice")
    assert report.kind is SimSwapKind.NUMBER_PORT
    assert report.reported_at == now and report.source == "mnp.gateway"


async def test_a_later_swap_extends_the_window_an_older_report_does_not_shorten_it(swaps, now):
    await swaps.report("alice", "sim_swap", source="carrier.cmcc", at=now, now=now)
    await swaps.report("alice", "sim_swap", source="upstream", at=now - 30 * DAY, now=now + 60)
    assert await swaps.latest("alice") == now
    await swaps.report("alice", "sim_swap", source="carrier.cmcc", at=now + 3 * DAY, now=now + 3 * DAY)
    assert not await swaps.sms_allowed("alice", now + 9 * DAY)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"user_id": "alice}:x", "kind": "sim_swap", "source": "carrier"}, "user_id"),
    ({"user_id": "alice", "kind": "esim", "source": "carrier"}, "kind"),
    ({"user_id": "alice", "kind": "sim_swap", "source": "Carrier Name!"}, "source"),
])
async def test_malformed_reports_are_refused(swaps, now, kwargs, field):
    with pytest.raises(SimSwapReportInvalid) as info:
        await swaps.report(kwargs["user_id"], kwargs["kind"], source=kwargs["source"], at=now, now=now)
    assert info.value.field == field
    assert info.value.code == "sim_swap_report_invalid"


async def test_a_swap_in_the_future_is_refused(swaps, now):
    with pytest.raises(SimSwapReportInvalid) as info:
        await swaps.report("alice", "sim_swap", source="carrier", at=now + DAY, now=now)
    assert info.value.field == "at"
    assert await swaps.reports("alice") == []


def test_sim_swap_config_is_validated():
    with pytest.raises(DeviceConfigInvalid) as info:
        SimSwapConfig.from_dict({"sms_block_day": 7})
    assert info.value.field == "device.sim_swap.sms_block_day"
    with pytest.raises(DeviceConfigInvalid):
        SimSwapConfig.from_dict({"sms_block_days": -1})
