"""Scenario files: YAML in, a validated :class:`~loadlab.scenario.model.Scenario` out.

Every value is checked where it is read, so an error names the file, the key
path (``shape.peak_users``), the bad value and the fix. Unknown keys are errors,
with a did-you-mean suggestion: a misspelt ``peak_user`` silently falling back
to the default would run a different test than the one written down.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from loadlab.errors import ScenarioError
from loadlab.scenario.gates import DEFAULT_LIMITS, GATE_CATALOG, GATES, Gate, GateSpec
from loadlab.scenario.model import (
    DEFAULT_PERSONAS,
    INTENTS,
    PROTOCOLS,
    SHAPE_KINDS,
    SHAPE_TYPES,
    SLO,
    THINK_DISTRIBUTIONS,
    FlashSaleShape,
    Intent,
    Persona,
    RetryPolicy,
    Scenario,
    SessionModel,
    Shape,
    SoakShape,
    SpikeShape,
    StepShape,
    Target,
    TargetProtocol,
    ThinkDistribution,
    ThinkTime,
    TurnCount,
)
from loadlab.scenario.urls import url_problem
from loadlab.scenario.yaml_text import read_yaml_file

_MISSING = object()
_DESCRIBE_CHARS = 200
_MAX_INTEGER = 2**63 - 1


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises :class:`~loadlab.errors.ScenarioError` for a missing file, malformed
    YAML or any value that does not validate.
    """
    source = str(path)
    data = read_yaml_file(path, kind="scenario file", example="scenarios/flash_sale.yaml")
    if data is None:
        raise ScenarioError(
            f"{source}: the scenario file is empty",
            hint="start from scenarios/ci_smoke.yaml",
        )
    return parse_scenario(data, source=source)


