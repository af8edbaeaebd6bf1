"""Parquet parts written by a child process, so a flush never holds the load's GIL.

Under Locust every user runs on one gevent loop in the main thread. Turning a
second of rows into a parquet part (rows to columns, redaction, Arrow
conversion) is Python code that holds the GIL: on a thread beside the loop it
held the users up for milliseconds every second, and most of the turns the
harness timed over 5 ms late ended during a flush (bench/RESULTS.md).
:class:`PartWriterProcess` hands each batch to a child process instead. The
load's loop only serialises the rows (marshal, C code, under a microsecond a
turn); a real thread (:mod:`loadlab.measure.offload`) carries the bytes over
the pipe and waits for the answer with the GIL released; the child converts,
redacts and writes the part (:func:`loadlab.measure.part_file.write_part`, the
same function the recorder runs in-process elsewhere) and answers with the
values it had to repair.

The protocol, over the child's stdin and stdout: frames of an 8-byte length, a
kind byte and the value (``M``: marshal; ``P``: a pickle, for what marshal
cannot write). The parent first sends the :class:`~loadlab.redact.Redactor`
(the secrets never touch a file or the command line); the child answers
``ready`` once pyarrow is warm. Then, per part, ``(table, rows, tmp path, final
path)`` is answered by ``("ok", problems)`` or ``("error", message)``. The
child exits at the end of its input, so it never outlives the load process,
killed or not.

Run as ``python -m loadlab.measure.part_writer`` (by :meth:`PartWriterProcess.start`
only: it is not a command).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import loadlab
from loadlab.measure.offload import Offloader
from loadlab.redact import Redactor

__all__ = ["COMMAND", "PartWriterError", "PartWriterProcess"]

_LENGTH = struct.Struct("!Q")
_MARSHAL = b"M"
_PICKLE = b"P"
_READY = "ready"
NICE = 10
"""How much lower the child's scheduling priority is than the load's (``os.nice``)."""

COMMAND = (sys.executable, "-m", "loadlab.measure.part_writer")
"""How the child is started."""


class PartWriterError(RuntimeError):
    """The child could not write a part (the batch stays with the recorder for the next try)."""


def _write_frame(fd: int, payload: bytes) -> None:
    for part in (_LENGTH.pack(len(payload)), payload):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


def _encode(value: object) -> bytes:
    # marshal writes tuples of str, int, float, bool and None (every row loadlab
    # makes) in half the time pickle takes, on the loop; anything else is pickled.
    # Parent and child are the same interpreter, so marshal's format is shared.
    try:
        return _MARSHAL + marshal.dumps(value)  # type: ignore[arg-type]
    except ValueError:
        return _PICKLE + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _decode(data: bytes) -> Any:
    kind, body = data[:1], data[1:]
    if kind == _MARSHAL:
        return marshal.loads(body)
    if kind == _PICKLE:
        return pickle.loads(body)
    raise ValueError(f"not a part writer frame (starts with {data[:16]!r})")


def _read_exact(fd: int, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the pipe closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int) -> Any:
    (length,) = _LENGTH.unpack(_read_exact(fd, _LENGTH.size))
    return _decode(_read_exact(fd, length))


class PartWriterProcess:
    """A child process that writes the recorder's parquet parts (see the module docstring).

    ``offload`` runs the blocking pipe I/O (the recorder's offloader: a real
    thread under gevent). The pipes are plain blocking descriptors of our own,
    not the subprocess module's file objects (under gevent those belong to the
    loop, not to a thread). A child that died is started again at the next write.
    """

    def __init__(
        self, redactor: Redactor, offload: Offloader, *, command: Sequence[str] = COMMAND
    ) -> None:
        self._redactor = redactor
        self._offload = offload
        self.command = tuple(command)
        self._proc: subprocess.Popen[bytes] | None = None
        self._to_child = -1
        self._from_child = -1

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> PartWriterProcess:
        """Start the child and wait until it is ready to write (pyarrow imported and warm)."""
        if self.pid is not None:
            return self
        self.close()
        # The child imports this very loadlab, wherever it was imported from.
        env = dict(os.environ)
        source = str(Path(loadlab.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        child_in, self._to_child = os.pipe()
        self._from_child, child_out = os.pipe()
        try:
            # A session of its own: a Ctrl-C at the terminal stops the load, and
            # the child writes what the load's last flush hands it.
            self._proc = subprocess.Popen(
                self.command, stdin=child_in, stdout=child_out, env=env, start_new_session=True
            )
        except OSError as exc:
            self.close()
            raise PartWriterError(f"cannot start the part writer process: {exc}") from None
        finally:
            os.close(child_in)
            os.close(child_out)
        init = _encode(self._redactor)
        answer = self._exchange(init)
        if answer != _READY:
            self.close()
            raise PartWriterError(f"the part writer process answered {answer!r:.80} to its start")
        return self

    def write(
        self, table: str, rows: Sequence[tuple[Any, ...]], tmp: Path, final: Path
    ) -> list[str]:
        """Write ``rows`` of ``table`` as the part ``final`` (through ``tmp``); the repairs made."""
        if self.pid is None:
            self.start()
        payload = _encode((table, rows, str(tmp), str(final)))
        answer = self._exchange(payload)
        kind, value = answer
        if kind != "ok":
            raise PartWriterError(str(value))
        return list(value)

    def _exchange(self, payload: bytes) -> Any:
        """Send one frame and return the child's answer; a broken child is ended."""
        to_child, from_child = self._to_child, self._from_child
        answer: list[Any] = []

        def exchange() -> None:
            _write_frame(to_child, payload)
            answer.append(_read_frame(from_child))

        try:
            self._offload(exchange)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as exc:
            # A half-read frame cannot be resumed: this child is done with.
            proc = self._proc
            self.close(kill=True)
            code = None if proc is None else proc.returncode
            raise PartWriterError(
                f"the part writer process failed: {exc}"
                + ("" if code is None else f" (exit status {code})")
            ) from None
        return answer[0]

    def close(self, *, kill: bool = False) -> None:
        """End the child: close its input and wait for it (10 s) before killing it."""
        proc, self._proc = self._proc, None
        for fd in (self._to_child, self._from_child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_child = self._from_child = -1
        if proc is None:
            return
        if not kill:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def main() -> int:
    """The child: answer each part frame on stdin with its result on stdout until the input ends."""
    from loadlab.measure.part_file import arrow_schema, warm_up, write_part
    from loadlab.rows import ROW_TYPES

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # it ends when its input does
    # Background work: on a busy machine the load generator's loop goes first.
    with contextlib.suppress(OSError):
        os.nice(NICE)
    # The frames own descriptors 0 and 1; print() goes to stderr, never into a frame.
    frames_in = os.dup(0)
    frames_out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        redactor = _read_frame(frames_in)
    except EOFError:
        return 0
    if not isinstance(redactor, Redactor):
        print(
            f"part writer: expected a Redactor first, got {type(redactor).__name__}",
            file=sys.stderr,
        )
        return 2
    schemas = {name: arrow_schema(cls) for name, cls in ROW_TYPES.items()}
    warm_up(schemas.values())
    _write_frame(frames_out, _encode(_READY))
    while True:
        try:
            table, rows, tmp, final = _read_frame(frames_in)
        except EOFError:
            return 0
        try:
            answer: tuple[str, Any] = (
                "ok",
                write_part(
                    table, rows, schemas[table], redact=redactor, tmp=Path(tmp), final=Path(final)
                ),
            )
        except Exception as exc:  # the parent keeps the rows and tries again
            answer = ("error", redactor(f"{type(exc).__name__}: {exc}"))
        try:
            _write_frame(frames_out, _encode(answer))
        except BrokenPipeError:  # the load process is gone: nothing is waiting for the answer
            return 0


if __name__ == "__main__":
    sys.exit(main())
