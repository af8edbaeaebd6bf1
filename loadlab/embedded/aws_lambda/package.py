"""The agent function's deployment zip: built once per content, cached, byte-for-byte reproducible.

The zip holds what the handler imports and nothing else:

* ``loadlab/__init__.py``, ``loadlab/errors.py``, ``loadlab/embedded/agent/`` (without
  the aiohttp server, its metrics and ``__main__``), the catalog, and the
  function side of ``loadlab/embedded/aws_lambda/`` (``handler``, ``runtime``,
  ``calls``, ``killhook``, ``snapstart``);
* the pure-Python code of the distributions they need (:data:`VENDORED`, the
  closure of boto3, aiohttp and PyJWT), copied from the running environment, so
  at the versions ``requirements/dev.lock`` pins. ministack runs Python functions
  with its own interpreter, which has botocore (at ministack's pinned version)
  but no boto3, aiohttp or PyJWT; AWS's runtime has boto3 but not the others.
  Shipping the whole closure makes both run exactly the locked versions.

Compiled extensions are left out: aiohttp, multidict, yarl, frozenlist and
propcache fall back to their pure-Python implementations, so the zip runs on
any Python 3.11+ and any architecture (x86_64 and arm64 alike). botocore's
service models are pruned to :data:`BOTOCORE_SERVICES` (DynamoDB for
checkpoints, SSM for fault orders), which takes the zip from ~20 MB to ~4 MB.

Every ``.py`` also gets an unchecked hash-based ``.pyc`` for the building
interpreter's version: Lambda's code directory is read-only and ministack's
workers run with ``PYTHONDONTWRITEBYTECODE=1``, so without them every cold start
compiles boto3, botocore and aiohttp from source (measured: ~3 s of imports
instead of ~0.7 s). Another Python version simply ignores them.

Entries are sorted, dated 1980-01-01 and mode 0644, so the same inputs give
the same bytes; the cache key is the SHA-256 of every entry's name and content,
and ``build_package`` rebuilds only when it changes. The zip carries
``loadlab_package.json`` (key, Python tag, distribution versions).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import marshal
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from loadlab.errors import StackError

HANDLER = "loadlab.embedded.aws_lambda.handler.handler"
"""The function's ``Handler`` setting."""
RUNTIME = "python3.11"
"""The Lambda runtime the zip is built and tested for."""
FORMAT = 1
MANIFEST = "loadlab_package.json"

VENDORED: tuple[str, ...] = (
    "aiohappyeyeballs",
    "aiohttp",
    "aiosignal",
    "attrs",
    "boto3",
    "botocore",
    "frozenlist",
    "idna",
    "jmespath",
    "multidict",
    "propcache",
    "pyjwt",
    "python-dateutil",
    "s3transfer",
    "six",
    "typing-extensions",
    "urllib3",
    "yarl",
)
"""Distributions copied into the zip: boto3, aiohttp and PyJWT with their dependencies."""

BOTOCORE_SERVICES: tuple[str, ...] = ("dynamodb", "ssm")
"""The botocore service models kept (checkpoints; fault orders in Parameter Store)."""

_AGENT_SERVER_ONLY = frozenset({"__main__.py", "service.py", "metrics.py"})
_FUNCTION_MODULES = (
    "__init__.py",
    "calls.py",
    "handler.py",
    "killhook.py",
    "runtime.py",
    "snapstart.py",
)
_BINARY_SUFFIXES = frozenset({".so", ".pyd", ".dylib", ".pyc", ".pyo"})
_LOADLAB_ROOT = Path(__file__).resolve().parents[2]
_EPOCH = (1980, 1, 1, 0, 0, 0)
# Unchecked hash-based pyc (PEP 552): used as is, whatever the file times say.
_PYC_FLAGS = (0b01).to_bytes(4, "little")


@dataclass(frozen=True, slots=True, kw_only=True)
class Package:
    """A built deployment zip."""

    path: Path
    key: str
    size_bytes: int
    unzipped_bytes: int
    files: int
    distributions: tuple[tuple[str, str], ...]
    built: bool

    def read(self) -> bytes:
        """The zip's bytes (for ``CreateFunction``'s ``ZipFile``)."""
        return self.path.read_bytes()


