"""Write the stored malformed-input corpus (scenarios, experiments, SSE streams).

Run from the repository root: ``.venv/bin/python tests/malformed/make_corpus.py``.
Each item is written next to what it must be refused for: ``expected.json``
maps a corpus file to a fragment the error message must contain. The flag
sets live in ``flags.txt`` (hand-written); run directories are built by the
test itself, since git keeps no empty directories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHIPPED = json.loads((REPO / "chaos" / "pod-kill-mid-session.json").read_text())

OK_SCENARIO = "name: corpus\nshape: {kind: flash_sale, peak_users: 2}\n"


def scenarios() -> dict[str, tuple[str | bytes, str]]:
    """name -> (content, fragment the error names)."""
    laughs = ["name: laughs", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        laughs.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    block = "name: x\nshape:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(200))
    s: dict[str, tuple[str | bytes, str]] = {
        "billion_laughs": ("\n".join(laughs) + "\n", "aliases expand to more than"),
        "nested_900_brackets": ("name: x\nshape: " + "[" * 900 + "]" * 900 + "\n", "nesting"),
        "nested_900_braces": ("name: x\nshape: " + "{a: " * 900 + "}" * 900 + "\n", "nesting"),
        "nested_200_block": (block + "  " * 202 + "b: 1\n", "nesting"),
        "recursive_alias": ("name: x\nsession: &s {personas: [*s]}\n", "alias refers"),
        "undefined_alias": ("name: *nowhere\n", "undefined alias"),
        "duplicate_top_key": ("name: a\nseed: 1\nname: b\n", "duplicate key 'name'"),
        "duplicate_nested_key": (
            "name: x\nshape:\n  kind: flash_sale\n  peak_users: 5\n  peak_users: 50\n",
            "duplicate key 'peak_users'",
        ),
        "empty": ("", "empty"),
        "only_comment": ("# nothing here\n", "empty"),
        "two_documents": ("name: a\n---\nname: b\n", "another document"),
        "top_level_list": ("- name: x\n", "expected a mapping"),
        "top_level_scalar": ("flash sale\n", "expected a mapping"),
        "binary": (bytes(range(256)) * 4, "UTF-8"),
        "utf16": (OK_SCENARIO.encode("utf-16"), "UTF-8"),
        "nul_byte": ("name: x\x00y\n", "malformed YAML"),
        "tab_indent": ("name: x\nshape:\n\tkind: flash_sale\n", "malformed YAML"),
        "unclosed_quote": ('name: "x\nseed: 1\n', "malformed YAML"),
        "unclosed_bracket": ("name: x\nshape: {kind: flash_sale\n", "malformed YAML"),
        "python_tag": ("name: !!python/object/apply:os.system [echo]\n", "malformed YAML"),
        "merge_of_a_number": ("name: x\nshape: {<<: 1}\n", "malformed YAML"),
        "missing_name": ("seed: 1\n", "name: required key is missing"),
        "name_number": ("name: 42\n", "name"),
        "name_set": ("name: !!set {a, b}\n", "name"),
        "name_date": ("name: 2001-12-14\n", "name"),
        "name_binary": ("name: !!binary aGVsbG8=\n", "name"),
        "key_not_string": ("name: x\n1: 2\n", "keys must be strings"),
        "unknown_top_key": ("name: x\npeak_user: 5\n", "peak_user"),
        "time_scale_inf": ("name: x\ntime_scale: .inf\n", "time_scale"),
        "time_scale_nan": ("name: x\ntime_scale: .nan\n", "time_scale"),
        "time_scale_zero": ("name: x\ntime_scale: 0\n", "time_scale"),
        "time_scale_text": ("name: x\ntime_scale: fast\n", "time_scale"),
        "seed_negative": ("name: x\nseed: -1\n", "seed"),
        "seed_beyond_int64": ("name: x\nseed: 99999999999999999999999\n", "seed"),
        "seed_text": ("name: x\nseed: abc\n", "seed"),
        "shape_list": ("name: x\nshape: [flash_sale]\n", "shape"),
        "shape_unknown_kind": ("name: x\nshape: {kind: flashsale}\n", "flashsale"),
        "peak_users_negative": (
            "name: x\nshape: {kind: flash_sale, peak_users: -3}\n",
            "peak_users",
        ),
        "peak_users_fraction": (
            "name: x\nshape: {kind: flash_sale, peak_users: 2.5}\n",
            "peak_users",
        ),
        "peak_users_bool": ("name: x\nshape: {kind: flash_sale, peak_users: true}\n", "peak_users"),
        "peak_users_inf": ("name: x\nshape: {kind: flash_sale, peak_users: .inf}\n", "peak_users"),
        "baseline_over_peak": (
            "name: x\nshape: {kind: flash_sale, baseline_users: 9, peak_users: 2}\n",
            "baseline_users",
        ),
        "ramp_negative": ("name: x\nshape: {kind: flash_sale, ramp_s: -5}\n", "ramp_s"),
        "hold_huge_float": ("name: x\nshape: {kind: flash_sale, hold_s: 1.0e+400}\n", "hold_s"),
        "spawn_rate_zero": (
            "name: x\nshape: {kind: flash_sale, max_spawn_rate: 0}\n",
            "max_spawn_rate",
        ),
        "key_of_other_kind": ("name: x\nshape: {kind: flash_sale, step_users: 5}\n", "step_users"),
        "spike_past_total": (
            "name: x\nshape: {kind: spike, at_s: 50, spike_s: 50, total_s: 60}\n",
            "total_s",
        ),
        "steps_zero": ("name: x\nshape: {kind: step, steps: 0}\n", "steps"),
        "soak_ramp_past_duration": (
            "name: x\nshape: {kind: soak, ramp_s: 100, duration_s: 10}\n",
            "duration_s",
        ),
        "turns_max_below_min": ("name: x\nsession: {turns: {min: 5, max: 2}}\n", "max"),
        "turns_min_zero": ("name: x\nsession: {turns: {min: 0}}\n", "min"),
        "think_constant_without_median": (
            "name: x\nsession: {think_time: {distribution: constant}}\n",
            "median_s",
        ),
        "think_unknown_distribution": (
            "name: x\nsession: {think_time: {distribution: gaussian}}\n",
            "gaussian",
        ),
        "think_sigma_negative": ("name: x\nsession: {think_time: {sigma: -1}}\n", "sigma"),
        "personas_empty": ("name: x\nsession: {personas: []}\n", "personas"),
        "personas_mapping": ("name: x\nsession: {personas: {a: 1}}\n", "personas"),
        "personas_duplicate_name": (
            "name: x\nsession: {personas: [{name: a}, {name: a}]}\n",
            "name",
        ),
        "persona_weight_zero": (
            "name: x\nsession: {personas: [{name: a, weight: 0}]}\n",
            "weight",
        ),
        "persona_intents_all_zero": (
            "name: x\nsession: {personas: [{name: a, intents: {search: 0}}]}\n",
            "every intent weight is 0",
        ),
        "persona_unknown_intent": (
            "name: x\nsession: {personas: [{name: a, intents: {shoplift: 1}}]}\n",
            "shoplift",
        ),
        "target_url_port_text": ("name: x\ntarget: {url: 'http://127.0.0.1:abc'}\n", "target.url"),
        "target_url_ipv6_open": ("name: x\ntarget: {url: 'http://[::1'}\n", "target.url"),
        "target_url_port_range": (
            "name: x\ntarget: {url: 'http://127.0.0.1:99999'}\n",
            "target.url",
        ),
        "target_url_ftp": ("name: x\ntarget: {url: 'ftp://127.0.0.1'}\n", "target.url"),
        "target_protocol_unknown": ("name: x\ntarget: {protocol: grpc}\n", "grpc"),
        "target_lambda_without_function": ("name: x\ntarget: {protocol: lambda}\n", "function"),
        "target_timeout_negative": ("name: x\ntarget: {timeout_s: -1}\n", "timeout_s"),
        "retry_attempts_zero": ("name: x\nretry: {max_attempts: 0}\n", "max_attempts"),
        "retry_backoff_max_below": (
            "name: x\nretry: {backoff_s: 5, backoff_max_s: 1}\n",
            "backoff_max_s",
        ),
        "slo_unknown_gate": ("name: x\nslo: {p99: 100}\n", "p99"),
        "slo_fraction_over_one": ("name: x\nslo: {error_rate: 5}\n", "error_rate"),
        "slo_limit_text": ("name: x\nslo: {p99_ms: fast}\n", "p99_ms"),
        "slo_window_too_long": (
            "name: x\nshape: {kind: soak, users: 1, ramp_s: 0, duration_s: 10}\n"
            "slo: {p99_ms: {max: 100, window_s: 9999}}\n",
            "window_s",
        ),
        "slo_unknown_intent": ("name: x\nslo: {intents: {shoplift: {p99_ms: 5}}}\n", "shoplift"),
    }
    return s


def experiment(change: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(SHIPPED))
    change(data)
    return data


def _provider(**changes: object) -> Any:
    return lambda e: e["method"][0]["provider"].update(changes)


def experiments() -> dict[str, tuple[str | bytes, str]]:
    def j(data: object) -> str:
        return json.dumps(data, indent=1)

    base = j(SHIPPED)
    hyp_probe = {"type": "probe", "name": "p", "provider": {"type": "python",
                 "module": "loadlab.chaos.loadrun.probes", "func": "run_error_rate"}}  # fmt: skip
    return {
        "unknown_module": (j(experiment(_provider(module="loadlab.no_such"))), "loadlab.no_such"),
        "unknown_function": (j(experiment(_provider(func="no_such_func"))), "no_such_func"),
        "unknown_argument": (
            j(experiment(lambda e: e["method"][0]["provider"]["arguments"].update(bogus=1))),
            "bogus",
        ),
        "method_of_numbers": (j(experiment(lambda e: e.update(method=[1, 2]))), "method[0] is 1"),
        "method_string": (j(experiment(lambda e: e.update(method="kill"))), "method"),
        "method_empty": (j(experiment(lambda e: e.update(method=[]))), "method"),
        "method_missing": (j(experiment(lambda e: e.pop("method"))), "method"),
        "title_missing": (j(experiment(lambda e: e.pop("title"))), "title"),
        "rollbacks_object": (j(experiment(lambda e: e.update(rollbacks={"a": 1}))), "rollbacks"),
        "activity_empty_object": (
            j(experiment(lambda e: e["method"].insert(0, {}))),
            "empty activity",
        ),
        "activity_type_unknown": (
            j(experiment(lambda e: e["method"][0].update(type="attack"))),
            "attack",
        ),
        "activity_without_name": (
            j(experiment(lambda e: e["method"][0].pop("name"))),
            "name",
        ),
        "provider_string": (
            j(experiment(lambda e: e["method"][0].update(provider="python"))),
            "provider",
        ),
        "provider_type_unknown": (j(experiment(_provider(type="grpc"))), "grpc"),
        "process_path_missing": (
            j(
                experiment(
                    lambda e: e["method"][0].update(
                        provider={"type": "process", "path": "/no/such/binary-for-loadlab"}
                    )
                )
            ),
            "/no/such/binary-for-loadlab",
        ),
        "http_without_url": (
            j(experiment(lambda e: e["method"][0].update(provider={"type": "http"}))),
            "url",
        ),
        "ref_to_nothing": (
            j(experiment(lambda e: e["method"].append({"ref": "no-such-activity"}))),
            "no-such-activity",
        ),
        "hypothesis_list": (
            j(experiment(lambda e: e.update({"steady-state-hypothesis": [1]}))),
            "steady-state-hypothesis",
        ),
        "hypothesis_probe_without_tolerance": (
            j(
                experiment(
                    lambda e: e.update(
                        {"steady-state-hypothesis": {"title": "t", "probes": [hyp_probe]}}
                    )
                )
            ),
            "tolerance",
        ),
        "configuration_env_missing": (
            j(
                experiment(
                    lambda e: e["configuration"].update(
                        token={"type": "env", "key": "LOADLAB_CORPUS_NO_SUCH_VAR"}
                    )
                )
            ),
            "LOADLAB_CORPUS_NO_SUCH_VAR",
        ),
        "secret_env_missing": (
            j(
                experiment(
                    lambda e: e.update(
                        secrets={
                            "k8s": {"token": {"type": "env", "key": "LOADLAB_CORPUS_NO_SECRET"}}
                        }
                    )
                )
            ),
            "LOADLAB_CORPUS_NO_SECRET",
        ),
        "tags_not_strings": (j(experiment(lambda e: e.update(tags=[1]))), "tags"),
        "control_module_missing": (
            j(experiment(lambda e: e["controls"][0]["provider"].update(module="no.such.control"))),
            "no.such.control",
        ),
        "list_not_object": ("[1, 2]", "must be a JSON object"),
        "trailing_comma": ('{"title": "x",}', "is not valid JSON: line 1"),
        "truncated": (base[: len(base) // 2], "is not valid JSON"),
        "empty_file": ("", "is not valid JSON"),
        "utf16": (base.encode("utf-16"), "is not UTF-8 text"),
        "binary": (bytes(range(256)) * 4, "is not UTF-8 text"),
        "nested_deep": ("[" * 20_000 + "]" * 20_000, "nests its JSON too deeply"),
        "nul_bytes": ('{"title": "x\x00"', "is not valid JSON"),
    }


def sse_streams() -> dict[str, bytes]:
    """name -> stream bytes, each one a turn that must end with an error kind."""

    def ev(event: str, data: str) -> bytes:
        return f"event: {event}\ndata: {data}\n\n".encode()

    meta = ev("meta", json.dumps({"instance_id": "pod-1", "cold": False, "init_ms": 0.0,
                                  "state_source": "memory", "intent": "browse",
                                  "replayed": False}))  # fmt: skip
    tok = ev("token", json.dumps({"text": "hi "}))

    def done(**changes: Any) -> bytes:
        payload: dict[str, Any] = {
            "state": {"session_id": "s", "turn": 1, "cart": {}, "version": 1},
            "replayed": False,
            "downstream": {"ddb_calls": 1, "llm_calls": 1, "tokens_in": 1, "tokens_out": 1},
        }
        payload.update(changes)
        return ev("done", json.dumps(payload))

    return {
        "empty": b"",
        "only_comments": b": keep-alive\n\n: still here\n\n",
        "no_done_event": meta + tok + tok,
        "invalid_utf8_in_data": meta + b'event: token\ndata: {"text": "\xff\xfe"}\n\n',
        "invalid_utf8_start": b"\xff\xfe\xfd\n\n",
        "html_page": b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n",
        "done_not_json": meta + tok + ev("done", "{not json"),
        "done_json_array": meta + tok + ev("done", "[1, 2, 3]"),
        "done_state_text": meta + tok + done(state="lost"),
        "done_cart_list": meta
        + tok
        + done(state={"session_id": "s", "turn": 1, "cart": ["P-1"], "version": 1}),
        "done_turn_text": meta
        + tok
        + done(state={"session_id": "s", "turn": "abc", "cart": {}, "version": 1}),
        "done_count_beyond_int64": meta
        + tok
        + ev(
            "done",
            json.dumps(
                {
                    "state": {"session_id": "s", "turn": 1, "cart": {}, "version": 1},
                    "downstream": {"ddb_calls": 1e20},
                }
            ),
        ),
        "done_count_infinity": meta
        + tok
        + ev(
            "done",
            '{"state": {"session_id": "s", "turn": 1, '
            '"cart": {}, "version": 1}, '
            '"downstream": {"ddb_calls": Infinity}}',
        ),
        "done_nested_deep": meta + tok + ev("done", "[" * 20_000 + "]" * 20_000),
        "token_not_json": meta + ev("token", "hello"),
        "token_text_number": meta + ev("token", '{"text": 42}'),
        "meta_not_object": ev("meta", '"pod-1"') + tok,
        "error_event": meta + ev("error", '{"message": "boom", "retryable": false}'),
        "nul_bytes": meta + b"event: tok\x00en\ndata: \x00\x00\n\n",
        "cr_only_garbage": b"event: done\rdata: {oops\r\r",
        "unterminated_data": meta + b"data: " + b"x" * 4096,
    }


def write_all() -> dict[str, str]:
    expected: dict[str, str] = {}
    groups: list[tuple[str, str, dict[str, tuple[str | bytes, str]]]] = [
        ("scenarios", ".yaml", scenarios()),
        ("experiments", ".json", experiments()),
    ]
    for folder, suffix, items in groups:
        (HERE / folder).mkdir(exist_ok=True)
        for name, (content, fragment) in items.items():
            path = HERE / folder / f"{name}{suffix}"
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_bytes(content.encode("utf-8"))
            expected[f"{folder}/{path.name}"] = fragment
    (HERE / "sse").mkdir(exist_ok=True)
    for name, stream in sse_streams().items():
        (HERE / "sse" / f"{name}.bin").write_bytes(stream)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


if __name__ == "__main__":
    written = write_all()
    print(f"{len(written)} files with expected messages, {len(sse_streams())} SSE streams")
