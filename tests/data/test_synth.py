import os

import numpy as np
import pytest

from i2moe.data.base import SPLITS, DataError
from i2moe.data.npz import read_npz
from i2moe.data.synth import generate, interaction_names, write_synth


def _knn_accuracy(data: dict[str, np.ndarray], names: list[str], k: int = 15) -> float:
    """Test accuracy of a k-nearest-neighbour vote on the given modalities (a non-linear probe)."""
    features = np.concatenate([data[n].reshape(len(data["y"]), -1) for n in names], axis=1)
    train, test = data["split"] == 0, data["split"] != 0
    distances = ((features[test, None, :] - features[None, train, :]) ** 2).sum(-1)
    nearest = np.argsort(distances, axis=1)[:, :k]
    votes = data["y"][train][nearest]
    predicted = np.array([np.bincount(row).argmax() for row in votes])
    return float((predicted == data["y"][test]).mean())


def test_outputs_shapes_types_and_determinism():
    data = generate("synergy", num_modalities=3, num_samples=200, dim=5, seed=4)
    assert sorted(data) == sorted(
        ["mod0", "mod1", "mod2", "y", "split", "interaction", "interaction_names", "latent_bits"]
    )
    assert data["mod0"].shape == (200, 5) and data["mod0"].dtype == np.float32
    assert data["latent_bits"].shape == (200, 3) and data["y"].dtype == np.int64
    assert data["interaction_names"].tolist() == ["uni_mod0", "uni_mod1", "uni_mod2", "syn", "red"]
    assert np.bincount(data["split"]).tolist() == [140, 30, 30]
    again = generate("synergy", num_modalities=3, num_samples=200, dim=5, seed=4)
    for key, value in data.items():
        np.testing.assert_array_equal(value, again[key])
    other = generate("synergy", num_modalities=3, num_samples=200, dim=5, seed=5)
    assert not np.array_equal(data["mod0"], other["mod0"])


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_synergy_each_modality_alone_is_at_chance_but_all_together_decide(num_modalities):
    data = generate("synergy", num_modalities=num_modalities, num_samples=1600, noise=0.3, seed=0)
    names = [f"mod{m}" for m in range(num_modalities)]
    np.testing.assert_array_equal(data["y"], data["latent_bits"].sum(axis=1) % 2)
    for name in names:
        assert abs(_knn_accuracy(data, [name]) - 0.5) < 0.08
    assert _knn_accuracy(data, names) > 0.9


def test_uniqueness_only_the_unique_modality_carries_the_label():
    data = generate("uniqueness", num_samples=1000, unique_modality=1, noise=0.3, seed=1)
    np.testing.assert_array_equal(data["y"], data["latent_bits"][:, 1])
    assert _knn_accuracy(data, ["mod1"]) > 0.95
    assert abs(_knn_accuracy(data, ["mod0"]) - 0.5) < 0.08
    assert (data["interaction"] == 1).all()


def test_redundancy_each_modality_alone_predicts_the_label():
    data = generate("redundancy", num_modalities=3, num_samples=1000, noise=0.3, seed=2)
    assert (data["latent_bits"] == data["y"][:, None]).all()
    for name in ("mod0", "mod1", "mod2"):
        assert _knn_accuracy(data, [name]) > 0.95


def test_mixed_record_matches_the_mechanism_of_every_sample():
    proportions = {"uni_mod1": 1.0, "uniqueness": 1.0, "synergy": 2.0, "redundancy": 0.0}
    data = generate("mixed", num_modalities=3, num_samples=4000, proportions=proportions, seed=3)
    names = data["interaction_names"].tolist()
    record, y, latent = data["interaction"], data["y"], data["latent_bits"]
    shares = np.bincount(record, minlength=len(names)) / len(record)
    np.testing.assert_allclose(shares, [0.25, 0.25, 0.0, 0.5, 0.0], atol=0.03)
    for code, name in enumerate(names):
        rows = record == code
        if name == "syn":
            np.testing.assert_array_equal(y[rows], latent[rows].sum(axis=1) % 2)
        elif name == "red":
            assert (latent[rows] == y[rows, None]).all()
        else:
            np.testing.assert_array_equal(y[rows], latent[rows, int(name[-1])])
    # The split keeps each mechanism's share.
    for split in range(3):
        in_split = (
            np.bincount(record[data["split"] == split], minlength=5)
            / (data["split"] == split).sum()
        )
        np.testing.assert_allclose(in_split, shares, atol=0.03)


def test_more_classes_and_token_sequences():
    data = generate("synergy", num_classes=3, num_samples=600, num_tokens=4, dim=6, noise=0.1)
    assert data["mod0"].shape == (600, 4, 6)
    np.testing.assert_array_equal(data["y"], data["latent_bits"].sum(axis=1) % 3)
    assert set(np.unique(data["y"]).tolist()) == {0, 1, 2}
    # The token mean carries the signal: same symbol -> close means, different -> far apart.
    means = data["mod0"].mean(axis=1)
    same = data["latent_bits"][:, 0] == data["latent_bits"][0, 0]
    distance = np.linalg.norm(means - means[0], axis=1)
    assert distance[same].mean() < 0.5 < 1.5 < distance[~same].mean()


def test_eight_modalities_are_supported():
    data = generate("redundancy", num_modalities=8, num_samples=100, dim=2)
    assert [key for key in data if key.startswith("mod")] == [f"mod{m}" for m in range(8)]
    assert interaction_names(8)[-2:] == ["syn", "red"]


def test_written_file_loads_with_read_npz(tmp_path):
    path = write_synth(tmp_path / "sub" / "syn.npz", "mixed", num_modalities=2, num_samples=300)
    assert path == tmp_path / "sub" / "syn.npz"
    assert os.listdir(path.parent) == ["syn.npz"]  # no temporary file left behind
    bundle = read_npz(path)
    assert bundle.modality_names == ["mod0", "mod1"]
    assert bundle.task == "classification" and bundle.num_outputs == 2
    assert bundle.meta["interaction_names"] == ["uni_mod0", "uni_mod1", "syn", "red"]
    data = generate("mixed", num_modalities=2, num_samples=300)
    for split_code, split in enumerate(SPLITS):
        rows = bundle.meta["rows"][split]
        np.testing.assert_array_equal(rows, np.flatnonzero(data["split"] == split_code))
        np.testing.assert_array_equal(bundle.meta["interaction"][split], data["interaction"][rows])
        np.testing.assert_array_equal(bundle.meta["latent_bits"][split], data["latent_bits"][rows])


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"interaction": "xor"}, "interaction"),
        ({"num_modalities": 9}, "num_modalities"),
        ({"num_modalities": 1}, "num_modalities"),
        ({"num_samples": 5}, "num_samples"),
        ({"num_classes": 5, "dim": 3}, "dim"),
        ({"num_tokens": 0}, "num_tokens"),
        ({"noise": -1.0}, "noise"),
        ({"unique_modality": 2}, "unique_modality"),
        ({"proportions": {"synergy": 1.0}}, "proportions"),
        ({"interaction": "mixed", "proportions": {"pid": 1.0}}, "proportions"),
        ({"interaction": "mixed", "proportions": {"synergy": 0.0}}, "proportions"),
    ],
)
def test_bad_options_raise_data_error_naming_the_option(kwargs, option):
    arguments = {"interaction": "synergy", **kwargs}
    with pytest.raises(DataError, match=f"option '{option}'"):
        generate(arguments.pop("interaction"), **arguments)


def test_unwritable_path_raises_data_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot be written"):
        write_synth(blocker / "syn.npz", "synergy", num_samples=100)
