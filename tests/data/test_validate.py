"""The checks shared by the npz and table readers (i2moe.data.validate)."""

import numpy as np
import pytest

from i2moe.data.base import DataError
from i2moe.data.validate import mark_missing, prepare_targets, resolve_split


def test_targets_follow_the_given_or_inferred_task():
    classes = prepare_targets(np.array([0, 1, 2, 1]), None, source="f", field="array 'y'")
    assert (classes.task, classes.num_outputs, classes.values.dtype) == (
        "classification",
        3,
        np.int64,
    )
    values = prepare_targets(np.array([0.5, 1.5]), None, source="f", field="array 'y'")
    assert values.task == "regression" and values.stratify_by() is None
    labels = prepare_targets(np.array([[0, 1], [1, 1]]), None, source="f", field="array 'y'")
    assert labels.task == "multilabel" and labels.stratify_by().tolist() == [0.0, 1.0]
    with pytest.raises(DataError, match="f: array 'y': holds a single class"):
        prepare_targets(np.zeros(4, dtype=int), None, source="f", field="array 'y'")


def test_a_class_only_in_test_is_an_error_naming_the_class():
    targets = prepare_targets(np.array([0, 1, 1, 2]), None, source="f", field="array 'y'")
    with pytest.raises(DataError, match="class 2 'c' occurs in the test split but not in train"):
        resolve_split(
            np.array([0, 0, 1, 2]),
            targets,
            seed=0,
            source="f",
            field="array 'split'",
            class_names=["a", "b", "c"],
        )


def test_all_nan_rows_become_missing_and_unobserved_rows_zero():
    values = np.array([[np.nan, np.nan], [1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    observed = mark_missing(
        values, np.array([True, True, False]), clean_nonfinite=False, source="f", field="x"
    )
    assert observed.tolist() == [False, True, False]
    np.testing.assert_array_equal(values, [[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]])
