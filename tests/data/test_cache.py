"""The disk cache (i2moe.data.cache)."""

from __future__ import annotations

import logging

import numpy as np

from i2moe.data.cache import cached_array, resolve_cache_dir


def test_cached_array_computes_once_and_writes_atomically(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    path = tmp_path / "sub" / "cache.npy"
    first = cached_array(path, compute)
    second = cached_array(path, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    assert [p.name for p in path.parent.iterdir()] == ["cache.npy"]  # no temporary left


def test_cached_array_recomputes_an_unreadable_file(tmp_path, caplog):
    path = tmp_path / "cache.npy"
    path.write_bytes(b"not an array")
    with caplog.at_level(logging.WARNING, logger="i2moe.data.cache"):
        result = cached_array(path, lambda: np.ones(3))
    np.testing.assert_array_equal(result, np.ones(3))
    np.testing.assert_array_equal(np.load(path), np.ones(3))
    assert "unreadable" in caplog.text


def test_cache_dir_option_then_environment_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("I2MOE_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("I2MOE_CACHE")
    assert resolve_cache_dir().parts[-2:] == (".cache", "i2moe")
