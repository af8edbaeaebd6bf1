"""deploy/k8s: every kustomization renders, every object is valid Kubernetes, and the
objects say what the docs promise.

* rendered offline (kustomize_render.py: the subset of kustomize the files use,
  refusing the rest) and validated against the Kubernetes 1.37 schemas in strict
  mode (kubernetes-validate ships them; no cluster, no network);
* the game day's CronJob never overlaps itself, is never retried, has a deadline
  and keeps a bounded history;
* its RBAC is a Role in the target namespace allowing get/list/delete on pods,
  bound to the CronJob's service account, and nothing cluster-wide;
* every ``loadlab`` command line parses with loadlab's own argument parser and
  every ``locust`` one with Locust's (plus loadlab's plugin options), spelled in
  full, so a renamed flag fails here; names and paths they use exist;
* the scenario in the ConfigMap loads with loadlab's scenario loader.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kustomize_render import (
    UnsupportedKustomization,
    containers,
    object_id,
    render,
    split_image,
    strategic_merge,
)
from test_ci_examples import parse  # tests/test_ci_examples.py: strict loadlab argv parsing

from loadlab.app.scenarios import resolve_experiment_path
from loadlab.scenario import load_scenario
from loadlab.scenario.plan import load_plan

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.37.0"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
ALL_KUSTOMIZATIONS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
LOCUSTFILE = "/opt/loadlab/locustfile.py"  # made by the Dockerfile


def _name(path: Path) -> str:
    return str(path.relative_to(K8S))


@pytest.fixture(scope="module", params=ALL_KUSTOMIZATIONS, ids=_name)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


@pytest.fixture(scope="module", params=OVERLAYS, ids=_name)
def overlay(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def test_there_are_the_overlays_the_docs_name() -> None:
    assert {p.name for p in OVERLAYS} >= {"staging", "embedded-demo"}


def test_every_object_is_valid_kubernetes(rendered: list[dict[str, Any]]) -> None:
    assert rendered
    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{object_id(obj)}: {exc.message} at {list(exc.path)}")


def test_the_validator_rejects_a_broken_object() -> None:
    """The test above can fail: a misspelt field and a wrong type are each caught."""
    cronjob = _one(render(K8S / "base"), "CronJob")
    typo = strategic_merge(cronjob, {"spec": {"concurencyPolicy": "Forbid"}})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)
    wrong = strategic_merge(cronjob, {"spec": {"successfulJobsHistoryLimit": "three"}})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSION, strict=True)


def test_the_game_day_cronjob_is_safe_to_leave_unattended(overlay: list[dict[str, Any]]) -> None:
    cronjob = _one(overlay, "CronJob")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["successfulJobsHistoryLimit"] <= 10
    assert 0 < spec["failedJobsHistoryLimit"] <= 10
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0, "a retried game day faults the agent twice"
    assert 0 < job["activeDeadlineSeconds"] <= 3600
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert len(spec["schedule"].split()) == 5, spec["schedule"]


def test_rbac_lets_the_game_day_delete_pods_in_the_target_namespace_only(
    overlay: list[dict[str, Any]],
) -> None:
    kinds = {o["kind"] for o in overlay}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "nothing cluster-wide"
    role, binding = _one(overlay, "Role"), _one(overlay, "RoleBinding")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]}
    ]
    target = role["metadata"]["namespace"]
    assert binding["metadata"]["namespace"] == target
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    cronjob = _one(overlay, "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": pod["serviceAccountName"],
            "namespace": cronjob["metadata"]["namespace"],
        }
    ]
    assert any(
        o["kind"] == "ServiceAccount" and o["metadata"]["name"] == pod["serviceAccountName"]
        for o in overlay
    )
    (container,) = pod["containers"]
    env = _env(container)
    if "--target" in container["args"]:
        # Against a cluster: the experiment strikes where the Role allows, in-cluster.
        assert env["LOADLAB_K8S_NAMESPACE"]["value"] == target
        assert env["CHAOSTOOLKIT_IN_POD"]["value"] == "true"
    else:
        # Against the embedded stack: no cluster credentials, no cluster settings.
        assert pod.get("automountServiceAccountToken") is False
        assert not {"CHAOSTOOLKIT_IN_POD", "LOADLAB_K8S_NAMESPACE"} & set(env)


def test_secrets_come_from_secret_objects_only(rendered: list[dict[str, Any]]) -> None:
    assert "Secret" not in {o["kind"] for o in rendered}, "no Secret is shipped"
    for obj in rendered:
        for container in containers(obj):
            for entry in container.get("env", []):
                if re.search(r"SECRET|TOKEN|PASSWORD|API_KEY", entry["name"]):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (object_id(obj), entry)


def test_images_are_pinned(overlay: list[dict[str, Any]]) -> None:
    for obj in overlay:
        for container in containers(obj):
            _name, tag = split_image(container["image"])
            assert tag and tag != "latest", f"{object_id(obj)}: {container['image']}"


def _volumes(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return {v["name"]: v for v in spec["template"]["spec"].get("volumes", [])}


def _config_map_mounts(obj: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """mount path → the name of the ConfigMap mounted there."""
    volumes = _volumes(obj)
    return {
        m["mountPath"]: volumes[m["name"]]["configMap"]["name"]
        for m in container.get("volumeMounts", [])
        if "configMap" in volumes[m["name"]]
    }


def _check_paths(obj: dict[str, Any], container: dict[str, Any], objects: list[Any]) -> None:
    """Every /etc/loadlab/... path in the args is a key of the ConfigMap mounted there,
    and every $(VAR) is defined in the container's environment."""
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    mounts = _config_map_mounts(obj, container)
    for arg in container["args"]:
        for var in re.findall(r"\$\((\w+)\)", arg):
            assert var in _env(container), f"{object_id(obj)}: $({var}) is not in env"
        if arg.startswith("/etc/loadlab/"):
            folder, _, key = arg.rpartition("/")
            assert folder in mounts, f"{object_id(obj)}: nothing mounted at {folder}"
            data = config_maps[mounts[folder]]["data"]
            assert key in data, f"{object_id(obj)}: {key} not in ConfigMap {mounts[folder]}"


