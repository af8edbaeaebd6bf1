"""The wiring: how each loadlab command is put together.

This package is the composition root (DESIGN.md, "Data flow"): the only code
that starts processes or the embedded stack, and the only importer of
:mod:`loadlab.embedded`. Everything below it (scenario, load, chaos, measure,
analysis, report) takes what it needs as arguments.

    cli.py (loadlab/cli.py)   parses arguments into one frozen options object per command
    options.py                those options objects
    run.py, demo.py, up.py,   one module per command; each exposes ``execute(options) -> int``
    gameday.py, report.py,    and raises a LoadLabError (which carries the exit code)
    compare.py, cost.py,      for anything but success
    history.py
    plan.py                   ``loadlab gameday PLAN.yaml``: a game-day plan's experiments
                              in order, the blast radius checked first, one index
    scenarios.py              finding a scenario file by path or name
    targets.py                choosing and checking the endpoint under test
    embedded.py               the embedded stack for a command: start, hand-off, audit
    children.py               waiting for a child process, passing Ctrl-C on
    locust_process.py         a load run in the foreground (Locust started and waited for;
                              one Ctrl-C stops the load, a second exits 130)
    closing.py                the closing lines (the verdict first) and the exit verdict
    locustfile.py             the locustfiles Locust runs (HTTP users / Lambda users)
    lambda_locustfile.py
    locust_plugin/            loadlab inside the Locust process: options, events, the
                              run's LoadContext, the manifest, worker forwarding, and
                              stop conditions (abort gates), and how the load stops
                              (Ctrl-C, the web UI's Stop, the shape's end)

See docs/architecture.md for the map of the whole package.
"""
