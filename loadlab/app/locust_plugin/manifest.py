"""``manifest.json`` of a run: scenario, target, versions, seeds; no secret in it."""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadlab import __version__
from loadlab.load.context import LoadContext
from loadlab.measure.rundir import RunManifest

_SECRET_WORDS = ("secret", "token", "password", "key", "authorization")


def run_manifest(context: LoadContext, options: Any, role: str) -> RunManifest:
    """The manifest of the run ``context`` plays, started now by a Locust process in ``role``."""
    scenario = context.scenario
    path = Path(options.scenario)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    scenario_dict = asdict(scenario)
    scenario_dict.pop("source", None)
    import locust  # only for its version; this module already runs inside Locust

    target: dict[str, Any] = {
        "url": redact_url(scenario.target.url or options.host or ""),
        "transport": context.transport,
    }
    if context.lambda_function:
        from loadlab.load.aws_lambda.users import function_settings

        target["function"] = context.lambda_function
        target |= function_settings(context)
    return RunManifest(
        run_id=context.run_id,
        name=scenario.name,
        started_at=time.time(),
        scenario_path=str(path),
        scenario_sha256=digest,
        scenario=scenario_dict,
        target=target,
        versions={
            "loadlab": __version__,
            "locust": str(getattr(locust, "__version__", "?")),
            "python": platform.python_version(),
        },
        seed=scenario.seed,
        role=role,
        extra={"argv": redacted_argv(sys.argv)},
    )


def redact_url(url: str) -> str:
    """Drop credentials embedded in a URL (``https://user:pass@host``)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def redacted_argv(argv: list[str]) -> list[str]:
    """``argv`` with the values of secret-looking options and URL credentials hidden."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        lowered = arg.lower()
        if lowered.startswith("--") and any(w in lowered for w in _SECRET_WORDS):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(redact_url(arg))
    return out
