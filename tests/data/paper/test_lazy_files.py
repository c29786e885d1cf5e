"""Files opened once per process and never pickled (i2moe.data.paper.lazy_files)."""

import functools
import pickle

import numpy as np

from i2moe.data.paper.lazy_files import ProcessLocalFile


def test_the_file_opens_on_first_use_and_a_pickle_carries_only_how_to_open_it(tmp_path):
    np.save(tmp_path / "rows.npy", np.arange(12.0).reshape(3, 4))
    lazy = ProcessLocalFile(functools.partial(np.load, tmp_path / "rows.npy", mmap_mode="r"))
    assert not lazy.is_open
    assert lazy.get()[1, 2] == 6.0 and lazy.is_open
    assert lazy.get() is lazy.get()
    clone = pickle.loads(pickle.dumps(lazy))
    assert not clone.is_open and clone.get()[2, 3] == 11.0
    lazy.close()
    assert not lazy.is_open


def test_close_closes_a_handle_that_can_be_closed(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("x")
    lazy = ProcessLocalFile(functools.partial(open, path))
    handle = lazy.get()
    lazy.close()
    assert handle.closed and not lazy.is_open
