from __future__ import annotations

from risk_engine import HistoryStore, check_features, extract_features

from .conftest import NOW, facts


async def _record(store, f, at, decision, completed=True):
    await store.record(user_id=f.user_id, decision_id=decision, now=at, amount_fen=f.amount_fen,
                       payee=f.payee, device_id=f.device_id, ip=f.ip, geo=f.geo,
                       moves_money=f.moves_money, completed=completed, local_hour=10)


async def _features(store, f, at):
    h = await store.read(f.user_id, payee=f.payee, device_id=f.device_id, now=at)
    return extract_features(f, h, at)


async def test_first_transfer_has_no_habit_and_new_payee(redis):
    store = HistoryStore(redis)
    x = await _features(store, facts(), NOW)
    check_features(x)
    assert x["payee_new"] is True and x["payee_added_24h"] is True
    assert x["amount_history_n"] == 0.0 and x["amount_ratio_typical"] == 1.0
    assert x["txn_count_1h"] == 0.0 and x["sim_swap_recent"] is False


async def test_habit_velocity_and_payee_age(redis):
    store = HistoryStore(redis)
    usual = facts(amount_fen=20_000)  # 200 CNY, paid every day for 30 days
    for day in range(30):
        await _record(store, usual, NOW - (30 - day) * 86400, f"d{day}")
    big = facts(amount_fen=2_000_000)  # 20,000 CNY to the same payee
    x = await _features(store, big, NOW)
    assert x["payee_new"] is False and x["payee_age_hours"] > 24 * 29
    assert 150 < x["amount_typical_cny"] < 250
    assert x["amount_ratio_typical"] > 50 and x["amount_zscore"] > 3
    assert x["amount_history_n"] > 20
    # a burst of five attempts within the hour
    for i in range(5):
        await _record(store, facts(amount_fen=50_000, payee=f"mule{i}"), NOW - 60 * i, f"b{i}",
                      completed=False)
    x = await _features(store, big, NOW + 1)
    assert x["txn_count_1h"] == 5.0 and x["txn_count_24h"] >= 5.0
    assert x["new_payees_24h"] == 5.0
    # refused attempts did not teach the habit
    assert 150 < x["amount_typical_cny"] < 250


async def test_hour_of_day_against_habit(redis):
    store = HistoryStore(redis)
    f = facts()
    for day in range(10):
        await _record(store, f, NOW - (10 - day) * 86400, f"d{day}")  # recorded at local hour 10
    local_10 = NOW - (NOW + 8 * 3600) % 86400 + 10 * 3600  # 10:xx local (UTC+8)
    local_3 = local_10 - 7 * 3600
    x10 = await _features(store, f, local_10)
    x3 = await _features(store, f, local_3)
    assert x10["hour_of_day"] == 10.0 and x10["hour_unusual"] is False
    assert x3["hour_of_day"] == 3.0 and x3["night"] is True and x3["hour_unusual"] is True


async def test_sim_swap_device_and_impossible_travel(redis):
    store = HistoryStore(redis)
    await _record(store, facts(geo=(31.23, 121.47)), NOW - 1800, "shanghai")  # Shanghai
    await store.record_sim_change("alice", NOW - 3600)
    await store.record_stepup_failure("alice", "a1", NOW - 60)
    thief = facts(device_id="alice.dev2", device_status="new", device_created=None,
                  ip="203.0.113.9", geo=(22.54, 114.06),  # Shenzhen, 1200 km, 30 min later
                  device_signals={"emulator": True})
    x = await _features(store, thief, NOW)
    assert x["sim_swap_recent"] is True and 0.9 < x["sim_swap_hours"] < 1.1
    assert x["device_new"] is True and x["device_age_days"] == 0.0
    assert x["device_emulator"] is True
    assert x["ip_changed"] is True and x["impossible_travel"] is True
    assert x["geo_distance_km"] > 1000 and x["travel_speed_kmh"] > 2000
    assert x["stepup_fail_1h"] == 1.0


async def test_history_keys_share_the_user_hash_tag(redis):
    store = HistoryStore(redis)
    await _record(store, facts(), NOW, "d1")
    await store.record_sim_change("alice", NOW)
    keys = [k.decode() for k in await redis.keys("*")]
    assert keys and all(k.startswith("{u:alice}:risk:") for k in keys)


async def test_velocity_windows_are_counted_as_of_the_request(redis):
    """Redis counts the velocity: the last hour and day end at the request, a payee
    first paid twice counts once, and a burst of refused attempts counts in full."""
    store = HistoryStore(redis)
    mule = facts(amount_fen=30_000, payee="6222000099990000")
    await _record(store, facts(amount_fen=10_000), NOW - 25 * 3600, "old")  # out of the day
    await _record(store, mule, NOW - 23 * 3600, "m1", completed=False)
    await _record(store, mule, NOW - 61 * 60, "m2", completed=False)
    await _record(store, facts(amount_fen=5_000), NOW - 59 * 60, "recent")
    await store.record_stepup_failure("alice", "f-old", NOW - 2 * 3600)
    await store.record_stepup_failure("alice", "f-new", NOW - 30 * 60)
    x = await _features(store, facts(payee="6222000055556666"), NOW)
    assert x["txn_count_1h"] == 1.0 and x["txn_count_24h"] == 3.0
    assert x["amount_sum_24h_cny"] == 650.0
    assert x["new_payees_24h"] == 1.0  # the mule, once; the other payee was known by then
    assert x["stepup_fail_1h"] == 1.0 and x["stepup_fail_24h"] == 2.0
    # the mule was never paid (both attempts refused): it is still new, and added in 24h
    y = await _features(store, mule, NOW)
    assert y["payee_new"] is True and y["payee_added_24h"] is True
    # a day later everything has left the windows
    z = await _features(store, facts(), NOW + 86400)
    assert z["txn_count_24h"] == 0.0 and z["amount_sum_24h_cny"] == 0.0
    assert z["new_payees_24h"] == 0.0 and z["stepup_fail_24h"] == 0.0
