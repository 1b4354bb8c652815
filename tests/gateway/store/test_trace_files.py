"""Trace payload files: append, read back by reference, delete by day."""

from __future__ import annotations

import os
import time

import pytest

from lunos.gateway.store.trace_files import TraceFiles

DAY = 86400


def rows(*payloads):
    """Rows shaped like queued history rows: columns, then the payloads or None."""
    return [(f"r{i}", 200, None if req is None else (req, resp)) for i, (req, resp) in enumerate(payloads)]


def test_payloads_move_out_and_read_back(tmp_path):
    files = TraceFiles(tmp_path / "traces")
    assert files.move_out(rows((None, None))) == [("r0", 200, None)]
    assert not (tmp_path / "traces").exists()  # no traces, no file
    first = files.move_out(rows((b'{"a":1}', b'{"b":2}'), (None, None), (b"{}", None)))
    assert first[1] == ("r1", 200, None)  # untraced: unchanged
    assert first[0][:2] == ("r0", 200) and first[0][2].endswith(".trace:0:7:7")
    second = files.move_out(rows((b'{"c":3}', b'{"d":4}')))
    assert files.read([first[0][2], None, first[2][2], second[0][2]]) == [
        (b'{"a":1}', b'{"b":2}'), None, (b"{}", None), (b'{"c":3}', b'{"d":4}')]
    files.close()
    again = TraceFiles(tmp_path / "traces")  # another process: a file of its own
    third = again.move_out(rows((b"x", b"y")))
    assert third[0][2].split(":")[0] != second[0][2].split(":")[0]
    assert again.read([second[0][2], third[0][2]]) == [(b'{"c":3}', b'{"d":4}'), (b"x", b"y")]
    assert len(os.listdir(tmp_path / "traces")) == 2


def test_a_reference_cannot_name_another_file(tmp_path):
    files = TraceFiles(tmp_path)
    (tmp_path / "secret").write_bytes(b"nope")
    for ref in ("../secret:0:4:0", "secret:0:4:0", "/etc/passwd:0:4:0"):
        with pytest.raises(ValueError):
            files.read([ref])


def test_purge_deletes_whole_days_that_ended_before_the_cutoff(tmp_path):
    files = TraceFiles(tmp_path)
    ref = files.move_out(rows((b"today", b"")))[0][2]
    day = lambda ts: time.strftime("%Y-%m-%d", time.gmtime(ts))  # noqa: E731
    old = tmp_path / f"{day(time.time() - 3 * DAY)}-0123abcd.trace"
    recent = tmp_path / f"{day(time.time() - DAY)}-0123abcd.trace"
    other = tmp_path / "notes.txt"
    for path in (old, recent, other):
        path.write_bytes(b"x")
    assert files.purge(time.time() - 2 * DAY) == 1
    assert not old.exists() and recent.exists() and other.exists()
    assert files.read([f"{old.name}:0:1:0"]) == [(None, None)]  # a purged trace
    assert files.purge(time.time() + 2 * DAY) == 1  # today's open file stays
    assert files.read([ref]) == [(b"today", None)]


def test_a_failed_write_does_not_shift_later_references(tmp_path, monkeypatch):
    files = TraceFiles(tmp_path)
    files.move_out(rows((b"first", b"")))
    real_write = os.write

    def half_then_fail(fd, data):  # the disk fills up mid-batch
        real_write(fd, bytes(data[:3]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(OSError):
        files.move_out(rows((b"lost", b"")))
    monkeypatch.setattr(os, "write", real_write)
    ref = files.move_out(rows((b"retried", b"ok")))[0][2]  # the batch, written again
    assert files.read([ref]) == [(b"retried", b"ok")]


def test_a_file_cut_short_reads_as_a_purged_trace(tmp_path):
    files = TraceFiles(tmp_path)
    ref = files.move_out(rows((b'{"long":"request"}', b'{"and":"response"}')))[0][2]
    files.close()
    path = tmp_path / ref.split(":")[0]
    path.write_bytes(path.read_bytes()[:10])
    assert files.read([ref]) == [(None, None)]