@dataclass(frozen=True, slots=True)
class _Entry:
    arcname: str
    source: Path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/loadlab/lambda`` (``~/.cache/loadlab/lambda``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loadlab" / "lambda"


def _loadlab_entries() -> Iterator[_Entry]:
    root = _LOADLAB_ROOT
    for relative in ("__init__.py", "errors.py", "embedded/__init__.py"):
        yield _Entry(f"loadlab/{relative}", root / relative)
    agent = root / "embedded" / "agent"
    for path in sorted(agent.iterdir()):
        if path.suffix in (".py", ".json") and path.name not in _AGENT_SERVER_ONLY:
            yield _Entry(f"loadlab/embedded/agent/{path.name}", path)
    for name in _FUNCTION_MODULES:
        yield _Entry(f"loadlab/embedded/aws_lambda/{name}", root / "embedded" / "aws_lambda" / name)


def _wanted(path: PurePosixPath) -> bool:
    parts = path.parts
    if parts[0] == ".." or "__pycache__" in parts or path.suffix in _BINARY_SUFFIXES:
        return False
    if parts[0].endswith(".dist-info"):
        # Installer records (RECORD, INSTALLER, direct_url.json) differ between machines.
        return path.name == "METADATA" or "licenses" in parts
    if parts[:2] == ("botocore", "data") and len(parts) > 3:
        return parts[2] in BOTOCORE_SERVICES
    return True


def _vendored_entries() -> Iterator[_Entry]:
    for name in VENDORED:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise StackError(
                f"cannot build the Lambda zip: {name} is not installed in {sys.prefix}",
                hint="run scripts/bootstrap (it installs requirements/dev.lock)",
            ) from None
        for file in dist.files or ():
            path = PurePosixPath(file.as_posix())
            if _wanted(path):
                yield _Entry(str(path), Path(str(dist.locate_file(file))))


def _versions() -> tuple[tuple[str, str], ...]:
    return tuple((name, importlib.metadata.version(name)) for name in VENDORED)


def _entries() -> list[_Entry]:
    entries = {entry.arcname: entry for entry in (*_loadlab_entries(), *_vendored_entries())}
    return [entries[name] for name in sorted(entries)]


def _pyc(source: bytes, arcname: str) -> bytes | None:
    try:
        code = compile(source, arcname, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        return None  # a file this Python cannot compile is left to the runtime's
    return (
        importlib.util.MAGIC_NUMBER
        + _PYC_FLAGS
        + importlib.util.source_hash(source)
        + marshal.dumps(code)
    )


def _content_key(entries: list[_Entry], *, compile_bytecode: bool) -> str:
    digest = hashlib.sha256()
    header = {
        "format": FORMAT,
        "python": sys.implementation.cache_tag if compile_bytecode else None,
        "services": BOTOCORE_SERVICES,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for entry in entries:
        digest.update(entry.arcname.encode() + b"\0")
        digest.update(hashlib.sha256(entry.source.read_bytes()).digest())
    return digest.hexdigest()


def _write(archive: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=6)


def _build_zip(
    entries: list[_Entry], manifest: dict[str, object], *, compile_bytecode: bool
) -> bytes:
    files: dict[str, bytes] = {}
    for entry in entries:
        data = entry.source.read_bytes()
        files[entry.arcname] = data
        if compile_bytecode and entry.arcname.endswith(".py"):
            pyc = _pyc(data, entry.arcname)
            if pyc is not None:
                files[importlib.util.cache_from_source(entry.arcname)] = pyc
    files[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for arcname in sorted(files):
            _write(archive, arcname, files[arcname])
    return buffer.getvalue()


def _describe(path: Path, key: str, *, built: bool) -> Package:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        manifest = json.loads(archive.read(MANIFEST))
    return Package(
        path=path,
        key=key,
        size_bytes=path.stat().st_size,
        unzipped_bytes=sum(info.file_size for info in infos),
        files=len(infos),
        distributions=tuple((str(n), str(v)) for n, v in manifest["distributions"]),
        built=built,
    )


def build_package(*, cache_dir: Path | None = None, compile_bytecode: bool = True) -> Package:
    """Return the deployment zip for the current code, building it only if not cached.

    ``cache_dir`` defaults to :func:`default_cache_dir`. Raises
    :class:`~loadlab.errors.StackError` if a vendored distribution is missing or
    the cache directory cannot be written.
    """
    directory = default_cache_dir() if cache_dir is None else Path(cache_dir)
    entries = _entries()
    key = _content_key(entries, compile_bytecode=compile_bytecode)
    path = directory / f"loadlab-agent-{key[:16]}.zip"
    if path.is_file():
        with contextlib.suppress(zipfile.BadZipFile, KeyError, ValueError, OSError):
            return _describe(path, key, built=False)
    manifest: dict[str, object] = {
        "format": FORMAT,
        "key": key,
        "handler": HANDLER,
        "python": sys.implementation.cache_tag if compile_bytecode else None,
        "distributions": [list(pair) for pair in _versions()],
        "botocore_services": list(BOTOCORE_SERVICES),
    }
    data = _build_zip(entries, manifest, compile_bytecode=compile_bytecode)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Written aside then renamed: a concurrent builder or a crash never leaves half a zip.
        partial = directory / f".{path.name}.{os.getpid()}.tmp"
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as exc:
        raise StackError(
            f"cannot write the Lambda zip to {directory}: {exc}",
            hint="pass a writable cache directory (--cache-dir)",
        ) from None
    return _describe(path, key, built=True)
