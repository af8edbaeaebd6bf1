"""Game-day plans: validation, the blast radius (before the start and at each action)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chaoslib.exceptions import InterruptExecution

from loadlab.app.plan import plan_violations
from loadlab.chaos import control
from loadlab.chaos.blast_radius import ENV, radius_from_env, violations
from loadlab.cli import main
from loadlab.errors import ScenarioError
from loadlab.scenario.plan import BlastRadius, load_plan

REPO = Path(__file__).resolve().parents[2]
POD_KILL = REPO / "chaos" / "pod-kill-mid-session.json"
STORM = REPO / "chaos" / "llm-429-storm.json"
THROTTLE = REPO / "chaos" / "lambda-throttle.json"


def write_plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_the_shipped_plan_is_valid_and_inside_its_own_radius() -> None:
    plan = load_plan(REPO / "chaos" / "plans" / "nightly.yaml")
    assert [e.path for e in plan.experiments] == [POD_KILL, STORM]
    assert plan.experiments[1].variables == ("fault_duration_s:int=20",)
    assert plan.target is None and plan.scenario == "gameday.yaml"
    for entry in plan.experiments:
        experiment = json.loads(entry.path.read_text())
        assert plan_violations(experiment, plan.blast_radius, entry.variables) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a mapping"),
        ("experiments: []\n", "experiments: must be a non-empty list"),
        (f"experiments: [{POD_KILL}]\ntarget: ftp://x\n", "neither 'embedded'"),
        ("experiments: [nope.json]\n", "'nope.json' not found"),
        (f"experiments: [{POD_KILL}]\nstray: 1\n", "stray: unknown key"),
        (f"experiments: [{POD_KILL}]\npass: {{max_failed_experiments: -1}}\n", "-1 is not a count"),
        (
            f"experiments: [{POD_KILL}]\nblast_radius: {{label_selectors: ['app in (a,b)']}}\n",
            "is not an equality label selector",
        ),
        (
            f"experiments: [{POD_KILL}]\nblast_radius: {{aws_account_id: 123}}\n",
            "not a 12-digit AWS account id",
        ),
        (
            f"experiments: [{POD_KILL}]\n"
            "notifications: [{webhook: http://h/x, events: [boom]}]\n",
            "unknown event 'boom'",
        ),
        (
            f"experiments: [{{path: {POD_KILL}, vars: {{x: .nan}}}}]\n",
            "is not a finite number",
        ),
        ("name: a\nname: b\nexperiments: [x]\n", "duplicate key"),
    ],
)
def test_a_malformed_plan_is_refused_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ScenarioError, match=r"plan\.yaml") as caught:
        load_plan(write_plan(tmp_path, text))
    assert message in str(caught.value)


def test_label_selector_namespace_and_function_checks() -> None:
    radius = BlastRadius(
        namespaces=("shop",),
        label_selectors=("app=shopping-agent",),
        lambda_functions=("arn:aws:lambda:us-east-1:000000000000:function:agent",),
    )
    kill = "chaosk8s.pod.actions.terminate_pods"
    assert (
        violations(kill, {"ns": "shop", "label_selector": "app=shopping-agent,x=1"}, radius) == []
    )
    assert (
        "namespace 'default'"
        in violations(kill, {"label_selector": "app=shopping-agent"}, radius)[0]
    )
    assert (
        "label selector 'app=payments'"
        in violations(kill, {"ns": "shop", "label_selector": "app=payments"}, radius)[0]
    )
    assert "every pod" in violations(kill, {"ns": "shop"}, radius)[0]
    throttle = "loadlab.chaos.aws_lambda.actions.throttle"
    assert violations(throttle, {"function_name": "agent"}, radius) == []
    assert "Lambda function 'other'" in violations(throttle, {"function_name": "other"}, radius)[0]
    # Faults that touch none of these kinds pass.
    assert violations("loadlab.chaos.downstream.actions.llm_429_storm", {}, radius) == []


def test_an_unreadable_radius_allows_nothing() -> None:
    radius = radius_from_env({ENV: "{not json"})
    assert radius is not None
    assert violations("chaosk8s.pod.actions.terminate_pods", {"ns": "default"}, radius)


def test_the_control_refuses_an_action_outside_the_radius_before_it_acts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, json.dumps(BlastRadius(label_selectors=("app=canary",)).to_json()))
    action = {
        "type": "action",
        "name": "terminate-pod",
        "provider": {
            "type": "python",
            "module": "chaosk8s.pod.actions",
            "func": "terminate_pods",
            "arguments": {"label_selector": "${selector}", "ns": "default"},
        },
    }
    with pytest.raises(InterruptExecution, match="outside the blast radius"):
        control.before_activity_control(
            action, run_dir=str(tmp_path), configuration={"selector": "app=shopping-agent"}
        )
    refused = json.loads((tmp_path / control.BLAST_RADIUS_REFUSED).read_text())
    assert refused["action"] == "terminate-pod"
    assert "app=shopping-agent" in refused["violations"][0]
    # Inside the radius, the fault is recorded as usual and nothing is refused.
    control.before_activity_control(
        action, run_dir=str(tmp_path), configuration={"selector": "app=canary"}
    )
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events] == ["note", "fault"]


def test_gameday_refuses_a_plan_outside_its_radius_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        tmp_path,
        f"name: narrow\nexperiments: [{POD_KILL}, {STORM}]\n"
        "blast_radius: {label_selectors: ['app=canary']}\n",
    )
    runs = tmp_path / "runs"
    assert main(["gameday", str(plan), "--runs-root", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "pod-kill-mid-session.json would act outside the blast radius" in err
    assert "label selector 'app=shopping-agent'" in err
    assert not runs.exists()


def test_plan_vars_count_in_the_radius_check(tmp_path: Path) -> None:
    experiment = json.loads(POD_KILL.read_text())
    radius = BlastRadius(label_selectors=("app=canary",))
    assert plan_violations(experiment, radius, ("label_selector=app=canary",)) == []
    assert plan_violations(experiment, radius, ())


def test_notifications_post_json_to_subscribed_webhooks_and_never_fail_the_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import http.server
    import threading

    from loadlab.app.plan import _notify

    received: list[dict[str, object]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        plan = load_plan(
            write_plan(
                tmp_path,
                f"experiments: [{POD_KILL}]\nnotifications:\n"
                f"  - webhook: http://127.0.0.1:{port}/all\n"
                f"  - webhook: http://127.0.0.1:{port}/end\n    events: [gameday-finished]\n"
                "  - webhook: http://user:hookpw@127.0.0.1:1/closed\n",
            )
        )
        _notify(plan, "gameday-started", {"gameday": "g"})
        _notify(plan, "gameday-finished", {"gameday": "g", "passed": True})
    finally:
        server.shutdown()
        server.server_close()
    assert [r["event"] for r in received] == [
        "gameday-started",
        "gameday-finished",
        "gameday-finished",
    ]
    assert received[1] == {"event": "gameday-finished", "gameday": "g", "passed": True}
    err = capsys.readouterr().err
    assert "notification gameday-started to 127.0.0.1 failed" in err
    assert "hookpw" not in err


def test_every_experiment_is_validated_before_the_first_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    experiment = json.loads(STORM.read_text())
    experiment["method"][2]["provider"]["module"] = "loadlab.chaos.no_such_module"
    broken.write_text(json.dumps(experiment))
    plan = write_plan(tmp_path, f"experiments: [{POD_KILL}, {broken}]\n")
    runs = tmp_path / "runs"
    assert main(["gameday", str(plan), "--runs-root", str(runs)]) == 2
    assert "no_such_module" in capsys.readouterr().err
    assert not runs.exists()


def test_a_plan_outside_the_checkout_names_shipped_experiments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # e.g. a plan mounted from a ConfigMap: experiments by file name, found where loadlab is.
    monkeypatch.chdir(tmp_path)
    plan = write_plan(
        tmp_path,
        "experiments: [pod-kill-mid-session.json, llm-429-storm]\n"
        "blast_radius: {label_selectors: ['app=canary']}\n",
    )
    assert main(["gameday", str(plan)]) == 2  # refused by the radius: both were found
    assert "pod-kill-mid-session.json would act outside" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("target", "message"),
    [("http://[::1", "close the bracket"), ("lambda://fn", "scheme must be http or https")],
)
def test_a_plan_target_that_is_no_usable_url_is_refused(
    tmp_path: Path, target: str, message: str
) -> None:
    with pytest.raises(ScenarioError, match="target") as caught:
        load_plan(write_plan(tmp_path, f"experiments: [{POD_KILL}]\ntarget: '{target}'\n"))
    assert message in str(caught.value)


def test_the_index_and_the_webhooks_carry_no_credentials(tmp_path: Path) -> None:
    from loadlab.app.plan import _write_index

    _write_index(tmp_path, {"target": "http://alice:S3cretPassw0rd@127.0.0.1:9", "n": 1})
    text = (tmp_path / "gameday.json").read_text()
    assert "S3cretPassw0rd" not in text and '"n": 1' in text


def test_a_plan_experiment_without_loadlabs_control_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bare.json"
    experiment = json.loads(POD_KILL.read_text())
    experiment.pop("controls")
    bare.write_text(json.dumps(experiment))
    plan = write_plan(tmp_path, f"experiments: [{bare}]\n")
    assert main(["gameday", str(plan), "--runs-root", str(tmp_path / "runs")]) == 2
    assert "does not declare loadlab's control" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_control_checks_rollbacks_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, json.dumps(BlastRadius(namespaces=("shop",)).to_json()))
    rollback = {
        "type": "action",
        "name": "kill-in-default",
        "provider": {
            "type": "python",
            "module": "chaosk8s.pod.actions",
            "func": "terminate_pods",
            "arguments": {"ns": "default", "label_selector": "app=x"},
        },
    }
    with pytest.raises(InterruptExecution, match="namespace 'default'"):
        control.before_activity_control(
            rollback, run_dir=str(tmp_path), experiment={"rollbacks": [rollback]}
        )
