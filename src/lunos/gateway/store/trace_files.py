"""Trace payloads of a SQLite history, in append-only files beside the database.

A traced row's request and response are most of its bytes (a kilobyte or more, against
about 300 for the rest). Inside SQLite they were written twice (into the WAL, then by the
checkpoint into the database) on pages that two such rows fill to two thirds. Appended to a
file of their own they are written once, in one system call per batch; the row keeps a
reference, `trace_ref` = "<file>:<offset>:<request length>:<response length>".

One file per writing process and UTC day (`2026-11-26-<tag>.trace`): processes never
interleave their writes, and retention deletes whole files. A batch's payloads are written
before its rows commit, so a batch that fails leaves unreferenced bytes, never a reference
to bytes that are missing. Read back, a reference whose file retention deleted is a purged
trace.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from ..records import utc_day

_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-[0-9a-f]{8}\.trace$")


class TraceFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tag = secrets.token_hex(4)  # this process's files
        self._fd: int | None = None
        self._name = ""

    def move_out(self, rows: list[tuple]) -> list[tuple]:
        """Write the payloads of the traced rows to today's file and return the rows with
        each payload (the last value, as in a `HistoryRow`: request and response bytes, or
        None when untraced) replaced by its reference. Runs in the history thread."""
        out = []
        chunks: list[bytes] = []
        name = ""
        offset = 0
        for row in rows:
            payload = row[-1]
            if payload is None:
                out.append(row)
                continue
            if not name:  # a history without traces creates no file
                name = self._open()
                offset = os.lseek(self._fd, 0, os.SEEK_END)  # after a failed write too
            request, response = payload
            response = response or b""
            chunks.append(request)
            chunks.append(response)
            out.append((*row[:-1], f"{name}:{offset}:{len(request)}:{len(response)}"))
            offset += len(request) + len(response)
        if chunks:
            data = memoryview(b"".join(chunks))
            while data:
                data = data[os.write(self._fd, data):]
        return out

    def _open(self) -> str:
        name = f"{utc_day(time.time())}-{self.tag}.trace"
        if name != self._name:
            self.close()
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._name = name
        return name

    def read(self, refs: list[str | None]) -> list[tuple[bytes | None, bytes | None] | None]:
        """Each reference's request and response bytes (None where there is no reference;
        (None, None) once retention deleted them). Each file is opened once."""
        out: list[tuple[bytes | None, bytes | None] | None] = []
        files: dict[str, int | None] = {}
        try:
            for ref in refs:
                out.append(None if ref is None else self._read_one(ref, files))
        finally:
            for fd in files.values():
                if fd is not None:
                    os.close(fd)
        return out

    def _read_one(self, ref: str, files: dict[str, int | None]) -> tuple[bytes | None, bytes | None]:
        name, offset, request_len, response_len = ref.rsplit(":", 3)
        if not _NAME.match(name):
            raise ValueError(f"not a trace reference: {ref!r}")
        if name not in files:
            try:
                files[name] = os.open(self.directory / name, os.O_RDONLY)
            except FileNotFoundError:
                files[name] = None
        fd = files[name]
        size = int(request_len) + int(response_len)
        data = os.pread(fd, size, int(offset)) if fd is not None else b""
        if len(data) < size:  # deleted by retention, or cut short by a crash before a flush
            return None, None
        cut = int(request_len)
        return data[:cut], (data[cut:] or None)

    def purge(self, older_than: float) -> int:
        """Delete the files of days that ended before `older_than`; return how many."""
        if not self.directory.is_dir():
            return 0
        cutoff = utc_day(older_than)  # a day before this one ended before `older_than`
        deleted = 0
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match and match.group(1) < cutoff:
                if path.name == self._name:
                    continue  # still open for writing: this process's clock says today
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd, self._name = None, ""
