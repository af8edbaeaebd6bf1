"""Token-bucket arithmetic, capacity leases and capacity units, with injected clocks."""

from __future__ import annotations

import pytest
from gate_support import ManualClock

from loadlab.embedded.ddb_gate import (
    CapacityGate,
    CapacitySettings,
    CapacityValueError,
    TokenBucket,
)
from loadlab.embedded.ddb_gate.capacity import bucket_shape, updated_settings
from loadlab.embedded.ddb_gate.units import classify, consumed, item_size, read_units, write_units

# -- the token bucket ------------------------------------------------------------------------


def test_a_bucket_starts_full_refills_at_its_rate_and_never_beyond_capacity() -> None:
    bucket = TokenBucket(rate=2.0, capacity=10.0, now=100.0)
    assert bucket.level(100.0) == 10.0
    bucket.charge(7.0, 100.0)
    assert bucket.level(100.0) == 3.0
    assert bucket.level(101.5) == 6.0  # 1.5 s x 2 units/s
    assert bucket.level(200.0) == 10.0  # capped at the burst


def test_a_bucket_admits_until_empty_and_charges_into_debt() -> None:
    bucket = TokenBucket(rate=1.0, capacity=1.0, now=0.0)
    assert bucket.admits(0.0)
    bucket.charge(3.0, 0.0)  # a 3 KB write admitted with 1 unit left
    assert bucket.level(0.0) == -2.0
    assert not bucket.admits(0.0)
    assert not bucket.admits(2.0)  # back to exactly 0: still nothing to spend
    assert bucket.admits(2.5)


def test_a_zero_rate_bucket_refuses_everything_and_an_unlimited_one_nothing() -> None:
    cut = TokenBucket(rate=0.0, capacity=0.0, now=0.0)
    assert not cut.admits(0.0) and not cut.admits(1e9)
    unlimited = TokenBucket(rate=None, capacity=0.0, now=0.0)
    unlimited.charge(1e6, 0.0)
    assert unlimited.admits(0.0) and unlimited.level(0.0) is None


def test_reconfiguring_keeps_saved_units_up_to_the_new_capacity() -> None:
    bucket = TokenBucket(rate=10.0, capacity=100.0, now=0.0)
    bucket.charge(40.0, 0.0)
    bucket.reconfigure(rate=1.0, capacity=20.0, now=1.0)  # 60 + 10 refilled, clipped to 20
    assert bucket.level(1.0) == 20.0
    assert bucket.level(3.0) == 20.0
    bucket.charge(25.0, 3.0)
    assert bucket.level(4.0) == -4.0  # refills at the new rate only


def test_a_raised_rate_grants_units_at_once_and_forgives_debt() -> None:
    bucket = TokenBucket(rate=0.0, capacity=0.0, now=0.0)
    bucket.reconfigure(rate=100.0, capacity=1000.0, now=5.0, grant=100.0)
    assert bucket.level(5.0) == 100.0
    bucket.charge(150.0, 5.0)
    bucket.reconfigure(rate=10.0, capacity=1000.0, now=5.0, grant=10.0)  # lowered: no grant
    assert bucket.level(5.0) == -50.0
    bucket.reconfigure(rate=20.0, capacity=1000.0, now=5.0, grant=20.0)
    assert bucket.level(5.0) == 20.0


def test_a_bucket_that_was_unlimited_starts_full_when_limited() -> None:
    bucket = TokenBucket(rate=None, capacity=0.0, now=0.0)
    bucket.charge(1000.0, 0.0)
    bucket.reconfigure(rate=5.0, capacity=5.0, now=10.0)
    assert bucket.level(10.0) == 5.0


@pytest.mark.parametrize(("rate", "capacity"), [(-1.0, 1.0), (1.0, -1.0), (float("inf"), 1.0)])
def test_bad_bucket_shapes_are_refused(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError, match=r"rate|capacity"):
        TokenBucket(rate=rate, capacity=capacity, now=0.0)
    with pytest.raises(ValueError, match="charge"):
        TokenBucket(rate=1.0, capacity=1.0, now=0.0).charge(-1.0, 0.0)


