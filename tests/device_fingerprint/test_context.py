"""The DeviceContext the gateway builds for a request, end to end over real Redis."""

from __future__ import annotations

from device_fingerprint.attributes import parse_attributes
from device_fingerprint.binding import BindingConfig, BindingStore
from device_fingerprint.context import build_device_context
from device_fingerprint.matching import MatchingConfig, MatchStatus, match_device
from device_fingerprint.signals import SignalsConfig, max_tier_allowed, parse_signals
from device_fingerprint.sim_swap import SimSwapConfig, SimSwapStore

HOUR, DAY = 3600.0, 86_400.0
BINDING = BindingConfig.from_dict({"cool_off_daily_limit": "2000.00"})
SIM = SimSwapConfig()


async def _context(redis, registry, reported, now, *, signed_by=None, signals=None):
    attrs = parse_attributes(reported)
    known = await registry.list("alice")
    match = match_device(reported=attrs, signed_by=signed_by, known=known, config=MatchingConfig())
    sig = parse_signals(signals or {}, app_signature_hash=attrs.app_signature_hash,
                        config=SignalsConfig(expected_app_signatures=frozenset(
                            {attrs.app_signature_hash})))
    swapped = await SimSwapStore(redis, SIM).latest("alice")
    return build_device_context(user_id="alice", match=match, signed_by=signed_by, known=known,
                                signals=sig, sim_swapped_at=swapped, binding=BINDING, sim_swap=SIM,
                                now=now)


async def test_reinstalled_phone_needs_step_up_and_is_dated_by_the_old_record(redis, registry, phone,
                                                                             new_key, now):
    store = BindingStore(redis, registry, BINDING)
    await store.bind("alice", new_key()[1], parse_attributes(phone()), now - 90 * DAY)

    ctx = await _context(redis, registry, phone(install_id="N" * 22), now)
    assert ctx.status is MatchStatus.KNOWN_REINSTALLED
    assert ctx.step_up_required
    assert ctx.device_id is None  # the new key is not bound yet
    assert ctx.device_age_seconds == 90 * DAY
    assert ctx.risk_status == "known"
    assert ctx.risk_signals()["reinstalled"] is True
    # Binding it now would start the cool-off.
    assert ctx.cool_off_until == now + DAY
    assert ctx.cool_off_daily_limit == 200_000


async def test_new_phone_needs_step_up(redis, registry, phone, new_key, sim_hash, now):
    store = BindingStore(redis, registry, BINDING)
    await store.bind("alice", new_key()[1], parse_attributes(phone()), now - 90 * DAY)
    ctx = await _context(redis, registry, phone(model="vivo V2309A", screen="1260x2800",
                                                sim_hash=sim_hash("8986001111")), now)
    assert ctx.status is MatchStatus.NEW and ctx.step_up_required
    assert ctx.device_age_seconds == 0.0 and ctx.risk_status == "new"


async def test_cool_off_limit_holds_for_24_hours_after_binding(redis, registry, phone, new_key, now):
    store = BindingStore(redis, registry, BINDING)
    reported = phone()
    result = await store.bind("alice", new_key()[1], parse_attributes(reported), now)
    device = await registry.get(result.device.device_id)

    during = await _context(redis, registry, reported, now + 23 * HOUR, signed_by=device)
    assert during.status is MatchStatus.BOUND and not during.step_up_required
    assert during.in_cool_off and during.cool_off_daily_limit == 200_000
    assert during.cool_off_until == now + DAY

    after = await _context(redis, registry, reported, now + DAY, signed_by=device)
    assert not after.in_cool_off and after.cool_off_daily_limit is None
    assert after.device_age_seconds == DAY


async def test_emulator_context_cannot_reach_t4(redis, registry, phone, new_key, now):
    store = BindingStore(redis, registry, BINDING)
    reported = phone()
    result = await store.bind("alice", new_key()[1], parse_attributes(reported), now - 30 * DAY)
    device = await registry.get(result.device.device_id)
    ctx = await _context(redis, registry, reported, now, signed_by=device,
                         signals={"emulator": True})
    assert ctx.max_tier == 3 == max_tier_allowed(ctx.signals)
    assert ctx.risk_signals()["emulator"] is True


async def test_sim_swap_shows_in_the_context_until_the_window_ends(redis, registry, phone, new_key,
                                                                   now):
    store = BindingStore(redis, registry, BINDING)
    reported = phone()
    result = await store.bind("alice", new_key()[1], parse_attributes(reported), now - 30 * DAY)
    device = await registry.get(result.device.device_id)
    await SimSwapStore(redis, SIM).report("alice", "sim_swap", source="carrier.cmcc", at=now,
                                          now=now)
    ctx = await _context(redis, registry, reported, now + HOUR, signed_by=device)
    assert not ctx.sms_allowed
    assert ctx.sim_swapped_at == now and ctx.sms_blocked_until == now + 7 * DAY
    later = await _context(redis, registry, reported, now + 8 * DAY, signed_by=device)
    assert later.sms_allowed and later.sms_blocked_until is None
