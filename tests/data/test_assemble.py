"""Validated arrays cut into a DataBundle (i2moe.data.assemble)."""

import numpy as np
import pytest

from i2moe.data.assemble import assemble_bundle, class_weights
from i2moe.data.validate import Targets


def test_class_weights_balance_the_training_classes():
    targets = Targets(np.array([0, 0, 0, 1, 2, 2]), "classification", 4)
    train = np.array([True, True, True, True, False, False])
    assert class_weights(targets, train) == pytest.approx([4 / 6, 2.0, 0.0, 0.0])
    assert class_weights(Targets(np.zeros(3, np.float32), "regression", 1), train[:3]) is None


def test_rows_ids_and_records_follow_the_split_codes():
    targets = Targets(np.array([0, 1, 0, 1, 0]), "classification", 2)
    bundle = assemble_bundle(
        name="toy",
        targets=targets,
        features={"a": np.arange(10, dtype=np.float32).reshape(5, 2)},
        observed=np.ones((5, 1), dtype=bool),
        codes=np.array([0, 1, 0, 2, 0]),
        class_names=None,
        sample_ids=np.array(["p", "q", "r", "s", "t"]),
        per_sample={"record": np.array([10, 11, 12, 13, 14])},
        meta={"source": "toy.npz"},
    )
    assert bundle.meta["rows"]["train"].tolist() == [0, 2, 4]
    assert bundle.meta["record"]["val"].tolist() == [11]
    assert bundle.test.sample_ids == ["s"]
    assert bundle.train.arrays["a"][1].tolist() == [4.0, 5.0]
    assert bundle.modalities[0].shape == (2,) and bundle.meta["source"] == "toy.npz"
