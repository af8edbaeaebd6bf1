"""The deployment zip: what it holds, that it is reproducible and cached, that it imports alone."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from loadlab.embedded.aws_lambda.package import (
    BOTOCORE_SERVICES,
    HANDLER,
    MANIFEST,
    VENDORED,
    Package,
    build_package,
)

REPO = Path(__file__).resolve().parents[3]
MINISTACK_PYTHON = REPO / ".venv-ministack" / "bin" / "python"


def names(package: Package) -> set[str]:
    with zipfile.ZipFile(package.path) as archive:
        return set(archive.namelist())


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements" / "dev.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_the_zip_holds_the_handler_and_the_agent_but_not_the_server(package: Package) -> None:
    files = names(package)
    module = HANDLER.rsplit(".", 1)[0].replace(".", "/")
    for needed in (
        f"{module}.py",
        "loadlab/__init__.py",
        "loadlab/errors.py",
        "loadlab/embedded/aws_lambda/runtime.py",
        "loadlab/embedded/aws_lambda/calls.py",
        "loadlab/embedded/agent/core.py",
        "loadlab/embedded/agent/catalog.json",
        "boto3/session.py",
        "aiohttp/client.py",
        "jwt/api_jwt.py",
        "botocore/data/endpoints.json",
        "botocore/data/dynamodb/2012-08-10/service-2.json.gz",
        MANIFEST,
    ):
        assert needed in files, needed
    for server_only in ("service.py", "metrics.py", "__main__.py"):
        assert f"loadlab/embedded/agent/{server_only}" not in files
    assert "loadlab/embedded/aws_lambda/package.py" not in files
    assert not [f for f in files if f.endswith((".so", ".pyd"))]
    services = {
        f.split("/")[2] for f in files if f.startswith("botocore/data/") and f.count("/") > 2
    }
    assert services == set(BOTOCORE_SERVICES)
    assert not [f for f in files if f.endswith(("/RECORD", "/INSTALLER", "direct_url.json"))]
    assert package.size_bytes < 10_000_000 and package.files == len(files)


def test_the_vendored_versions_are_the_locked_ones(package: Package) -> None:
    with zipfile.ZipFile(package.path) as archive:
        manifest = json.loads(archive.read(MANIFEST))
    pins = locked_versions()
    assert [name for name, _ in manifest["distributions"]] == list(VENDORED)
    for name, version in manifest["distributions"]:
        assert pins[name] == version, name
    assert manifest["handler"] == HANDLER and manifest["key"] == package.key


def test_sources_carry_unchecked_hash_based_bytecode(package: Package) -> None:
    source_name = "loadlab/embedded/aws_lambda/handler.py"
    pyc_name = importlib.util.cache_from_source(source_name)
    with zipfile.ZipFile(package.path) as archive:
        source, pyc = archive.read(source_name), archive.read(pyc_name)
        info = archive.getinfo(pyc_name)
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, not checked
    assert pyc[8:16] == importlib.util.source_hash(source)
    assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.external_attr >> 16 == 0o644


def test_the_zip_is_reproducible_and_cached(package: Package, tmp_path: Path) -> None:
    again = build_package(cache_dir=tmp_path / "elsewhere")
    assert again.built and again.key == package.key
    assert again.read() == package.read()
    cached = build_package(cache_dir=tmp_path / "elsewhere")
    assert not cached.built and cached.path == again.path
    # Another input (no bytecode) is another zip, built beside the first.
    plain = build_package(cache_dir=tmp_path / "elsewhere", compile_bytecode=False)
    assert plain.built and plain.key != package.key and plain.path != again.path
    assert not [n for n in names(plain) if n.endswith(".pyc")]


@pytest.mark.integration
def test_the_zip_imports_alone_in_ministacks_interpreter(package: Package, tmp_path: Path) -> None:
    if not MINISTACK_PYTHON.exists():
        pytest.skip(f"ministack's Python is not installed at {MINISTACK_PYTHON}")
    code = tmp_path / "code"
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(code)
    probe = f"""
import importlib.util, json, sys
sys.path.insert(0, {str(code)!r})
import loadlab.embedded.aws_lambda.handler as handler
import loadlab.embedded.aws_lambda.runtime
import aiohttp, boto3, botocore, jwt, multidict
print(json.dumps({{
    "botocore": [botocore.__version__, botocore.__file__],
    "boto3": boto3.__version__,
    "handler": callable(handler.handler),
    "server_loaded": [m for m in ("aiohttp.web", "prometheus_client") if m in sys.modules],
    "prometheus": importlib.util.find_spec("prometheus_client") is not None,
    "multidict": multidict.__file__,
}}))
"""
    # -S: no site-packages at all, only the standard library and the zip.
    out = subprocess.run(
        [str(MINISTACK_PYTHON), "-S", "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout)
    pins = locked_versions()
    assert facts["botocore"][0] == pins["botocore"]
    assert facts["botocore"][1].startswith(str(code))
    assert facts["boto3"] == pins["boto3"] and facts["handler"] is True
    assert facts["server_loaded"] == [] and facts["prometheus"] is False
    assert facts["multidict"].startswith(str(code))
