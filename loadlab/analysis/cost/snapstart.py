"""Lambda with SnapStart: environments restored from a cached snapshot instead of initialised.

AWS bills a SnapStart function (Python and .NET) for what on-demand bills
(requests, duration) plus, instead of each cold start's INIT:

* the **restore** of each environment: the GB restored (``lambda_snapstart_restore_gb``)
  and its restore time at the duration rate (the ``REPORT`` line's ``Billed
  Restore Duration``; here the restore time the run measured, hooks included);
* the **cache** of the snapshot, per GB-second while the version is active, for
  3 hours at least (``lambda_snapstart_cache_gb_second``).

The INIT that made the snapshot runs once, when the version is published, and
is not in a run's figures. Only a run made with SnapStart measures restores;
every other run shows this model as missing, never as a guess.
"""

from __future__ import annotations

from loadlab.analysis.cost.aws_lambda import NO_MEMORY, memory_gb, requests_line
from loadlab.analysis.cost.model import CostLine, PlatformCost, Usage
from loadlab.analysis.prices import PriceTable

__all__ = ["MIN_CACHE_S", "lambda_snapstart", "snapstart_charges"]

MIN_CACHE_S = 3 * 3600.0
"""A snapshot is billed for 3 hours at least."""
TITLE = "Lambda with SnapStart"


def snapstart_charges(
    prices: PriceTable, *, memory_mb: float, restores: int, restore_s: float, cached_s: float
) -> tuple[CostLine, ...]:
    """The SnapStart lines: ``restores`` restores taking ``restore_s`` in all, the cache."""
    gb = memory_mb / 1024.0
    return (
        CostLine.at(
            prices,
            "lambda_gb_second",
            item=f"restore duration of {restores} restores",
            quantity=restore_s * gb,
            unit="GB-s",
        ),
        CostLine.at(
            prices,
            "lambda_snapstart_restore_gb",
            item=f"{restores} restores x {gb:g} GB",
            quantity=restores * gb,
            unit="GB restored",
        ),
        CostLine.at(
            prices,
            "lambda_snapstart_cache_gb_second",
            item=f"snapshot cached {max(cached_s, MIN_CACHE_S) / 3600:.2f} h (3 h at least)",
            quantity=max(cached_s, MIN_CACHE_S) * gb,
            unit="GB-s",
        ),
    )


def lambda_snapstart(
    usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]
) -> PlatformCost:
    """The run on Lambda with SnapStart (measured only when the run restored its environments)."""
    if not usage.snapstart:
        return PlatformCost(
            model="lambda_snapstart",
            title=TITLE,
            basis="missing",
            missing="restore durations: only a run made with SnapStart (--snapstart) measures "
            "them; compare it with this one",
        )
    gb, memory_note = memory_gb(usage, prices)
    if gb is None:
        return PlatformCost(
            model="lambda_snapstart", title=TITLE, basis="missing", missing=NO_MEMORY
        )
    return PlatformCost(
        model="lambda_snapstart",
        title=TITLE,
        basis="measured",
        sessions=usage.sessions,
        cold_starts=usage.cold_starts,
        compute=(
            requests_line(usage, prices),
            CostLine.at(
                prices,
                "lambda_gb_second",
                item="duration",
                quantity=usage.compute_s * gb,
                unit="GB-s",
            ),
            *snapstart_charges(
                prices,
                memory_mb=gb * 1024.0,
                restores=usage.cold_starts,
                restore_s=usage.init_s,
                cached_s=usage.run_s,
            ),
        ),
        shared=shared,
        notes=(
            f"memory {memory_note}",
            f"{usage.cold_starts} environments restored (measured), no INIT per cold start",
            "the INIT that made the snapshot runs once at publish and is not billed here",
        ),
    )
