from __future__ import annotations

import subprocess
import sys

import loadlab


def test_all_is_sorted_and_unique() -> None:
    assert loadlab.__all__ == sorted(set(loadlab.__all__))


def test_import_loadlab_is_cheap_and_gevent_free() -> None:
    code = (
        "import sys, loadlab\n"
        "print(*[m in sys.modules for m in ('locust', 'gevent', 'pandas', 'matplotlib')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"] * 4


def test_every_exported_name_resolves() -> None:
    # Resolving the Locust names imports gevent, so do it in a child process.
    code = (
        "import loadlab\n"
        "missing = [n for n in loadlab.__all__ if getattr(loadlab, n, None) is None]\n"
        "print(','.join(missing))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
