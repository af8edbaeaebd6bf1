"""Leases outlive the harness: a crash, an expiry, a watchdog, and the next loadlab start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lambda_chaos_support import AwsStandIn, free_port, ssm_denied

from loadlab.chaos.aws_lambda import actions
from loadlab.chaos.aws_lambda.aws_clients import Clients, aws_client_factory, reserved_concurrency
from loadlab.chaos.aws_lambda.lease_store import Owner, list_leases, new_lease, record_lease
from loadlab.chaos.aws_lambda.leases import revert_due_leases, revert_orphaned_leases
from loadlab.errors import ConfigError, TargetUnreachable

pytestmark = pytest.mark.integration
MakeFunction = Callable[..., str]


def factory(endpoint: str) -> Callable[[str], object]:
    return aws_client_factory(
        endpoint_url=endpoint, region="us-east-1", access_key_id="t", secret_access_key="t"
    )


def forgotten_throttle(clients: Clients, name: str, *, expired: bool) -> str:
    """A throttle in force whose lease was recorded long ago (its harness never came back)."""
    clients.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    lease = new_lease(
        kind="throttle",
        function_name=name,
        duration_s=60,
        applied=0,
        previous=8,
        now=time.time() - (120 if expired else 0),
    )
    record_lease(clients, lease)
    return lease.lease_id


def test_a_crashed_harness_leaves_a_throttle_that_the_next_start_reverts(
    make_function: MakeFunction, clients: Clients, ministack: str
) -> None:
    name = make_function(reserved=8)
    crash = (
        "import os, sys\n"
        "from loadlab.chaos.aws_lambda.actions import throttle\n"
        f"throttle({name!r}, reserved_concurrency=0, duration_s=600)\n"
        "sys.stdout.flush()\n"
        "os._exit(9)  # no rollback, no clean exit\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", crash], env=dict(os.environ), timeout=60, check=False
    )
    assert done.returncode == 9
    assert reserved_concurrency(clients.lambda_, name) == 0
    (lease,) = list_leases(clients, function_name=name)
    assert not lease.expired(time.time()) and lease.owner.gone()

    lines = revert_orphaned_leases(factory(ministack))
    assert lines == [
        f"reverted lease {lease.lease_id} (orphaned): throttle of {name} (reserved concurrency "
        "0, was 8): reserved concurrency back to 8"
    ]
    assert reserved_concurrency(clients.lambda_, name) == 8
    assert list_leases(clients, function_name=name) == []
    assert revert_orphaned_leases(factory(ministack)) == []


def test_a_live_owner_keeps_its_lease_until_it_expires(
    make_function: MakeFunction, clients: Clients, ministack: str
) -> None:
    name = make_function(reserved=8)
    applied = actions.throttle(name, reserved_concurrency=0, duration_s=60)
    assert revert_orphaned_leases(factory(ministack)) == []  # this process still runs
    assert reserved_concurrency(clients.lambda_, name) == 0
    (line,) = revert_orphaned_leases(factory(ministack), now=applied["expires_at"] + 1)
    assert f"reverted lease {applied['lease_id']} (expired)" in line
    assert reserved_concurrency(clients.lambda_, name) == 8


def test_revert_expired_leases_and_the_next_action_revert_forgotten_faults(
    make_function: MakeFunction, clients: Clients
) -> None:
    name = make_function(reserved=8)
    lease_id = forgotten_throttle(clients, name, expired=True)
    reverted = actions.revert_expired_leases()
    assert [(r["lease_id"], r["why"], r["outcome"]) for r in reverted] == [
        (lease_id, "expired", "restored")
    ]
    assert reserved_concurrency(clients.lambda_, name) == 8

    forgotten_throttle(clients, name, expired=True)
    other = make_function(reserved=None)
    actions.kill_environments(other, fraction=0.5, duration_s=30)  # reverts due leases first
    assert reserved_concurrency(clients.lambda_, name) == 8
    assert [lease.function_name for lease in list_leases(clients)] == [other]
    actions.clear_kill_orders(other)


def test_a_newer_kill_order_survives_the_revert_of_an_older_one(
    make_function: MakeFunction, clients: Clients
) -> None:
    name = make_function()
    older = actions.kill_environments(name, fraction=1.0, duration_s=10)
    newer = actions.kill_environments(name, fraction=0.5, duration_s=300)
    (result,) = revert_due_leases(clients, now=older["expires_at"] + 1, orphans=False)
    assert result.lease.lease_id == older["lease_id"] and result.outcome == "left"
    value = clients.ssm.get_parameter(Name=newer["parameter"])["Parameter"]["Value"]
    assert newer["order_id"] in value

    (result,) = revert_due_leases(clients, now=newer["expires_at"] + 1, orphans=False)
    assert result.outcome == "restored"
    with pytest.raises(clients.ssm.exceptions.ParameterNotFound):
        clients.ssm.get_parameter(Name=newer["parameter"])


def test_the_watchdog_restores_the_concurrency_at_the_expiry(
    make_function: MakeFunction,
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOADLAB_LEASE_WATCHDOG", "on")
    monkeypatch.setenv("LOADLAB_RUN_DIR", str(tmp_path))
    name = make_function(reserved=8)
    applied = actions.throttle(name, reserved_concurrency=0, duration_s=1.0)
    # Nobody rolls back: the watchdog alone must give the concurrency back.
    deadline = time.monotonic() + 30
    while reserved_concurrency(clients.lambda_, name) != 8:
        assert time.monotonic() < deadline, "the watchdog did not restore the throttle"
        time.sleep(0.2)  # the watchdog is another process: nothing to await but AWS's answer
    assert list_leases(clients, function_name=name) == []
    log = (tmp_path / "lease-watchdog.log").read_text()
    assert f"reverted lease {applied['lease_id']} (expired)" in log


def test_an_unreachable_or_refusing_aws_is_reported_at_start(ministack: str) -> None:
    with pytest.raises(TargetUnreachable) as unreachable:
        revert_orphaned_leases(factory(f"http://127.0.0.1:{free_port()}"))
    assert "cannot reach AWS" in str(unreachable.value)
    with AwsStandIn(deny=ssm_denied) as aws, pytest.raises(ConfigError) as refused:
        revert_orphaned_leases(factory(aws.url))
    assert "allow ssm:GetParametersByPath on /loadlab/*" in str(refused.value)


def test_an_owner_on_this_host_is_gone_once_its_process_is() -> None:
    me = Owner.this_process()
    assert not me.gone()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert Owner(host=me.host, pid=int(child.stdout), started=None).gone()
    assert Owner(host=me.host, pid=os.getpid(), started=(me.started or 0) + 1).gone()  # reused
    assert not Owner(host="another-machine", pid=int(child.stdout)).gone()
