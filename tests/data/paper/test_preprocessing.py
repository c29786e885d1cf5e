"""Preprocessing fitted on training rows (i2moe.data.paper.preprocessing)."""

import numpy as np

from i2moe.data.paper.preprocessing import (
    MinMaxScaler,
    Standardizer,
    all_value_rows,
    column_modes,
)


def test_standardizer_fills_missing_with_the_training_mean_and_keeps_constant_columns_zero():
    train = np.array([[1.0, 5.0], [3.0, 5.0], [np.nan, 5.0]])
    scaler = Standardizer(train)
    np.testing.assert_allclose(scaler.mean, [2.0, 5.0])
    out = scaler.transform(np.array([[np.nan, 5.0], [4.0, 7.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.0], [2.0, 2.0]])


def test_min_max_scaler_maps_the_training_range_to_minus_one_one():
    scaler = MinMaxScaler(np.array([[0.0, 3.0], [10.0, 3.0]]))
    np.testing.assert_allclose(
        scaler.transform(np.array([[5.0, 3.0], [20.0, 4.0]])), [[0, -1], [3, 1]]
    )


def test_column_modes_take_the_smallest_on_ties_and_zero_for_empty_columns():
    rows = np.array([[2.0, np.nan], [1.0, np.nan], [2.0, np.nan], [1.0, np.nan]])
    np.testing.assert_array_equal(column_modes(rows), [1.0, 0.0])


def test_all_value_rows_finds_rows_of_the_missing_marker():
    rows = np.array([[-2.0, -2.0], [-2.0, 1.0], [0.0, 0.0]])
    assert all_value_rows(rows, -2.0).tolist() == [True, False, False]
    assert all_value_rows(np.zeros((2, 0)), -2.0).tolist() == [False, False]
