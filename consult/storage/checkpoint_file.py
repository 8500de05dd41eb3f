"""The checkpoint file: the audit log's signed checkpoints kept outside the database, one JSON
object per line, only ever appended, each line on disk (fsync) before its checkpoint counts.

A line is ``{"kind", "size", "root", "signed_at", "note"}``; the signed ``note`` (a C2SP
signed-note over a tlog-checkpoint) is what a verifier trusts, the other fields are there to be
read by people. Appends from several processes are serialised by an exclusive ``flock`` on the
file itself (a BSD lock, which closing another descriptor of the file does not drop).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["CheckpointFile", "CheckpointFileError", "FileLine"]

_TAIL_CHUNK = 8192
_SCAN_CHUNK = 1 << 20
_MAX_LINE = 64 * 1024  # a signed checkpoint is well under 1 KiB; anything longer is not one


class CheckpointFileError(Exception):
    """The file cannot be read or written (the message names the file and the reason)."""


class FileLine:
    """One line as stored: ``number`` counts from 1 (None when read from the end); ``end`` is the
    byte offset just after it. Parsed only when asked: a verifier reads most lines unparsed."""

    __slots__ = ("_data", "_parsed", "end", "number", "raw")

    def __init__(self, raw: bytes, number: int | None, end: int) -> None:
        self.raw = raw.rstrip(b"\n")
        self.number = number
        self.end = end
        self._parsed = False
        self._data: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"FileLine(end={self.end})"

    @property
    def start(self) -> int:
        """The byte offset where the line begins (where the line before it ends)."""
        return self.end - len(self.raw) - 1

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def contains(self, needle: bytes) -> bool:
        return needle in self.raw

    @property
    def data(self) -> dict[str, Any] | None:
        """The line's JSON object, or None for a line that is not one."""
        if not self._parsed:
            self._parsed = True
            try:
                data = json.loads(self.raw) if len(self.raw) <= _MAX_LINE else None
            except ValueError:
                data = None
            self._data = data if isinstance(data, dict) else None
        return self._data

    @property
    def note(self) -> str | None:
        note = self.data.get("note") if self.data else None
        return note if isinstance(note, str) else None


class CheckpointFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"CheckpointFile({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    # -- appending ----------------------------------------------------------------------------

    def append(self, record: dict[str, Any], *, expect_end: int | None = None) -> bool:
        """Append ``record`` as one line and fsync it.

        ``expect_end``: append only if the file still ends where the caller last read it (its
        decision was made on that last line); False when another process appended meanwhile.
        A torn last line (a crash mid-write, never acknowledged) is cut off first.
        """
        line = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        except OSError as exc:
            raise CheckpointFileError(f"{self.path}: cannot open for appending ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            end = _complete_end(fd)
            if expect_end is not None and end != expect_end:
                return False
            if end != os.fstat(fd).st_size:
                os.ftruncate(fd, end)
            os.write(fd, line)
            os.fsync(fd)
        except OSError as exc:
            raise CheckpointFileError(f"{self.path}: cannot append ({exc.strerror})") from None
        finally:
            os.close(fd)  # closing releases the flock
        if created:
            _fsync_dir(self.path.parent)
        return True

    # -- reading ------------------------------------------------------------------------------

    def last(self) -> FileLine | None:
        """The last complete line, read from the end (None for a missing or empty file)."""
        return next(self.backwards(), None)

    def end(self) -> int:
        """The offset after the last complete line (0 for a missing file)."""
        last = self.last()
        return 0 if last is None else last.end

    def _open_for_reading(self) -> BinaryIO | None:
        """The file for reading, or None when there is none yet."""
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointFileError(f"{self.path}: cannot read ({exc.strerror})") from None

    def backwards(self, before: int | None = None) -> Iterator[FileLine]:
        """Complete lines from the last (or the last ending at ``before``) to the first
        (``number`` unknown: None)."""
        fh = self._open_for_reading()
        if fh is None:
            return
        with fh:
            end = _complete_end(fh.fileno())  # a last line without its newline is a torn write
            if before is not None:
                end = min(end, before)
            pos, tail = end, b""  # tail: the bytes from pos up to end, not yet yielded
            while end > 0:
                cut = tail.rfind(b"\n", 0, len(tail) - 1)
                if cut >= 0 or pos == 0:
                    raw = tail[cut + 1 :]
                    yield _parse(raw, None, end)
                    end -= len(raw)
                    tail = tail[: cut + 1]
                    continue
                step = min(_TAIL_CHUNK, pos)
                pos -= step
                tail = os.pread(fh.fileno(), step, pos) + tail

    def last_containing(self, needle: bytes, before: int) -> FileLine | None:
        """The last complete line ending at or before offset ``before`` that contains ``needle``:
        a byte search over the file from the end, without splitting it into lines."""
        fh = self._open_for_reading()
        if fh is None:
            return None
        with fh:
            fd = fh.fileno()
            pos, overlap = min(before, _complete_end(fd)), b""
            limit = pos
            while pos > 0:
                step = min(_SCAN_CHUNK, pos)
                pos -= step
                chunk = os.pread(fd, step, pos) + overlap
                found = chunk.rfind(needle)
                if found >= 0:
                    start = chunk.rfind(b"\n", 0, found) + 1
                    while start == 0 and pos > 0:  # the line began before this chunk
                        step = min(_TAIL_CHUNK, pos)
                        pos -= step
                        chunk = os.pread(fd, step, pos) + chunk
                        found += step
                        start = chunk.rfind(b"\n", 0, found) + 1
                    line_start = pos + start
                    after = os.pread(fd, min(_MAX_LINE, limit - line_start), line_start)
                    cut = after.find(b"\n")
                    return FileLine(after[: cut + 1], None, line_start + cut + 1) if cut >= 0 else None
                overlap = chunk[: len(needle) - 1]
            return None

    def lines(self) -> Iterator[FileLine]:
        """Complete lines from the first, numbered from 1."""
        fh = self._open_for_reading()
        if fh is None:
            return
        with fh:
            end = 0
            for number, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    return  # a torn last write
                end += len(raw)
                yield _parse(raw, number, end)



def _parse(raw: bytes, number: int | None, end: int) -> FileLine:
    return FileLine(raw, number, end)


def _complete_end(fd: int) -> int:
    """The offset after the last newline of the open file (0 if it has none)."""
    size = os.fstat(fd).st_size
    pos = size
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        chunk = os.pread(fd, step, pos)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return pos + cut + 1
    return 0


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