def test_loadlab_command_lines_parse(overlay: list[dict[str, Any]]) -> None:
    calls = 0
    for obj in overlay:
        for container in containers(obj):
            if split_image(container["image"])[0].rsplit("/", 1)[-1] != "loadlab":
                continue
            if container.get("command", ["loadlab"]) != ["loadlab"]:
                continue  # the image's ENTRYPOINT is loadlab
            args = parse(expand(container), f"{object_id(obj)}")
            args.options(args)
            calls += 1
            _check_paths(obj, container, overlay)
            if args.command == "gameday":
                if str(args.experiment).startswith("/etc/loadlab/"):
                    _check_plan(overlay, args.experiment)
                else:
                    experiment = resolve_experiment_path(args.experiment)
                    assert experiment.is_file(), f"{args.experiment} is not a shipped experiment"
                assert str(args.runs_root).startswith("/runs")
    assert calls >= 1


# What the Secret `loadlab-target` holds in the cluster (never shipped).
SECRET_SAMPLES = {"url": "https://agent.staging.example", "jwt-secret": "not-a-real-secret"}


def expand(container: dict[str, Any]) -> list[str]:
    """The container's args after the kubelet expands $(VAR) from its environment."""
    values = {}
    for name, entry in _env(container).items():
        if "value" in entry:
            values[name] = entry["value"]
        else:
            values[name] = SECRET_SAMPLES[entry["valueFrom"]["secretKeyRef"]["key"]]
    return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg) for arg in container["args"]]


# Locust's parser, with loadlab's plugin options, in a child process: importing locust
# here would monkey-patch ssl after other tests imported it (gevent's RecursionError).
LOCUST_PARSE = """
import json, sys
from locust.argument_parser import get_parser
from loadlab.app.locust_plugin.options import add_arguments
parser = get_parser(default_config_files=[])
add_arguments(parser)
out = {"known": sorted(parser._option_string_actions), "parsed": []}
for argv in json.loads(sys.stdin.read()):
    out["parsed"].append(vars(parser.parse_args(argv)))
print(json.dumps(out, default=str))
"""


