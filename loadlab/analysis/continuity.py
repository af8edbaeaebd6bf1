"""The continuity oracle's numbers: verdicts, resume latency, and in-band vs out-of-band.

DESIGN.md ("The session protocol and the continuity oracle"): each session's
verdict is checked in band (the state the agent reported, in ``sessions.parquet``)
and out of band (the checkpoint item read from DynamoDB after the session, in
``checkpoints.parquet`` when the run audited it). This module splits the verdicts
into sessions a fault touched and sessions none did, and counts where the two
checks agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loadlab.analysis.impact import Fault, verdict_counts
from loadlab.analysis.rundata import RunData
from loadlab.analysis.stats import percentile
from loadlab.errors import RunDirectoryError
from loadlab.rows import VERDICTS

__all__ = [
    "CHECKPOINTS",
    "OUT_OF_BAND_VERDICTS",
    "CheckpointAgreement",
    "Continuity",
    "Disagreement",
    "ResumeLatency",
    "SessionGroup",
    "checkpoint_agreement",
    "continuity",
    "touched_by_faults",
]

CHECKPOINTS = "checkpoints.parquet"
OUT_OF_BAND_VERDICTS: tuple[str, ...] = (*VERDICTS, "missing")
_MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One session whose in-band and out-of-band verdicts differ."""

    session_id: str
    in_band: str
    out_of_band: str
    reason: str


