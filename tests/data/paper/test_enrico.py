"""ENRICO reader on fake screens: split, labels, per-item decoding, train-only augmentation."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")

from fakes import ENRICO_TOPICS, write_enrico  # noqa: E402
from PIL import Image  # noqa: E402

from i2moe.data import DataError  # noqa: E402
from i2moe.data.paper import read_enrico  # noqa: E402

SMALL = (32, 16)


def _csv_rows(folder):
    with (folder / "design_topics.csv").open(newline="") as handle:
        return [(r["screen_id"], r["topic"]) for r in csv.DictReader(handle)]


def test_split_labels_and_shapes(tmp_path):
    folder = write_enrico(tmp_path, n=30)
    bundle = read_enrico(folder, image_size=SMALL)

    assert bundle.task == "classification" and bundle.num_outputs == 20
    assert bundle.class_names == sorted(ENRICO_TOPICS)
    assert [(m.name, m.shape, m.kind) for m in bundle.modalities] == [
        ("screenshot", (3, 32, 16), "image"),
        ("wireframe", (3, 32, 16), "image"),
    ]
    # 30 usable screens: int(30 * 0.65) = 19, int(30 * 0.8) = 24.
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [19, 5, 6]
    assert bundle.meta["skipped_screens"] == ["50105", "50109"]

    rows = [r for r in _csv_rows(folder) if r[0] not in ("50105", "50109")]
    order = list(range(len(rows)))
    random.Random(42).shuffle(order)
    assert bundle.train.sample_ids == [rows[i][0] for i in order[:19]]
    assert bundle.test.sample_ids == [rows[i][0] for i in order[24:]]
    topic_of = dict(rows)
    for index in range(len(bundle.val)):
        screen = bundle.val.sample_ids[index]
        item = bundle.val[index]
        assert bundle.class_names[int(item["target"])] == topic_of[screen]
        assert item["inputs"]["screenshot"].shape == (3, 32, 16)
        assert item["inputs"]["screenshot"].dtype == torch.float32


def test_default_size_is_portrait_256_by_128(tmp_path):
    bundle = read_enrico(write_enrico(tmp_path, n=6))
    assert bundle.modalities[0].shape == (3, 256, 128)
    assert bundle.test[0]["inputs"]["wireframe"].shape == (3, 256, 128)


def test_seed_changes_the_split(tmp_path):
    folder = write_enrico(tmp_path, n=30)
    first = read_enrico(folder, image_size=SMALL).train.sample_ids
    other = read_enrico(folder, image_size=SMALL, seed=7).train.sample_ids
    assert first != other and sorted(first) != sorted(other)


def test_augmentation_only_in_training_and_fresh_per_access(tmp_path):
    bundle = read_enrico(write_enrico(tmp_path, n=30), image_size=SMALL)
    plain = read_enrico(tmp_path / "enrico", image_size=SMALL, augment=False)
    assert bundle.train.augment and not bundle.val.augment and not bundle.test.augment

    torch.manual_seed(0)
    draws = [bundle.train[0]["inputs"]["screenshot"] for _ in range(4)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    assert not torch.equal(draws[0], plain.train[0]["inputs"]["screenshot"])

    for split in ("val", "test"):
        dataset = bundle.split(split)
        again = dataset[0]["inputs"]
        assert torch.equal(dataset[0]["inputs"]["screenshot"], again["screenshot"])
        assert torch.equal(again["wireframe"], plain.split(split)[0]["inputs"]["wireframe"])


def test_normalisation_and_per_item_decoding(tmp_path):
    folder = write_enrico(tmp_path, n=10)
    bundle = read_enrico(folder, image_size=SMALL, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    screen = bundle.test.sample_ids[0]
    white = np.full((24, 12, 3), 255, dtype=np.uint8)
    # Images are decoded on access, so a file changed after reading shows up.
    Image.fromarray(white).save(folder / "wireframes" / f"{screen}.png")
    assert torch.allclose(bundle.test[0]["inputs"]["wireframe"], torch.ones(3, *SMALL))


def test_missing_topics_file_and_folder(tmp_path):
    folder = write_enrico(tmp_path, n=6)
    (folder / "design_topics.csv").unlink()
    for image in (folder / "wireframes").iterdir():
        image.unlink()
    (folder / "wireframes").rmdir()
    with pytest.raises(DataError) as error:
        read_enrico(folder)
    message = str(error.value)
    assert "design_topics.csv: missing" in message and "screen_id, topic" in message
    assert "wireframes: folder missing" in message


def test_missing_column(tmp_path):
    folder = write_enrico(tmp_path, n=6)
    (folder / "design_topics.csv").write_text("screen_id,label\n10000,list\n")
    with pytest.raises(DataError, match=r"design_topics\.csv: column\(s\) topic missing"):
        read_enrico(folder)


def test_missing_images_are_listed(tmp_path):
    folder = write_enrico(tmp_path, n=6)
    (folder / "screenshots" / "10002.jpg").unlink()
    (folder / "wireframes" / "10004.png").unlink()
    with pytest.raises(DataError) as error:
        read_enrico(folder)
    message = str(error.value)
    assert "screenshots: 1 image(s) missing (10002.jpg)" in message
    assert "wireframes: 1 image(s) missing (10004.png)" in message


def test_corrupt_image_named_on_access(tmp_path):
    folder = write_enrico(tmp_path, n=6)
    bundle = read_enrico(folder, image_size=SMALL)
    screen = bundle.val.sample_ids[0]
    (folder / "screenshots" / f"{screen}.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match=rf"{screen}\.jpg: cannot be decoded"):
        bundle.val[0]
