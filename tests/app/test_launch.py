"""The one place a Locust process for a load run is put together."""

from __future__ import annotations

from pathlib import Path

from loadlab.load.launch import LAMBDA_LOCUSTFILE, LOCUSTFILE, LocustLaunch


def launch(**overrides: object) -> LocustLaunch:
    values: dict[str, object] = {
        "scenario_path": Path("scenarios/demo.yaml"),
        "target_url": "http://127.0.0.1:8080",
        "run_dir": Path("/tmp/run"),
        "jwt_secret": "jwt-canary",
    }
    values |= overrides
    return LocustLaunch(**values)  # type: ignore[arg-type]


def test_the_locustfiles_exist_where_the_launch_names_them() -> None:
    assert LOCUSTFILE.is_file() and LAMBDA_LOCUSTFILE.is_file()


def test_http_runs_use_the_http_locustfile_headless() -> None:
    argv = launch().argv()
    assert argv[argv.index("-f") + 1] == str(LOCUSTFILE)
    assert "--headless" in argv and "--lambda-function" not in argv


def test_a_function_chooses_the_lambda_locustfile() -> None:
    argv = launch(lambda_function="agent").argv()
    assert argv[argv.index("-f") + 1] == str(LAMBDA_LOCUSTFILE)
    assert argv[argv.index("--lambda-function") + 1] == "agent"


def test_web_runs_bind_loopback_on_the_given_port() -> None:
    argv = launch(web=True, web_port=8123).argv()
    assert "--headless" not in argv
    assert argv[argv.index("--web-host") + 1] == "127.0.0.1"
    assert argv[argv.index("--web-port") + 1] == "8123"


def test_the_secret_goes_in_the_environment_never_the_command_line() -> None:
    current = launch()
    assert "jwt-canary" not in " ".join(current.argv())
    assert current.environment({})["LOADLAB_JWT_SECRET"] == "jwt-canary"
    assert "jwt-canary" not in repr(current)


def test_aws_settings_of_an_embedded_run_replace_the_users_own() -> None:
    base = {"AWS_PROFILE": "prod", "AWS_REGION": "us-west-2", "HOME": "/root"}
    embedded = launch(env={"AWS_ENDPOINT_URL": "http://127.0.0.1:5", "AWS_REGION": "us-east-1"})
    env = embedded.environment(base)
    assert "AWS_PROFILE" not in env and env["AWS_REGION"] == "us-east-1"
    assert env["HOME"] == "/root"
    assert launch().environment(base)["AWS_PROFILE"] == "prod"


def test_workers_make_a_master_on_loopback_and_workers_that_find_it() -> None:
    plan = launch(workers=2, master_port=6001, lambda_function="agent", time_scale=0.5)
    argv = plan.argv()
    assert argv[argv.index("--expect-workers") + 1] == "2"
    assert argv[argv.index("--master-bind-host") + 1] == "127.0.0.1"
    assert argv[argv.index("--master-bind-port") + 1] == "6001"
    worker = plan.worker_argv(0)
    assert "--worker" in worker and "--master" not in worker
    assert worker[worker.index("--master-port") + 1] == "6001"
    assert worker[worker.index("-f") + 1] == str(LAMBDA_LOCUSTFILE)
    # the master alone writes the run directory and the CSVs
    assert "--run-dir" not in worker and "--csv" not in worker
    assert "--lambda-function" in worker and "--time-scale" in worker
    assert "--master" not in launch().argv()


def test_web_host_is_passed_as_given() -> None:
    argv = launch(web=True, web_host="0.0.0.0").argv()
    assert argv[argv.index("--web-host") + 1] == "0.0.0.0"