@dataclass(frozen=True, slots=True)
class CheckpointAgreement:
    """How the out-of-band checkpoint audit compares with the in-band verdicts.

    ``compared`` sessions have both verdicts; ``disagreements`` lists the first
    20 (by session id) that differ, ``disagreement_kinds`` counts all of them as
    ``"<in band> -> <out of band>"``. ``not_audited`` sessions have no checkpoint
    row, ``only_out_of_band`` checkpoint rows have no session row.
    """

    source: str
    audited: int
    found: int
    verdicts: dict[str, int]
    compared: int
    agree: int
    disagree: int
    disagreement_kinds: dict[str, int]
    disagreements: tuple[Disagreement, ...]
    not_audited: int
    only_out_of_band: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (summary.json's ``continuity.out_of_band``)."""
        out = asdict(self)
        out["disagreements"] = [asdict(d) for d in self.disagreements]
        return out


def touched_by_faults(sessions: pd.DataFrame, faults: Sequence[Fault]) -> np.ndarray[Any, Any]:
    """Boolean mask over ``sessions``: True where the session overlapped a fault's span.

    A session ``[t_start, t_end)`` is touched by a fault ``[start, end]`` when
    ``t_start <= end`` and ``t_end > start``; for a fault with no end event this is
    "in flight when it landed".
    """
    start = sessions["t_start"].to_numpy(dtype="float64")
    end = sessions["t_end"].to_numpy(dtype="float64")
    touched = np.zeros(len(sessions), dtype=bool)
    for fault in faults:
        touched |= (start <= fault.t_end) & (end > fault.t_start)
    return touched


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeLatency:
    """Resume latency (first interrupted attempt to the next successful turn), ms.

    ``count`` sessions have one; ``p50`` and ``p99`` are None when none has.
    """

    count: int
    p50: float | None
    p99: float | None

    @classmethod
    def of(cls, sessions: pd.DataFrame) -> ResumeLatency:
        """The resume latency of ``sessions`` (a sessions.parquet frame)."""
        resume = sessions["resume_latency_ms"] if len(sessions) else pd.Series(dtype="float64")
        return cls(
            count=int(resume.notna().sum()),
            p50=percentile(resume, 50),
            p99=percentile(resume, 99),
        )

    def to_json(self) -> dict[str, Any]:
        """``{count, p50, p99}``."""
        return {"count": self.count, "p50": self.p50, "p99": self.p99}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionGroup:
    """A number of sessions and their verdicts (every known verdict present)."""

    sessions: int
    verdicts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """``{sessions, verdicts}``."""
        return {"sessions": self.sessions, "verdicts": dict(self.verdicts)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Continuity:
    """summary.json's ``continuity`` section (see the module docstring).

    ``touched`` sessions overlapped one of the run's ``faults``, ``untouched``
    ones none; ``out_of_band`` is None when the run has no checkpoint audit.
    """

    sessions: int
    verdicts: dict[str, int]
    resume_latency_ms: ResumeLatency
    faults: int
    touched: SessionGroup
    untouched: SessionGroup
    out_of_band: CheckpointAgreement | None

    def to_json(self) -> dict[str, Any]:
        """The section as summary.json holds it."""
        return {
            "sessions": self.sessions,
            "verdicts": dict(self.verdicts),
            "resume_latency_ms": self.resume_latency_ms.to_json(),
            "faults": self.faults,
            "touched": self.touched.to_json(),
            "untouched": self.untouched.to_json(),
            "out_of_band": self.out_of_band.to_json() if self.out_of_band is not None else None,
        }


def continuity(
    run: RunData, faults: Sequence[Fault], audit: CheckpointAgreement | None
) -> Continuity:
    """summary.json's ``continuity`` section (see the module docstring)."""
    sessions = run.sessions
    verdicts = sessions["verdict"].astype(str).to_numpy()
    touched = touched_by_faults(sessions, faults)
    return Continuity(
        sessions=len(sessions),
        verdicts=verdict_counts(verdicts),
        resume_latency_ms=ResumeLatency.of(sessions),
        faults=len(faults),
        touched=SessionGroup(
            sessions=int(touched.sum()), verdicts=verdict_counts(verdicts[touched])
        ),
        untouched=SessionGroup(
            sessions=int((~touched).sum()), verdicts=verdict_counts(verdicts[~touched])
        ),
        out_of_band=audit,
    )


def checkpoint_agreement(run: RunData) -> CheckpointAgreement | None:
    """Compare ``checkpoints.parquet`` (if the run has one) with the in-band verdicts.

    Returns None when the run has no checkpoint audit; raises RunDirectoryError
    when it has one that cannot be read.
    """
    path = Path(run.path) / CHECKPOINTS
    if not path.exists():
        return None
    audit = _read_audit(path)
    in_band = run.sessions[["session_id", "verdict"]].astype(str)
    in_band = in_band.drop_duplicates("session_id", keep="last")
    both = in_band.merge(audit, on="session_id", how="inner")
    differ = both[both["verdict"] != both["oob_verdict"]].sort_values("session_id")
    kinds = (differ["verdict"] + " -> " + differ["oob_verdict"]).value_counts()
    audited_ids = set(audit["session_id"])
    in_band_ids = set(in_band["session_id"])
    return CheckpointAgreement(
        source=CHECKPOINTS,
        audited=len(audit),
        found=int(audit["found"].sum()),
        verdicts=_oob_counts(audit["oob_verdict"]),
        compared=len(both),
        agree=len(both) - len(differ),
        disagree=len(differ),
        disagreement_kinds={str(k): int(v) for k, v in sorted(kinds.items())},
        disagreements=tuple(
            Disagreement(session_id=sid, in_band=ib, out_of_band=oob, reason=reason)
            for sid, ib, oob, reason in zip(
                differ["session_id"][:_MAX_LISTED],
                differ["verdict"][:_MAX_LISTED],
                differ["oob_verdict"][:_MAX_LISTED],
                differ["reason"][:_MAX_LISTED],
                strict=True,
            )
        ),
        not_audited=len(in_band_ids - audited_ids),
        only_out_of_band=len(audited_ids - in_band_ids),
    )


def _read_audit(path: Path) -> pd.DataFrame:
    # A single file or a dataset of part files (as the recorder writes): pyarrow reads both.
    try:
        frame: pd.DataFrame = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise RunDirectoryError(
            f"{path} could not be read ({exc})",
            hint="re-run the checkpoint audit or delete the file to report without it",
        ) from exc
    missing = [c for c in ("session_id", "oob_verdict") if c not in frame]
    if missing:
        raise RunDirectoryError(
            f"{path} has no column(s) {', '.join(missing)}",
            hint="it must have session_id and oob_verdict (and found, reason)",
        )
    out = pd.DataFrame(
        {
            "session_id": frame["session_id"].astype(str),
            "oob_verdict": frame["oob_verdict"].fillna("missing").astype(str),
            "found": (
                frame["found"].fillna(False).astype(bool)
                if "found" in frame
                else pd.Series(True, index=frame.index)
            ),
            "reason": (
                frame["reason"].fillna("").astype(str)
                if "reason" in frame
                else pd.Series("", index=frame.index)
            ),
        }
    )
    return out.drop_duplicates("session_id", keep="last").reset_index(drop=True)


def _oob_counts(verdicts: pd.Series) -> dict[str, int]:
    counts = dict.fromkeys(OUT_OF_BAND_VERDICTS, 0)
    for verdict, n in verdicts.value_counts().items():
        counts[str(verdict)] = int(n)
    return counts
