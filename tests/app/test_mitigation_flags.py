"""``--snapstart`` and ``--agent-init`` reach the stack's options; a bad scope is named."""

from __future__ import annotations

import pytest

from loadlab.app.options import RunOptions
from loadlab.cli import build_parser, main


def run_options(*flags: str) -> RunOptions:
    args = build_parser().parse_args(["run", "ci_smoke", "--target", "http://127.0.0.1:9", *flags])
    options = args.options(args)
    assert isinstance(options, RunOptions)
    return options


def test_the_flags_reach_the_stack_options() -> None:
    stack = run_options("--snapstart", "--agent-init", "handler").stack
    assert stack.snapstart is True and stack.agent_init == "handler"
    default = run_options().stack
    assert default.snapstart is False and default.agent_init == "module"


def test_an_unknown_init_scope_is_refused_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["run", "ci_smoke", "--agent-init", "everywhere"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "'everywhere'" in err and "module" in err and "handler" in err
