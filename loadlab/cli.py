"""The ``loadlab`` command line: it parses arguments, and nothing else.

Each command's arguments become one frozen options object
(:mod:`loadlab.app.options`) handed to ``loadlab.app.<command>.execute``.

    loadlab demo                      embedded stack + short flash sale + pod kill + report
    loadlab run SCENARIO [options]    a load run against an agent (or the embedded stack)
    loadlab gameday EXPERIMENT        a Chaos Toolkit experiment with load, timeline, report
    loadlab up                        start the embedded stack in the foreground
    loadlab report RUN_DIR            re-derive summary.json, report.html, junit.xml
    loadlab compare RUN_A RUN_B ...   runs side by side
    loadlab cost RUN_DIR [RUN_DIR]    what a run cost on Lambda, provisioned, pods
    loadlab history [PATH ...]        the trend across game days, regressions named

Exit codes: 0 ok, 1 unexpected error, 2 bad input (flag, scenario, config),
3 target unreachable, 4 embedded stack failed, 5 bad run directory,
6 the verdict is FAIL, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from loadlab import __version__
from loadlab.app.options import (
    AGENT_MODES,
    DEFAULT_WEB_LINGER_S,
    MAX_WEB_LINGER_S,
    ChaosRunOptions,
    CompareOptions,
    CostOptions,
    DemoOptions,
    GamedayOptions,
    HistoryOptions,
    ReportOptions,
    RunOptions,
    StackOptions,
    UpOptions,
)
from loadlab.errors import ConfigError, LoadLabError
from loadlab.redact import Redactor, redact_logs

EPILOG = """\
exit codes: 0 ok, 2 bad input, 3 target unreachable, 4 embedded stack failed,
5 bad run directory, 6 the verdict is FAIL (a gate missed, a session
restarted or duplicated, the audit disagreeing, the experiment deviating), 130
interrupted.
Docs: README.md; the session protocol: docs/protocol.md."""


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _port(text: str) -> int:
    value = _whole_number(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} out of range (1-65535)")
    return value


def _workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_whole_number,
        default=0,
        metavar="N",
        help="Locust's distributed mode on this machine: a master and N worker processes "
        "(one per core helps; the master writes the one run directory). Default 0: one process",
    )


def _metrics_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=_whole_number,
        default=0,
        metavar="PORT",
        help="serve the run's live Prometheus metrics on 127.0.0.1:PORT from the Locust "
        "master (default 0: none); see dashboards/",
    )


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        # inf passes "> 0" and then stalls Locust (a spawn rate of 0): refuse it here
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _linger_seconds(text: str) -> float:
    value = _finite_float(text)
    if not 0 <= value <= MAX_WEB_LINGER_S:
        raise argparse.ArgumentTypeError(f"{text!r} must be from 0 to {MAX_WEB_LINGER_S:g} seconds")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value.strip()


def _stack_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("embedded stack")
    group.add_argument(
        "--replicas", type=_positive_int, default=4, help="agent pods in the fleet (default 4)"
    )
    group.add_argument(
        "--stack-time-scale",
        type=_positive_float,
        default=1.0,
        help="multiply the stack's latencies and delays (LLM, init, pod start); default 1.0",
    )
    group.add_argument(
        "--lambda",
        dest="lambda_function",
        action="store_true",
        help="also deploy the agent as a Lambda function into ministack (automatic when "
        "the scenario's target.protocol is lambda)",
    )
    group.add_argument(
        "--provisioned-concurrency",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="Lambda: initialise N environments right before the sale and keep them "
        "(emulated on ministack; implies --lambda; the cost model charges them)",
    )
    group.add_argument(
        "--snapstart",
        action="store_true",
        help="Lambda: initialise once and start every environment from that snapshot "
        "(SnapStart, emulated on ministack; implies --lambda; cold starts report the restore)",
    )
    group.add_argument(
        "--agent-init",
        choices=("module", "handler"),
        default="module",
        help="Lambda: where the agent initialises: once per environment (module, default) "
        "or inside every invocation (handler: the anti-pattern, to measure its tax)",
    )
    group.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".loadlab"),
        help="where the stack keeps its logs and stack.json (default .loadlab)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``loadlab`` command."""
    parser = argparse.ArgumentParser(
        prog="loadlab",
        description="Load generation and chaos testing for AI agent endpoints.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"loadlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="start the embedded stack, run a short flash sale with a pod kill, write the report",
        description="Start the embedded stack (ministack, LLM simulator, agent pods), run a "
        "two-minute flash sale against it, delete one agent pod in the middle of it, and "
        "write the run directory and report.",
    )
    demo.add_argument(
        "--scenario", default="demo.yaml", help="scenario to run (default scenarios/demo.yaml)"
    )
    demo.add_argument("--users", type=_positive_int, help="override the peak concurrent sessions")
    demo.add_argument(
        "--kill-at",
        type=_finite_float,
        default=0.5,
        help="when to delete a pod, as a fraction of the run (default 0.5); 0 = no kill",
    )
    demo.add_argument("--runs-root", type=Path, default=Path("runs"), help="default: runs")
    _metrics_port(demo)
    _stack_options(demo)
    demo.set_defaults(options=_demo_options)

    run = sub.add_parser(
        "run",
        help="run a scenario against an agent endpoint",
        description="Run SCENARIO (a YAML file; see scenarios/) with Locust against --target, "
        "or against the embedded stack (--embedded, or one started by `loadlab up`).",
    )
    run.add_argument("scenario", help="scenario file, e.g. scenarios/flash_sale.yaml")
    run.add_argument(
        "--target",
        help="agent base URL (default: scenario target.url, then the "
        "stack started by `loadlab up`)",
    )
    run.add_argument("--users", type=_positive_int, help="override the peak concurrent sessions")
    run.add_argument("--time-scale", type=_positive_float, help="override the scenario time_scale")
    run.add_argument(
        "--web",
        action="store_true",
        help="open Locust's web UI instead of headless, with a loadlab tab: session verdicts, "
        "turn P50/P99 and TTFT P99, cold starts, active faults and their leases, downstream "
        "pressure, each fault's impact; the session table as CSV under Download Data",
    )
    run.add_argument("--web-port", type=_port, default=8089, help="web UI port (8089)")
    run.add_argument(
        "--web-linger",
        type=_linger_seconds,
        default=DEFAULT_WEB_LINGER_S,
        metavar="SECONDS",
        help="with --web: once the load stops (Stop, or the shape's end) and the report is "
        "written, keep the web UI up this long, its loadlab tab linking to the report; "
        f"Ctrl-C closes it sooner (default {DEFAULT_WEB_LINGER_S:g}; 0: close at once)",
    )
    run.add_argument(
        "--web-host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address the web UI listens on (default 127.0.0.1: this machine only; "
        "0.0.0.0 exposes it to the network, on purpose)",
    )
    _workers(run)
    run.add_argument("--embedded", action="store_true", help="start the embedded stack for the run")
    run.add_argument("--run-dir", type=Path, help="exact run directory (default: a new one)")
    run.add_argument("--runs-root", type=Path, default=Path("runs"), help="default: runs")
    _metrics_port(run)
    _stack_options(run)
    run.set_defaults(options=_run_options)

    gameday = sub.add_parser(
        "gameday",
        help="run a Chaos Toolkit experiment (or a game-day plan of several) with loadlab's "
        "load and timeline, then report",
        description="Run EXPERIMENT (a Chaos Toolkit JSON file; see chaos/) with `chaos run`. "
        "Without --target, the embedded stack is started and the experiment reaches it "
        "through the same APIs as in the cloud (KUBERNETES_HOST for the pods API). One run "
        "directory gets loadlab's files, the Chaos Toolkit journal and one report. Given a "
        "game-day plan (YAML; see chaos/plans/), its experiments run in order, each checked "
        "against the plan's blast radius before anything starts, into one game-day directory "
        "indexed by gameday.json (read by `loadlab history`).",
    )
    gameday.add_argument(
        "experiment",
        type=Path,
        metavar="EXPERIMENT|PLAN",
        help="e.g. chaos/pod-kill-mid-session.json, or a plan such as chaos/plans/nightly.yaml",
    )
    gameday.add_argument(
        "--scenario",
        default=None,
        help="scenario for the load (default: the experiment's own `scenario` configuration "
        "default, else scenarios/demo.yaml)",
    )
    gameday.add_argument(
        "--target",
        help="agent base URL of a real deployment (then the kubeconfig / AWS settings in "
        "your environment are used, and no embedded stack is started)",
    )
    gameday.add_argument("--run-dir", type=Path, help="exact run directory (default: a new one)")
    gameday.add_argument("--runs-root", type=Path, default=Path("runs"), help="default: runs")
    gameday.add_argument(
        "--agent-mode",
        default="correct",
        choices=AGENT_MODES,
        help="embedded agent only: break checkpointing on purpose to see the oracle catch it",
    )
    ctk = gameday.add_argument_group("passed on to `chaos run`")
    ctk.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a configuration value (KEY=VALUE or KEY:TYPE=VALUE, TYPE int|float|bytes); "
        "repeatable",
    )
    ctk.add_argument(
        "--var-file",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="configuration and secret values from a JSON/YAML or .env file; repeatable",
    )
    ctk.add_argument(
        "--dry",
        choices=("probes", "actions", "activities", "pause"),
        help="run the experiment without executing these",
    )
    ctk.add_argument(
        "--hypothesis-strategy",
        choices=(
            "default",
            "before-method-only",
            "after-method-only",
            "during-method-only",
            "continuously",
        ),
        help="when the steady-state hypothesis is checked (Chaos Toolkit's default: before "
        "and after the method)",
    )
    ctk.add_argument(
        "--hypothesis-frequency",
        type=_positive_float,
        help="seconds between hypothesis checks (during-method-only, continuously)",
    )
    ctk.add_argument(
        "--fail-fast",
        action="store_true",
        help="with during-method-only or continuously: fail at the first deviation",
    )
    ctk.add_argument(
        "--rollback-strategy",
        choices=("default", "always", "never", "deviated"),
        default="always",
        help="when rollbacks run (default always: a fault is never left behind)",
    )
    _metrics_port(gameday)
    _workers(gameday)
    _stack_options(gameday)
    gameday.set_defaults(options=_gameday_options)

    up = sub.add_parser(
        "up",
        help="start the embedded stack in the foreground (Ctrl-C stops it)",
        description="Start ministack (local AWS), the LLM simulator and the agent fleet on "
        "127.0.0.1, print their endpoints, and run until Ctrl-C or SIGTERM.",
    )
    _stack_options(up)
    up.set_defaults(options=_up_options)

    compare = sub.add_parser(
        "compare",
        help="put runs side by side (Lambda vs pods; on-demand vs provisioned vs snapstart)",
        description="Compare RUN_A and RUN_B: P50/P99, TTFT, cold starts, throttles, errors, "
        "session verdicts and resume latency, plus a plot of P99 and users over time. Then "
        "one column per run given (any number) and its cold-start mitigation "
        "(on-demand, provisioned N, snapstart, in-handler init) with latency, "
        "TTFT, cold starts, init P50/P99 and the cost per 1,000 sessions.",
    )
    compare.add_argument("run_a", type=Path, help="first run directory")
    compare.add_argument("run_b", type=Path, help="second run directory")
    compare.add_argument(
        "more_runs", type=Path, nargs="*", metavar="RUN_C", help="further run directories"
    )
    compare.add_argument(
        "--out", type=Path, help="HTML file to write (default: compare.html in RUN_B's parent)"
    )
    compare.set_defaults(options=_compare_options)

    cost = sub.add_parser(
        "cost",
        help="what a run cost, and would cost on Lambda (on-demand, provisioned) and pods",
        description="Price what RUN_DIR measured (invocations, billed duration with INIT, "
        "cold starts, environments, pods at the peak, DynamoDB units, LLM tokens) on Lambda "
        "on-demand, Lambda with provisioned concurrency, EKS pods (EC2 nodes, Fargate) and "
        "active-CPU billing, per run and per 1,000 sessions, with the Lambda/pods break-even "
        "in requests/day. Given a Lambda run and a pods run, each is priced on its own "
        "platform and the break-even is taken between them.",
    )
    cost.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="one or two runs")
    cost.add_argument(
        "--prices",
        type=Path,
        help="price table (YAML; default: the shipped loadlab/analysis/prices/aws-us-east-1.yaml)",
    )
    cost.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="change one price or assumption (e.g. lambda_memory_mb=1024, pods=4, "
        "provisioned_concurrency=10, node_type=m5_xlarge); repeatable",
    )
    cost.add_argument(
        "--platform",
        choices=("lambda", "pods"),
        help="what the run ran on, when its manifest does not say",
    )
    cost.add_argument("--json", action="store_true", help="print the estimates as JSON")
    cost.set_defaults(options=_cost_options)

    history = sub.add_parser(
        "history",
        help="the trend across game days: per experiment pass/fail, P99, resume P99, "
        "restarted/duplicated sessions, time to recover",
        description="Read every rendered run under PATH (run directories, game-day "
        "directories or a whole runs/ folder), group the runs by experiment, print the "
        "trend and write an HTML page with plots. A run worse than every one of the last N "
        "runs of its experiment (verdict PASS -> FAIL; turn P99, resume P99 or time to "
        "recover more than TOLERANCE above the worst of them; more sessions restarted or "
        "duplicated) is named; exit 6 when an experiment's newest run is one.",
    )
    history.add_argument(
        "paths",
        type=Path,
        nargs="*",
        default=[Path("runs")],
        metavar="PATH",
        help="run or game-day directories, or folders of them (default: runs)",
    )
    history.add_argument(
        "--out", type=Path, help="HTML page to write (default: history.html in the first PATH)"
    )
    history.add_argument(
        "--last",
        type=int,
        default=5,
        metavar="N",
        help="compare each run with the N runs of its experiment before it (default 5)",
    )
    history.add_argument(
        "--tolerance",
        type=float,
        default=0.2,
        help="how much worse than the worst of those runs a figure may be (default 0.2 = 20%%)",
    )
    history.add_argument(
        "--no-fail",
        action="store_true",
        help="exit 0 even when an experiment's newest run regressed",
    )
    history.set_defaults(options=_history_options)

    report = sub.add_parser(
        "report",
        help="re-derive summary.json, report.html and junit.xml from a run directory",
    )
    report.add_argument("run_dir", type=Path, help="a directory under runs/")
    report.set_defaults(options=_report_options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``loadlab`` console script: parse, run the command, exit code.

    Every failure a command reports is a :class:`~loadlab.errors.LoadLabError`
    that carries its exit code; it is printed here, the same way for all.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact_logs()
    try:
        options = args.options(args)
        module = getattr(options, "command_module", args.command)
        command = importlib.import_module(f"loadlab.app.{module}")
        code: int = command.execute(options)
    except LoadLabError as exc:
        redact = Redactor.from_env()  # a message may quote a URL with a password in it
        print(f"loadlab: error: {redact(exc.message)}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {redact(exc.hint)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("loadlab: interrupted", file=sys.stderr)
        return 130
    return code


# -- from parsed arguments to each command's options --------------------------------


def _stack(args: argparse.Namespace) -> StackOptions:
    return StackOptions(
        replicas=args.replicas,
        time_scale=args.stack_time_scale,
        lambda_function=args.lambda_function,
        state_dir=args.state_dir,
        agent_mode=getattr(args, "agent_mode", "correct"),
        provisioned_concurrency=args.provisioned_concurrency,
        snapstart=args.snapstart,
        agent_init=args.agent_init,
    )


def _run_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        scenario=args.scenario,
        target=args.target,
        users=args.users,
        time_scale=args.time_scale,
        web=args.web,
        web_host=args.web_host,
        web_port=args.web_port,
        web_linger_s=args.web_linger,
        workers=args.workers,
        embedded=args.embedded,
        run_dir=args.run_dir,
        runs_root=args.runs_root,
        metrics_port=args.metrics_port,
        stack=_stack(args),
    )


def _demo_options(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(
        scenario=args.scenario,
        users=args.users,
        kill_at=args.kill_at,
        runs_root=args.runs_root,
        metrics_port=args.metrics_port,
        stack=_stack(args),
    )


def _gameday_options(args: argparse.Namespace) -> GamedayOptions:
    return GamedayOptions(
        experiment=args.experiment,
        scenario=args.scenario,
        target=args.target,
        run_dir=args.run_dir,
        runs_root=args.runs_root,
        metrics_port=args.metrics_port,
        workers=args.workers,
        stack=_stack(args),
        chaos=ChaosRunOptions(
            variables=tuple(args.var),
            var_files=tuple(args.var_file),
            dry=args.dry,
            hypothesis_strategy=args.hypothesis_strategy,
            hypothesis_frequency_s=args.hypothesis_frequency,
            fail_fast=args.fail_fast,
            rollback_strategy=args.rollback_strategy,
        ),
    )


def _up_options(args: argparse.Namespace) -> UpOptions:
    return UpOptions(stack=_stack(args))


def _report_options(args: argparse.Namespace) -> ReportOptions:
    return ReportOptions(run_dir=args.run_dir)


def _compare_options(args: argparse.Namespace) -> CompareOptions:
    return CompareOptions(
        run_a=args.run_a, run_b=args.run_b, more_runs=tuple(args.more_runs), out=args.out
    )


def _history_options(args: argparse.Namespace) -> HistoryOptions:
    return HistoryOptions(
        paths=tuple(args.paths),
        out=args.out,
        last=args.last,
        tolerance=args.tolerance,
        no_fail=args.no_fail,
    )


def _cost_options(args: argparse.Namespace) -> CostOptions:
    if len(args.runs) > 2:
        raise ConfigError(
            f"loadlab cost takes one or two run directories, not {len(args.runs)}",
            hint="pass a Lambda run and a pods run, or one run",
        )
    return CostOptions(
        runs=tuple(args.runs),
        prices=args.prices,
        overrides=tuple(args.overrides),
        platform=args.platform,
        json=args.json,
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