def parse_scenario(mapping: object, source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as a mapping (e.g. parsed YAML) and build it.

    ``source`` names where the mapping came from, for error messages.
    """
    root = _Section(mapping, path="", source=source)
    name = root.text("name")
    seed = root.integer("seed", default=1, minimum=0)
    time_scale = root.number("time_scale", default=1.0, minimum=0.0, exclusive=True)
    description = root.text("description", default="")
    target = _parse_target(root.section("target", default={}))
    shape = _parse_shape(root.section("shape", default={"kind": "flash_sale"}))
    session = _parse_session(root.section("session", default={}))
    retry = _parse_retry(root.section("retry", default={}))
    slo = _parse_slo(
        root.section("slo", default={}) or _Section({}, path="slo", source=source),
        run_s=shape.duration_s * time_scale,
    )
    root.finish()
    return Scenario(
        name=name,
        seed=seed,
        time_scale=time_scale,
        description=description,
        target=target,
        shape=shape,
        session=session,
        retry=retry,
        slo=slo,
        source=source,
    )


def parse_shape(mapping: object, source: str = "<shape>") -> Shape:
    """Validate one load shape mapping (``{"kind": "flash_sale", ...}``) and build it."""
    return _parse_shape(_Section(mapping, path="shape", source=source))


def _parse_target(sec: _Section) -> Target:
    url = sec.optional_text("url")
    problem = url_problem(url) if url is not None else None
    if problem is not None:
        sec.fail("url", url, f"the agent's base URL, e.g. http://127.0.0.1:8080 ({problem})")
    protocol = cast(TargetProtocol, sec.choice("protocol", PROTOCOLS, default="reference"))
    timeout_s = sec.number("timeout_s", default=30.0, minimum=0.0, exclusive=True)
    model = sec.optional_text("model")
    function = sec.optional_text("function")
    if protocol == "lambda" and function is None:
        sec.fail("function", None, "the Lambda function's name or ARN (protocol: lambda)")
    if protocol != "lambda" and function is not None:
        sec.fail("protocol", protocol, "lambda (target.function is only used with it)")
    turn_deadline_s = sec.optional_number("turn_deadline_s", exclusive_minimum=0.0)
    max_answer_kib = sec.integer("max_answer_kib", default=64, minimum=1)
    max_event_kib = sec.integer("max_event_kib", default=1024, minimum=1)
    sec.finish()
    return Target(
        url=url,
        protocol=protocol,
        timeout_s=timeout_s,
        model=model,
        function=function,
        turn_deadline_s=turn_deadline_s,
        max_answer_kib=max_answer_kib,
        max_event_kib=max_event_kib,
    )


def _parse_shape(sec: _Section) -> Shape:
    kind = sec.choice("kind", SHAPE_KINDS)
    shape: Shape
    if kind == "flash_sale":
        defaults = FlashSaleShape()
        baseline = sec.integer("baseline_users", default=defaults.baseline_users, minimum=0)
        peak = sec.integer("peak_users", default=defaults.peak_users, minimum=1)
        if baseline > peak:
            sec.fail("baseline_users", baseline, f"a number <= peak_users ({peak})")
        shape = FlashSaleShape(
            baseline_users=baseline,
            peak_users=peak,
            baseline_s=sec.duration("baseline_s", default=defaults.baseline_s),
            ramp_s=sec.duration("ramp_s", default=defaults.ramp_s),
            hold_s=sec.duration("hold_s", default=defaults.hold_s),
            decay_s=sec.duration("decay_s", default=defaults.decay_s),
            max_spawn_rate=sec.rate("max_spawn_rate", default=defaults.max_spawn_rate),
        )
    elif kind == "step":
        step_defaults = StepShape()
        shape = StepShape(
            start_users=sec.integer("start_users", default=step_defaults.start_users, minimum=0),
            step_users=sec.integer("step_users", default=step_defaults.step_users, minimum=0),
            step_s=sec.duration("step_s", default=step_defaults.step_s, positive=True),
            steps=sec.integer("steps", default=step_defaults.steps, minimum=1),
            spawn_rate=sec.optional_rate("spawn_rate"),
        )
    elif kind == "spike":
        spike_defaults = SpikeShape()
        base = sec.integer("base_users", default=spike_defaults.base_users, minimum=0)
        spike = sec.integer("spike_users", default=spike_defaults.spike_users, minimum=1)
        at_s = sec.duration("at_s", default=spike_defaults.at_s)
        spike_s = sec.duration("spike_s", default=spike_defaults.spike_s, positive=True)
        total_s = sec.duration("total_s", default=spike_defaults.total_s, positive=True)
        if at_s + spike_s > total_s:
            sec.fail("total_s", total_s, f"a duration >= at_s + spike_s ({at_s + spike_s:g})")
        shape = SpikeShape(
            base_users=base,
            spike_users=spike,
            at_s=at_s,
            spike_s=spike_s,
            total_s=total_s,
            spawn_rate=sec.optional_rate("spawn_rate"),
        )
    else:
        soak_defaults = SoakShape()
        users = sec.integer("users", default=soak_defaults.users, minimum=1)
        ramp_s = sec.duration("ramp_s", default=soak_defaults.ramp_s)
        duration_s = sec.duration("duration_s", default=soak_defaults.duration_s, positive=True)
        if ramp_s > duration_s:
            sec.fail("duration_s", duration_s, f"a duration >= ramp_s ({ramp_s:g}), ramp included")
        shape = SoakShape(users=users, ramp_s=ramp_s, duration_s=duration_s)
    sec.finish(context=f"for shape kind {kind!r}", allowed_extra=_other_shape_keys(kind))
    return shape


def _other_shape_keys(kind: str) -> dict[str, str]:
    """Keys that belong to another shape kind, so the error can say which one."""
    out: dict[str, str] = {}
    for other, cls in SHAPE_TYPES.items():
        if other != kind:
            for key in cls.__dataclass_fields__:
                out.setdefault(key, other)
    return out


def _parse_session(sec: _Section) -> SessionModel:
    turns_sec = sec.section("turns", default={})
    defaults = TurnCount()
    lo = turns_sec.integer("min", default=defaults.min, minimum=1)
    hi = turns_sec.integer("max", default=max(defaults.max, lo), minimum=1)
    if hi < lo:
        turns_sec.fail("max", hi, f"a number >= turns.min ({lo})")
    turns_sec.finish()

    think_sec = sec.section("think_time", default={})
    think_defaults = ThinkTime()
    distribution = cast(
        ThinkDistribution,
        think_sec.choice("distribution", THINK_DISTRIBUTIONS, default=think_defaults.distribution),
    )
    min_s = think_sec.duration("min_s", default=think_defaults.min_s)
    max_s = think_sec.duration("max_s", default=max(think_defaults.max_s, min_s))
    if max_s < min_s:
        think_sec.fail("max_s", max_s, f"a duration >= min_s ({min_s:g})")
    median_s = think_sec.optional_duration("median_s")
    if distribution == "constant" and median_s is None:
        think_sec.fail("median_s", None, "the constant think time in seconds, e.g. median_s: 8")
    sigma = think_sec.number("sigma", default=think_defaults.sigma, minimum=0.0)
    think_sec.finish()

    personas: tuple[Persona, ...] = DEFAULT_PERSONAS
    raw_personas = sec.raw("personas", default=None)
    if raw_personas is not None:
        personas = _parse_personas(raw_personas, sec)
    sec.finish()
    return SessionModel(
        turns=TurnCount(min=lo, max=hi),
        think_time=ThinkTime(
            distribution=distribution,
            min_s=min_s,
            max_s=max_s,
            median_s=median_s,
            sigma=sigma,
        ),
        personas=personas,
    )


def _parse_personas(raw: object, parent: _Section) -> tuple[Persona, ...]:
    path = parent.key_path("personas")
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(
            f"{parent.source}: {path}: expected a non-empty list of personas, got {_short(raw)}",
            hint="write e.g. personas: [{name: bargain_hunter, weight: 3, intents: {search: 2}}]",
        )
    personas: list[Persona] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        sec = _Section(item, path=f"{path}[{i}]", source=parent.source)
        name = sec.text("name")
        if name in seen:
            sec.fail("name", name, "a name not used by another persona")
        seen.add(name)
        weight = sec.number("weight", default=1.0, minimum=0.0, exclusive=True)
        intents_sec = sec.section("intents", default=None)
        intents = Persona(name=name).intents
        if intents_sec is not None:
            mix: list[tuple[Intent, float]] = []
            for intent in INTENTS:
                w = intents_sec.number(intent, default=0.0, minimum=0.0)
                if w > 0:
                    mix.append((cast(Intent, intent), w))
            intents_sec.finish(context="(intents are weights per intent)")
            if not mix:
                raise ScenarioError(
                    f"{parent.source}: {intents_sec.path}: every intent weight is 0",
                    hint=f"give at least one of {', '.join(INTENTS)} a weight > 0",
                )
            intents = tuple(mix)
        sec.finish()
        personas.append(Persona(name=name, weight=weight, intents=intents))
    return tuple(personas)


def _parse_retry(sec: _Section) -> RetryPolicy:
    defaults = RetryPolicy()
    policy = RetryPolicy(
        max_attempts=sec.integer("max_attempts", default=defaults.max_attempts, minimum=1),
        backoff_s=sec.duration("backoff_s", default=defaults.backoff_s),
        backoff_max_s=sec.duration("backoff_max_s", default=defaults.backoff_max_s),
    )
    if policy.backoff_max_s < policy.backoff_s:
        sec.fail("backoff_max_s", policy.backoff_max_s, f">= backoff_s ({policy.backoff_s:g})")
    sec.finish()
    return policy


def parse_slo(mapping: object, source: str = "<slo>", *, run_s: float | None = None) -> SLO:
    """Validate an ``slo`` block (as written in a scenario) and build its gates.

    A key whose value is None is not set (old manifests write every key). The
    default gates (:data:`~loadlab.scenario.gates.DEFAULT_LIMITS`) are added for
    each default key the block does not set. ``run_s``, the run's length in
    seconds, bounds ``window_s`` (None: not checked).
    """
    return _parse_slo(_Section(mapping, path="slo", source=source), run_s=run_s)


def slo_from_manifest(value: object, source: str = "manifest.json") -> SLO:
    """The gates of a recorded run, from its manifest's ``scenario.slo``.

    The manifest holds ``dataclasses.asdict(SLO)`` (``{"gates": [...]}``); runs
    recorded before gates had a catalog hold the block as written, with None for
    keys not set. Both are read through :func:`parse_slo`, so a recorded gate
    is validated exactly as a scenario's; defaults are added as for a scenario.
    """
    if value is None:
        return SLO()
    if isinstance(value, Mapping) and isinstance(value.get("gates"), list | tuple):
        return parse_slo(_written_form(value["gates"], source), source)
    return parse_slo(value, source)


def _written_form(gates: list[object] | tuple[object, ...], source: str) -> dict[str, Any]:
    """The ``slo`` block that yields ``gates`` (asdict of each Gate), defaults left out."""
    block: dict[str, Any] = {}
    for i, raw in enumerate(gates):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("key"), str):
            raise ScenarioError(
                f"{source}: slo.gates[{i}]: expected a gate ({{key, limit, ...}}), "
                f"got {_short(raw)}",
                hint="re-run the test, or fix the manifest's scenario.slo by hand",
            )
        if raw.get("default"):
            continue
        written: dict[str, Any] = {"max": raw.get("limit")}
        if raw.get("window_s") is not None:
            written["window_s"] = raw["window_s"]
        if raw.get("abort"):
            written["abort"] = raw["abort"]
        intent = raw.get("intent")
        scope = block if intent is None else block.setdefault("intents", {}).setdefault(intent, {})
        scope[raw["key"]] = written
    return block


def _parse_slo(sec: _Section, *, run_s: float | None) -> SLO:
    gates: list[Gate] = []
    intents_sec = sec.section("intents", default=None)
    for spec in GATE_CATALOG:
        gate = _parse_gate(sec, spec, intent=None, run_s=run_s)
        if gate is None and spec.key in DEFAULT_LIMITS:
            gate = Gate(key=spec.key, limit=DEFAULT_LIMITS[spec.key], default=True)
        if gate is not None:
            gates.append(gate)
    sec.finish_gates((*GATES, "intents"))
    if intents_sec is not None:
        for intent in intents_sec.written_keys():
            if intent not in INTENTS:
                close = difflib.get_close_matches(intent, INTENTS, n=1)
                suggestion = f" (did you mean {close[0]!r}?)" if close else ""
                raise ScenarioError(
                    f"{sec.source}: {intents_sec.key_path(intent)}: unknown intent{suggestion}",
                    hint=f"use one of: {', '.join(INTENTS)}",
                )
            one = intents_sec.section(intent)
            per_intent = tuple(s.key for s in GATE_CATALOG if s.per_intent)
            for spec in GATE_CATALOG:
                if spec.per_intent:
                    gate = _parse_gate(one, spec, intent=intent, run_s=run_s)
                    if gate is not None:
                        gates.append(gate)
            one.finish_gates(per_intent, per_intent_only=True)
    return SLO(gates=tuple(gates))


def _parse_gate(
    sec: _Section, spec: GateSpec, *, intent: str | None, run_s: float | None
) -> Gate | None:
    """One gate, written as a number or as ``{max, window_s, abort}``; None when not set."""
    value = sec.raw(spec.key, None)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return Gate(key=spec.key, limit=_limit(sec, spec.key, value, spec), intent=intent)
    one = sec.section(spec.key)
    limit = _limit(one, "max", one.raw("max"), spec)
    window_s = one.optional_number("window_s", exclusive_minimum=0.0)
    abort = one.boolean("abort", default=False)
    one.finish()
    if window_s is not None and not spec.windowed:
        windowed = ", ".join(s.key for s in GATE_CATALOG if s.windowed)
        raise ScenarioError(
            f"{sec.source}: {one.key_path('window_s')}: {spec.key} takes no window "
            "(it is judged over the whole run)",
            hint=f"remove window_s; gates with a window: {windowed}",
        )
    if window_s is not None and run_s is not None and window_s > run_s:
        one.fail(
            "window_s", window_s, f"at most the run's length ({run_s:g} s, shape x time_scale)"
        )
    if abort and not spec.live:
        live = ", ".join(s.key for s in GATE_CATALOG if s.live)
        raise ScenarioError(
            f"{sec.source}: {one.key_path('abort')}: {spec.key} cannot be judged while "
            "the run goes, so it cannot abort it",
            hint=f"remove abort (the gate is still judged at the end); live gates: {live}",
        )
    return Gate(key=spec.key, limit=limit, window_s=window_s, abort=abort, intent=intent)


def _limit(sec: _Section, key: str, value: object, spec: GateSpec) -> float:
    """A gate's limit, checked against what its figure can be."""
    example = {"ms": 5000, "fraction": 0.01, "count": 0, "ratio": 1.5}[spec.kind]
    expected = {
        "ms": "a number of milliseconds > 0",
        "fraction": "a fraction between 0 and 1",
        "count": "a whole number >= 0",
        "ratio": "a number >= 1",
    }[spec.kind] + f", e.g. {example}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        sec.fail(key, value, expected)
    number = float(cast(float, value))
    ok = (
        math.isfinite(number)
        and {
            "ms": number > 0,
            "fraction": 0.0 <= number <= 1.0,
            "count": number >= 0 and number.is_integer(),
            "ratio": number >= 1.0,
        }[spec.kind]
    )
    if not ok:
        sec.fail(key, value, expected)
    return number


class _Section:
    """One mapping of the scenario being read, with its key path for error messages."""

    def __init__(self, mapping: object, *, path: str, source: str) -> None:
        if not isinstance(mapping, Mapping):
            where = path or "the top level"
            raise ScenarioError(
                f"{source}: {where}: expected a mapping of keys to values, "
                f"got {_describe(mapping)}",
                hint="write 'key: value' lines, indented under the section name",
            )
        self.source = source
        self.path = path
        self._values: dict[str, Any] = {}
        for key, value in mapping.items():
            if not isinstance(key, str):
                raise ScenarioError(
                    f"{source}: {self.key_path(str(key))}: keys must be strings, got {_short(key)}",
                    hint="quote the key or fix its indentation",
                )
            self._values[key] = value
        self._used: set[str] = set()

    def written_keys(self) -> tuple[str, ...]:
        """The keys written in this mapping, in order."""
        return tuple(self._values)

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, value: object, expected: str) -> None:
        raise ScenarioError(
            f"{self.source}: {self.key_path(key)}: got {_describe(value)}",
            hint=f"set {self.key_path(key)} to {expected}",
        )

    def raw(self, key: str, default: object = _MISSING) -> Any:
        self._used.add(key)
        if key in self._values:
            return self._values[key]
        if default is _MISSING:
            raise ScenarioError(
                f"{self.source}: {self.key_path(key)}: required key is missing",
                hint=f"add '{key}:' under {self.path or 'the top level'}",
            )
        return default

    def section(self, key: str, default: object = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is None:
            return None
        return _Section(value, path=self.key_path(key), source=self.source)

    def text(self, key: str, default: object = _MISSING) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or (default is _MISSING and not value.strip()):
            self.fail(key, value, "a non-empty string")
        return cast(str, value)

    def optional_text(self, key: str) -> str | None:
        value = self.raw(key, None)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.fail(key, value, "a non-empty string (or leave it out)")
        return cast("str | None", value)

    def boolean(self, key: str, *, default: object = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")
        return cast(bool, value)

    def choice(self, key: str, choices: tuple[str, ...], default: object = _MISSING) -> str:
        value = self.raw(key, default)
        if value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise ScenarioError(
                f"{self.source}: {self.key_path(key)}: unknown value {_short(value)}{suggestion}",
                hint=f"use one of: {', '.join(choices)}",
            )
        return cast(str, value)

    def integer(self, key: str, *, default: object = _MISSING, minimum: int | None = None) -> int:
        value = self.raw(key, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            floor = "" if minimum is None else f" >= {minimum}"
            self.fail(key, value, f"a whole number{floor}")
        if minimum is not None and value < minimum:
            self.fail(key, value, f"a whole number >= {minimum}")
        if value > _MAX_INTEGER:
            self.fail(key, value, f"a whole number <= {_MAX_INTEGER} (2**63 - 1)")
        return cast(int, value)

    def number(
        self,
        key: str,
        *,
        default: object = _MISSING,
        minimum: float | None = None,
        exclusive: bool = False,
    ) -> float:
        value = self.raw(key, default)
        return self._check_number(key, value, minimum=minimum, exclusive=exclusive)

    def optional_number(self, key: str, *, exclusive_minimum: float | None) -> float | None:
        value = self.raw(key, None)
        if value is None:
            return None
        return self._check_number(key, value, minimum=exclusive_minimum, exclusive=True)

    def duration(self, key: str, *, default: object = _MISSING, positive: bool = False) -> float:
        return self.number(key, default=default, minimum=0.0, exclusive=positive)

    def optional_duration(self, key: str) -> float | None:
        value = self.raw(key, None)
        if value is None:
            return None
        return self._check_number(key, value, minimum=0.0, exclusive=False)

    def rate(self, key: str, *, default: object = _MISSING) -> float:
        return self.number(key, default=default, minimum=0.0, exclusive=True)

    def optional_rate(self, key: str) -> float | None:
        return self.optional_number(key, exclusive_minimum=0.0)

    def _check_number(
        self, key: str, value: object, *, minimum: float | None, exclusive: bool
    ) -> float:
        bound = "" if minimum is None else (f" > {minimum:g}" if exclusive else f" >= {minimum:g}")
        unit = " (seconds)" if key.endswith("_s") else ""
        expected = f"a number{bound}{unit}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, value, expected)
        number = float(cast(float, value))
        if not math.isfinite(number):
            self.fail(key, value, expected)
        if minimum is not None and (number <= minimum if exclusive else number < minimum):
            self.fail(key, value, expected)
        return number

    def finish_gates(self, known: tuple[str, ...], *, per_intent_only: bool = False) -> None:
        """Fail on the first key that is no gate here, suggesting the closest gate key."""
        for key in self._values:
            if key in known:
                continue
            if per_intent_only and key in GATES:
                raise ScenarioError(
                    f"{self.source}: {self.key_path(key)}: {key} cannot be set per intent",
                    hint=f"set it directly under slo; per intent: {', '.join(known)}",
                )
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            guess = f"did you mean '{close[0]}'? " if close else ""
            raise ScenarioError(
                f"{self.source}: {self.key_path(key)}: unknown gate",
                hint=f"{guess}known gates here: {', '.join(known)} (see README, SLO gates)",
            )

    def finish(self, *, context: str = "", allowed_extra: Mapping[str, str] | None = None) -> None:
        """Fail on the first key nobody asked for, suggesting the nearest known one."""
        unknown = [k for k in self._values if k not in self._used]
        if not unknown:
            return
        key = unknown[0]
        known = sorted(self._used)
        where = f" {context}" if context else ""
        other_kind = (allowed_extra or {}).get(key)
        if other_kind is not None:
            hint = f"'{key}' belongs to shape kind {other_kind!r}; remove it or change kind"
        else:
            close = difflib.get_close_matches(key, known, n=1)
            if close:
                hint = f"did you mean '{close[0]}'? Known keys here: {', '.join(known)}"
            else:
                hint = f"remove it; known keys here: {', '.join(known)}"
        raise ScenarioError(f"{self.source}: {self.key_path(key)}: unknown key{where}", hint=hint)


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null or missing)"
    return f"{_short(value)} ({type(value).__name__})"


def _short(value: object) -> str:
    """``repr(value)``, cut to a line's worth: an error names the value, it does not dump it."""
    text = repr(value)
    if len(text) > _DESCRIBE_CHARS:
        text = text[:_DESCRIBE_CHARS] + f"... ({len(text):,} characters)"
    return text
