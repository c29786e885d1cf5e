"""Atomic writes of data files (i2moe.data.files)."""

import os

import pytest

from i2moe.data.files import write_atomically


def test_the_file_appears_whole_with_a_data_file_mode(tmp_path):
    path = tmp_path / "sub" / "data.bin"
    write_atomically(path, lambda stream: stream.write(b"abc"))
    assert path.read_bytes() == b"abc"
    assert os.listdir(path.parent) == ["data.bin"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")

    def fail(stream):
        stream.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["data.bin"]