def locust_parse(argvs: list[list[str]]) -> tuple[set[str], list[dict[str, Any]]]:
    """The flags Locust (with loadlab's plugin) knows, and each argv as it parses it."""
    result = subprocess.run(
        [sys.executable, "-c", LOCUST_PARSE],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"locust refused {argvs}:\n{result.stderr[-2000:]}"
    out = json.loads(result.stdout)
    return set(out["known"]), out["parsed"]


def test_locust_command_lines_parse() -> None:
    objects = render(K8S / "overlays" / "staging")
    found = [
        (obj, container)
        for obj in objects
        for container in containers(obj)
        if container.get("command") == ["locust"]
    ]
    known, parsed = locust_parse([expand(container) for _, container in found])
    roles = set()
    for (obj, container), options in zip(found, parsed, strict=True):
        for token in container["args"]:
            if token.startswith("-"):
                assert token in known, f"{object_id(obj)}: {token} is not a locust flag"
        assert options["locustfile"] == LOCUSTFILE
        roles.add("master" if options["master"] else "worker" if options["worker"] else "local")
        _check_paths(obj, container, objects)
        if options["worker"]:
            assert options["master_host"] == "loadlab-master"
        if options["master"]:
            assert options["web_host"] == "0.0.0.0"
            assert options["scenario"].startswith("/etc/loadlab/")
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["metrics"] == options["metrics_port"]
            assert options["metrics_host"] == "0.0.0.0"
    assert roles == {"master", "worker"}


def test_the_master_service_exposes_the_web_ui_workers_and_metrics() -> None:
    objects = render(K8S / "overlays" / "staging")
    service = _one(objects, "Service")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"web": 8089, "workers": 5557, "metrics": 9646}
    master = next(o for o in objects if o["metadata"]["name"] == service["metadata"]["name"])
    assert master["kind"] == "Deployment"
    labels = master["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    named = {p["name"] for c in containers(master) for p in c.get("ports", [])}
    assert {"web", "workers", "metrics"} <= named


def _check_plan(objects: list[dict[str, Any]], path: Path) -> None:
    """A plan from a ConfigMap loads, finds its experiments among the shipped ones, and its
    blast radius is the namespace the Role lets the game day delete pods in."""
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    text = config_maps["loadlab-plans"]["data"][path.name]
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / path.name
        local.write_text(text, encoding="utf-8")
        plan = load_plan(local, find=_shipped)
    assert all(e.path.is_file() for e in plan.experiments)
    roles = [o for o in objects if o["kind"] == "Role"]
    assert plan.blast_radius.namespaces == tuple(r["metadata"]["namespace"] for r in roles)
    assert plan.scenario is not None and plan.scenario.startswith("/etc/loadlab/scenarios/")


def _shipped(name: str) -> Path | None:
    found = resolve_experiment_path(Path(name))
    return found if found.is_file() else None


def test_the_scenarios_in_the_configmap_load(tmp_path: Path) -> None:
    config_map = next(
        o for o in render(K8S / "base") if o["metadata"]["name"] == "loadlab-scenarios"
    )
    assert config_map["data"]
    for key, text in config_map["data"].items():
        path = tmp_path / key
        path.write_text(text, encoding="utf-8")
        scenario = load_scenario(path)
        assert scenario.name == Path(key).stem


# --- the renderer itself --------------------------------------------------------


def _kustomization(directory: Path, body: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    return directory


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "n"},
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "loadlab",
                        "args": ["a", "b"],
                        "env": [{"name": "KEEP", "value": "1"}, {"name": "DROP", "value": "2"}],
                    }
                ]
            }
        },
    },
}


def test_the_renderer_merges_as_kustomize_does(tmp_path: Path) -> None:
    base = _kustomization(tmp_path / "base", {"kind": "Kustomization", "resources": ["d.yaml"]})
    (base / "d.yaml").write_text(yaml.safe_dump(DEPLOYMENT), encoding="utf-8")
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n"},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "args": ["z"],
                            "env": [
                                {"name": "DROP", "$patch": "delete"},
                                {"name": "NEW", "value": "3"},
                            ],
                        }
                    ]
                }
            },
        },
    }
    overlay = _kustomization(
        tmp_path / "overlay",
        {
            "kind": "Kustomization",
            "resources": ["../base"],
            "patches": [{"path": "p.yaml"}],
            "images": [{"name": "loadlab", "newName": "r.example/loadlab", "newTag": "1.2"}],
        },
    )
    (overlay / "p.yaml").write_text(yaml.safe_dump(patch), encoding="utf-8")
    (obj,) = render(overlay)
    assert obj["spec"]["replicas"] == 3
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["z"]  # replaced, not merged
    assert container["env"] == [{"name": "KEEP", "value": "1"}, {"name": "NEW", "value": "3"}]
    assert container["image"] == "r.example/loadlab:1.2"
    assert render(base)[0]["spec"]["replicas"] == 1  # the base is left as it was


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"kind": "Kustomization", "namespace": "x"}, "unsupported keys"),
        ({"kind": "Kustomization", "resources": ["d.yaml", "d.yaml"]}, "defined twice"),
        (
            {"kind": "Kustomization", "resources": ["d.yaml"], "patches": [{"patch": "x"}]},
            "only `path`",
        ),
    ],
)
def test_the_renderer_refuses_what_it_does_not_implement(
    tmp_path: Path, body: dict[str, Any], problem: str
) -> None:
    directory = _kustomization(tmp_path, body)
    (directory / "d.yaml").write_text(yaml.safe_dump(DEPLOYMENT), encoding="utf-8")
    with pytest.raises(UnsupportedKustomization, match=problem):
        render(directory)
    with pytest.raises(UnsupportedKustomization, match="ports"):
        strategic_merge(DEPLOYMENT, {"spec": {"ports": [{"port": 1}]}})