def test_capacity_is_per_simulated_second_with_at_least_one_second_of_burst() -> None:
    assert bucket_shape(5.0, burst_s=300.0, time_scale=1.0) == (5.0, 1500.0)
    assert bucket_shape(5.0, burst_s=300.0, time_scale=0.05) == (100.0, 1500.0)
    assert bucket_shape(5.0, burst_s=0.0, time_scale=1.0) == (5.0, 5.0)
    assert bucket_shape(None, burst_s=300.0, time_scale=1.0) == (None, 0.0)


# -- settings and their lease ----------------------------------------------------------------


def test_updates_merge_validate_and_null_means_unlimited() -> None:
    base = CapacitySettings(rcu=10.0, wcu=10.0)
    updated = updated_settings(base, {"wcu": 1, "expires_at": 50})
    assert (updated.rcu, updated.wcu, updated.burst_s, updated.expires_at) == (10, 1, 300, 50)
    assert updated_settings(updated, {"rcu": None}).rcu is None
    for bad, message in [
        ({"wcu": -1}, "wcu must be"),
        ({"rcu": True}, "rcu must be a finite number"),
        ({"burst_s": "300"}, "burst_s must be a finite number"),
        ({"throughput": 3}, "unknown capacity field"),
        ([1], "JSON object"),
    ]:
        with pytest.raises(CapacityValueError, match=message):
            updated_settings(base, bad)


def test_a_lease_lowers_capacity_until_it_expires_then_the_defaults_come_back() -> None:
    mono, wall = ManualClock(0.0), ManualClock(1_000.0)
    gate = CapacityGate(
        defaults=CapacitySettings(wcu=100.0, burst_s=10.0), clock=mono, wall_clock=wall
    )
    write = classify("PutItem", {"TableName": "tbl", "Item": {}})
    assert write is not None
    assert gate.refused_tables(write) == []
    gate.update({"wcu": 0, "burst_s": 0, "expires_at": 1_060.0})
    assert gate.lease_active() and gate.refused_tables(write) == ["tbl"]
    mono.now, wall.now = 30.0, 1_030.0
    assert gate.refused_tables(write) == ["tbl"]  # a zero rate never refills
    wall.now = 1_060.0
    assert not gate.lease_active()
    assert gate.effective() == gate.defaults
    assert gate.refused_tables(write) == []
    view = gate.view()
    assert view["active"] is False and view["settings"]["wcu"] == 100.0


def test_an_update_on_an_expired_lease_starts_from_the_defaults() -> None:
    wall = ManualClock(0.0)
    gate = CapacityGate(defaults=CapacitySettings(rcu=50.0), wall_clock=wall)
    gate.update({"rcu": 1, "wcu": 1, "expires_at": 10.0})
    wall.now = 20.0
    gate.update({"wcu": 2, "expires_at": 30.0})
    assert gate.effective().rcu == 50.0 and gate.effective().wcu == 2.0
    gate.restore()
    assert gate.override is None and gate.effective() == gate.defaults


def test_charges_drain_the_bucket_and_throttles_are_counted_per_table_and_operation() -> None:
    mono = ManualClock(0.0)
    gate = CapacityGate(defaults=CapacitySettings(rcu=2.0, burst_s=0.0), clock=mono)
    read = classify("GetItem", {"TableName": "tbl", "ConsistentRead": True})
    assert read is not None
    gate.charge(read, 200, {"tbl": (3.0, 0.0)})
    refused = gate.refused_tables(read)
    assert refused == ["tbl"]
    gate.throttled(read, refused)
    mono.now = 1.0  # -1 + 2 x 1 s
    assert gate.refused_tables(read) == []
    usage = gate.view()["tables"]["tbl"]
    assert usage["operations"]["GetItem"]["read_throttle_events"] == 1
    assert usage["consumed_rcu"] == 3.0 and usage["throttled_requests"] == 1
    assert usage["requests"] == 2 and usage["read_available"] == 1.0


