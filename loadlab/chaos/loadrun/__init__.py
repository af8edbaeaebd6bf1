"""Chaos Toolkit activities that drive and watch a loadlab load run.

:mod:`~loadlab.chaos.loadrun.actions` starts a flash sale in the background of
an experiment and waits for the moment to strike; :mod:`~loadlab.chaos.loadrun.probes`
reads the live run (``live.json`` in its run directory) for steady-state
hypotheses.
"""
