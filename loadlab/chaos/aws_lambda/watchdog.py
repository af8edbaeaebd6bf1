"""A lease's watchdog: a detached process that reverts one Lambda fault at its expiry.

AWS does not end a reserved-concurrency change or a configuration change by
itself, so each fault that needs it gets a watchdog: ``python -m
loadlab.chaos.aws_lambda.watchdog LEASE_ID``, started in its own session (Ctrl-C
and the death of the harness do not reach it). It looks at the lease every
:data:`POLL_S` seconds, exits as soon as the lease is gone (rolled back), and at
its expiry reverts it. It gives up after :data:`MAX_FAILURES` failed looks in a
row (AWS unreachable): the lease then waits for the next loadlab start.

The watchdog uses boto3's settings from its environment, which
:func:`start_watchdog` fills from the experiment's ``configuration`` and
``secrets`` (region, profile, keys). Role assumption (``aws_assume_role_arn``)
is not carried over: the watchdog then acts as the base identity.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from loadlab.chaos.aws_lambda.aws_clients import Clients, aws_client_factory, error_code
from loadlab.chaos.aws_lambda.lease_store import LEASE_PATH, Lease
from loadlab.chaos.aws_lambda.leases import revert_due_leases

__all__ = ["main", "start_watchdog"]

POLL_S = 2.0
MAX_FAILURES = 3
SWITCH_ENV = "LOADLAB_LEASE_WATCHDOG"
LOG_FILE = "lease-watchdog.log"

log = logging.getLogger("loadlab.chaos.aws_lambda.watchdog")


def start_watchdog(
    lease: Lease,
    *,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> bool:
    """Start the watchdog of ``lease`` (unless ``LOADLAB_LEASE_WATCHDOG=off``); True if started.

    It logs to ``<run dir>/lease-watchdog.log`` when the lease belongs to a run.
    """
    if os.environ.get(SWITCH_ENV, "on").strip().lower() in ("off", "0", "false", "no"):
        return False
    env = dict(os.environ)
    config, keys = dict(configuration or {}), dict(secrets or {})
    for variable, value in (
        ("AWS_REGION", config.get("aws_region")),
        ("AWS_PROFILE", config.get("aws_profile_name")),
        ("AWS_ACCESS_KEY_ID", keys.get("aws_access_key_id")),
        ("AWS_SECRET_ACCESS_KEY", keys.get("aws_secret_access_key")),
        ("AWS_SESSION_TOKEN", keys.get("aws_session_token")),
    ):
        if value:
            env[variable] = str(value)  # the environment, never argv: ps shows argv
    command = [sys.executable, "-m", "loadlab.chaos.aws_lambda.watchdog", lease.lease_id]
    if lease.run_dir is not None:
        command += ["--log", str(Path(lease.run_dir) / LOG_FILE)]
    # sh puts the watchdog in the background and exits at once: waiting for sh here
    # leaves no child of ours running, and the watchdog outlives this process.
    launcher = ["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 &', "loadlab-watchdog"]
    try:
        subprocess.run(launcher + command, env=env, start_new_session=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("cannot start the watchdog of lease %s: %s", lease.lease_id, exc)
        return False
    return True


def watch(clients: Clients, lease_id: str) -> int:
    """Wait for the lease's expiry and revert it; 0 when it is settled, 1 when giving up."""
    failures = 0
    while True:
        try:
            answer = clients.ssm.get_parameter(Name=f"{LEASE_PATH}/{lease_id}")
            lease = Lease.from_json(json.loads(answer["Parameter"].get("Value", "")))
            failures = 0
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                log.info("lease %s is gone (rolled back or reverted)", lease_id)
                return 0
            failures += 1
            log.warning("cannot read lease %s: %s", lease_id, exc)
        except ValueError as exc:
            log.error("lease %s is unreadable (%s); leaving it", lease_id, exc)
            return 1
        except BotoCoreError as exc:
            failures += 1
            log.warning("cannot read lease %s: %s", lease_id, exc)
        else:
            remaining = lease.expires_at - time.time()
            if remaining <= 0:
                # revert_lease logs what it did (and puts it on the run's timeline).
                revert_due_leases(clients, orphans=False, lease_ids=[lease_id])
                return 0
            time.sleep(min(remaining, POLL_S))
            continue
        if failures >= MAX_FAILURES:
            log.error("giving up on lease %s; loadlab's next start reverts it", lease_id)
            return 1
        time.sleep(POLL_S)  # AWS is unreachable: try again in a moment


def main(argv: list[str] | None = None) -> int:
    """``python -m loadlab.chaos.aws_lambda.watchdog LEASE_ID [--log FILE]``."""
    parser = argparse.ArgumentParser(prog="loadlab.chaos.aws_lambda.watchdog")
    parser.add_argument("lease_id")
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args(argv)
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr) if args.log is None else logging.FileHandler(args.log)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("loadlab", "chaostoolkit"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    clients = Clients(aws_client_factory())
    try:
        return watch(clients, args.lease_id)
    finally:
        clients.close()


if __name__ == "__main__":
    sys.exit(main())
