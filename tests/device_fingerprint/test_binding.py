"""Binding rules: device count, replacement on reinstall, unbinding, history, cool-off."""

from __future__ import annotations

import asyncio

import pytest

from device_fingerprint.attributes import parse_attributes
from device_fingerprint.binding import BindingConfig, BindingEventKind, BindingStore, cool_off_until
from device_fingerprint.errors import (
    BindingInProgress,
    DeviceConfigInvalid,
    DeviceRevoked,
    DeviceUnknown,
    TooManyDevices,
)
from device_fingerprint.matching import MatchingConfig, MatchStatus, match_device

HOUR = 3600.0


async def test_maximum_device_count_is_enforced(bindings, registry, phone, new_key, now):
    for i in range(2):
        await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now + i)
    with pytest.raises(TooManyDevices) as info:
        await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now + 2)
    assert info.value.code == "device_limit_reached"
    assert len(await registry.list("alice")) == 2
    # Other users are not affected.
    await bindings.bind("bob", new_key()[1], parse_attributes(phone()), now)


async def test_unbinding_frees_a_slot(bindings, registry, phone, new_key, now):
    first = await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now)
    await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now)
    await bindings.unbind("alice", first.device.device_id, now + 10)
    with pytest.raises(DeviceRevoked):
        await registry.get(first.device.device_id)  # its key no longer signs anything
    await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now + 20)
    assert len(await registry.list("alice")) == 2


async def test_reinstall_replaces_the_old_record_without_using_a_slot(bindings, registry, phone,
                                                                      new_key, now):
    home = await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now - 30 * 86400)
    await bindings.bind("alice", new_key()[1], parse_attributes(phone(model="iPhone15,3", os="ios",
                        sim_hash="", carrier="")), now - 86400)
    reinstalled = parse_attributes(phone(install_id="R" * 22))
    match = match_device(reported=reinstalled, signed_by=None, known=await registry.list("alice"),
                         config=MatchingConfig())
    assert match.status is MatchStatus.KNOWN_REINSTALLED

    result = await bindings.bind("alice", new_key()[1], reinstalled, now, match=match,
                                 replaces=match.matched_device_id)
    assert result.replaced == home.device.device_id
    assert {d.device_id for d in await registry.list("alice")} >= {result.device.device_id}
    assert len(await registry.list("alice")) == 2
    history = await bindings.history("alice")
    assert [(e.kind, e.device_id) for e in history[:2]] == [
        (BindingEventKind.BIND, result.device.device_id),
        (BindingEventKind.UNBIND, home.device.device_id),
    ]
    assert history[0].match_status == "known_reinstalled"
    assert history[0].similarity == match.similarity
    assert history[0].model == "xiaomi 23127pn0cc"


async def test_cannot_unbind_or_replace_another_users_device(bindings, phone, new_key, now):
    bobs = await bindings.bind("bob", new_key()[1], parse_attributes(phone()), now)
    with pytest.raises(DeviceUnknown):
        await bindings.unbind("alice", bobs.device.device_id, now)
    with pytest.raises(DeviceUnknown):
        await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now,
                            replaces=bobs.device.device_id)
    await bindings.unbind("bob", bobs.device.device_id, now)
    with pytest.raises(DeviceRevoked):  # unbinding twice is refused, not recorded twice
        await bindings.unbind("bob", bobs.device.device_id, now)
    assert len(await bindings.history("bob")) == 2


async def test_concurrent_binds_cannot_exceed_the_maximum(bindings, registry, phone, new_key, now):
    await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now)
    results = await asyncio.gather(
        *(bindings.bind("alice", new_key()[1], parse_attributes(phone()), now) for _ in range(5)),
        return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) <= 1
    assert all(isinstance(r, TooManyDevices | BindingInProgress)
               for r in results if isinstance(r, Exception))
    assert len(await registry.list("alice")) <= 2


async def test_history_is_trimmed_newest_first(redis, registry, phone, new_key, now):
    store = BindingStore(redis, registry, BindingConfig(max_devices=1, history_size=3))
    for i in range(3):
        result = await store.bind("alice", new_key()[1], parse_attributes(phone()), now + i)
        await store.unbind("alice", result.device.device_id, now + i + 0.5, reason="user")
    history = await store.history("alice")
    assert len(history) == 3
    assert [e.at for e in history] == sorted((e.at for e in history), reverse=True)


async def test_new_binding_starts_a_24_hour_cool_off(bindings, binding_config, phone, new_key, now):
    result = await bindings.bind("alice", new_key()[1], parse_attributes(phone()), now)
    assert result.cool_off_until == now + 24 * HOUR
    bound_at = result.device.created
    assert cool_off_until(bound_at, now + 23 * HOUR, binding_config) == now + 24 * HOUR
    assert cool_off_until(bound_at, now + 24 * HOUR, binding_config) is None


@pytest.mark.parametrize(("table", "key"), [
    ({"max_device": 3}, "device.binding.max_device"),
    ({"max_devices": 0}, "device.binding.max_devices"),
    ({"max_devices": True}, "device.binding.max_devices"),
    ({"cool_off_daily_limit": 1.5}, "device.binding.cool_off_daily_limit"),
    ({"cool_off_seconds": "1d"}, "device.binding.cool_off_seconds"),
])
def test_binding_config_is_validated(table, key):
    with pytest.raises(DeviceConfigInvalid) as info:
        BindingConfig.from_dict(table)
    assert info.value.field == key


def test_cool_off_limit_is_cny_in_config_and_fen_inside():
    assert BindingConfig.from_dict({"cool_off_daily_limit": "2000.00"}).cool_off_daily_limit == 200_000
    assert BindingConfig().cool_off_seconds == 86_400.0