def test_time_scale_makes_capacity_refill_faster_in_real_seconds() -> None:
    mono = ManualClock(0.0)
    gate = CapacityGate(defaults=CapacitySettings(wcu=1.0, burst_s=0.0), time_scale=0.1, clock=mono)
    write = classify("PutItem", {"TableName": "tbl"})
    assert write is not None
    gate.charge(write, 200, {"tbl": (0.0, 2.0)})  # level 1 - 2 = -1
    mono.now = 0.1  # one simulated second refills 1 WCU: back to 0
    assert gate.refused_tables(write) == ["tbl"]
    mono.now = 0.11
    assert gate.refused_tables(write) == []


# -- capacity units --------------------------------------------------------------------------


def test_requests_are_classified_by_operation_and_table() -> None:
    def shape(op: str, body: dict[str, object]) -> tuple[str, tuple[str, ...]] | None:
        got = classify(op, body)
        return None if got is None else (got.kind, got.tables)

    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/orders"
    assert shape("GetItem", {"TableName": arn}) == ("read", ("orders",))
    assert shape("BatchWriteItem", {"RequestItems": {"a": [], "b": []}}) == ("write", ("a", "b"))
    assert shape(
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "a"}}, {"ConditionCheck": {"TableName": "b"}}]},
    ) == ("write", ("a", "b"))
    assert shape("ExecuteStatement", {"Statement": 'SELECT * FROM "carts" WHERE k=?'}) == (
        "read",
        ("carts",),
    )
    assert shape("ExecuteStatement", {"Statement": "INSERT INTO carts VALUE {'k': 1}"}) == (
        "write",
        ("carts",),
    )
    assert shape("DescribeTable", {"TableName": "a"}) is None
    assert shape("CreateTable", {"TableName": "a"}) is None


def test_item_sizes_and_units_follow_dynamodb_billing() -> None:
    item = {"id": {"S": "abc"}, "n": {"N": "12345"}, "ok": {"BOOL": True}}
    assert item_size(item) == (2 + 3) + (1 + 4) + (2 + 1)  # names + values (N: 1 + 5/2 up)
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + 1 + 1 + 1
    assert write_units(0) == 1.0 and write_units(1024) == 1.0 and write_units(1025) == 2.0
    assert read_units(4096, consistent=True) == 1.0 and read_units(4097, consistent=True) == 2.0
    assert read_units(4097, consistent=False) == 1.0


def test_consumed_capacity_is_read_from_the_answer_or_estimated_from_sizes() -> None:
    put = classify("PutItem", {"TableName": "tbl"})
    get = classify("GetItem", {"TableName": "tbl"})
    tx = classify("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "tbl"}}]})
    assert put is not None and get is not None and tx is not None
    answered = {"ConsumedCapacity": {"TableName": "tbl", "CapacityUnits": 3.0}}
    assert consumed(put, {}, answered) == {"tbl": (0.0, 3.0)}
    listed = {
        "ConsumedCapacity": [{"TableName": "tbl", "CapacityUnits": 4.0, "WriteCapacityUnits": 4.0}]
    }
    assert consumed(tx, {}, listed) == {"tbl": (0.0, 4.0)}
    big = {"k": {"S": "k"}, "v": {"S": "x" * 5000}}
    assert consumed(put, {"Item": big}, {}) == {"tbl": (0.0, 5.0)}
    assert consumed(get, {"ConsistentRead": True}, {"Item": big}) == {"tbl": (2.0, 0.0)}
    assert consumed(get, {}, {}) == {"tbl": (0.5, 0.0)}  # a miss still costs
    failed = consumed(put, {"Item": big}, None, error_code="ConditionalCheckFailedException")
    assert failed == {"tbl": (0.0, 5.0)}
    assert consumed(put, {"Item": big}, None, error_code="ValidationException") == {}
