"""ENRICO: mobile-app screens (screenshot + wireframe) labelled with one of 20 design topics.

Layout: ``design_topics.csv`` (columns ``screen_id``, ``topic``), ``screenshots/<id>.jpg`` and
``wireframes/<id>.png``. Images are decoded per item with pillow, resized to a portrait
256 x 128 (height x width, the screens' aspect) and normalised; training items are augmented
afresh on every access.
"""

from __future__ import annotations

import csv
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from i2moe.data.base import DataBundle, DataError, ModalitySpec
from i2moe.data.paper.folder_checks import Problems, first_items, import_optional, require_root

logger = logging.getLogger(__name__)

TOPICS_FILE = "design_topics.csv"
SCREENSHOT_DIR, WIREFRAME_DIR = "screenshots", "wireframes"
# The published wireframes of these two screens are corrupt; the authors skip them too.
SKIPPED_SCREENS = frozenset({"50105", "50109"})
NUM_TOPICS = 20
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EnricoDataset(Dataset):
    """One ENRICO split: screens decoded from disk on every access.

    Args:
        root: the dataset folder.
        screen_ids: screen ids of this split.
        targets: topic class ids, aligned with ``screen_ids``.
        image_size: (height, width) after resizing.
        mean: per-channel normalisation mean (RGB, values in [0, 1]).
        std: per-channel normalisation std.
        augment: apply random augmentation (training split only).
    """

    def __init__(
        self,
        root: str | Path,
        screen_ids: Sequence[str],
        targets: Sequence[int],
        *,
        image_size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool,
    ) -> None:
        self.root = Path(root)
        self.sample_ids = list(screen_ids)
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.int64))
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        screen = self.sample_ids[index]
        screenshot = self._decode(self.root / SCREENSHOT_DIR / f"{screen}.jpg")
        wireframe = self._decode(self.root / WIREFRAME_DIR / f"{screen}.png")
        if self.augment:
            screenshot, wireframe = augment_pair(screenshot, wireframe)
        return {
            "inputs": {
                "screenshot": (screenshot - self.mean) / self.std,
                "wireframe": (wireframe - self.mean) / self.std,
            },
            "target": self.targets[index],
            "observed": torch.ones(2, dtype=torch.bool),
            "index": index,
        }

    def _decode(self, path: Path) -> Tensor:
        """Decode, convert to RGB and resize one image to a [3, H, W] float tensor in [0, 1]."""
        image_module = import_optional("PIL.Image", "decoding ENRICO's images")
        height, width = self.image_size
        try:
            with image_module.open(path) as image:
                rgb = image.convert("RGB").resize((width, height), image_module.BILINEAR)
                pixels = np.asarray(rgb, dtype=np.uint8).copy()
        except (OSError, ValueError) as error:
            raise DataError(
                f"{path}: cannot be decoded as an image ({error}); expected a readable "
                f"{path.suffix[1:].upper()} file"
            ) from error
        return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255.0)


def augment_pair(screenshot: Tensor, wireframe: Tensor) -> tuple[Tensor, Tensor]:
    """Random augmentation of one screen, drawn from torch's RNG on every call.

    Both views get the same small random shift (pad by ~1/16 of each side with edge pixels,
    crop back), since they show the same layout; the screenshot also gets brightness and
    contrast jitter of up to 20%. Wireframe colours encode element types, so they stay as is.
    """
    _, height, width = screenshot.shape
    pad_h, pad_w = max(1, height // 16), max(1, width // 16)
    top = int(torch.randint(0, 2 * pad_h + 1, ()))
    left = int(torch.randint(0, 2 * pad_w + 1, ()))

    def shift(image: Tensor) -> Tensor:
        padded = F.pad(image[None], (pad_w, pad_w, pad_h, pad_h), mode="replicate")[0]
        return padded[:, top : top + height, left : left + width]

    brightness = 1.0 + (float(torch.rand(())) * 2.0 - 1.0) * 0.2
    contrast = 1.0 + (float(torch.rand(())) * 2.0 - 1.0) * 0.2
    shot = shift(screenshot)
    grey_mean = shot.mean()
    shot = (((shot - grey_mean) * contrast + grey_mean) * brightness).clamp(0.0, 1.0)
    return shot, shift(wireframe)


def read_enrico(
    root: str | Path,
    *,
    image_size: tuple[int, int] = (256, 128),
    seed: int = 42,
    augment: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> DataBundle:
    """Read ENRICO's screens and topics.

    Screens 50105 and 50109 are skipped (corrupt wireframes); the remaining rows of
    ``design_topics.csv`` are shuffled with ``random.Random(seed)`` and split 65 / 15 / 20
    (the authors' split for ``seed=42``). Topics are numbered in sorted order.

    Args:
        root: the dataset folder.
        image_size: (height, width) after resizing; screens are portrait, hence 256 x 128.
        seed: seed of the split shuffle.
        augment: augment training items (random shift, colour jitter); validation and test
            items are never augmented.
        mean: normalisation mean per RGB channel (ImageNet's by default, for VGG weights).
        std: normalisation std per RGB channel.

    Returns:
        A bundle with one class per topic (20 in the published data) and image modalities
        ``screenshot`` and ``wireframe`` [3, H, W].

    Raises:
        DataError: a file, a column or an image is missing.
        ImportError: pillow is not installed.
    """
    root = require_root("ENRICO", root)
    import_optional("PIL.Image", "decoding ENRICO's images")
    problems = Problems("ENRICO", root)
    problems.require_files({TOPICS_FILE: "a CSV with columns screen_id, topic"})
    for folder, suffix in ((SCREENSHOT_DIR, "jpg"), (WIREFRAME_DIR, "png")):
        if not (root / folder).is_dir():
            problems.add(folder, f"folder missing; expected {folder}/<screen_id>.{suffix}")
    problems.raise_if_any()

    rows, skipped = _read_topics(root, problems)
    screens = [screen for screen, _ in rows]
    _check_images(root, screens, problems)
    problems.raise_if_any()

    topics = sorted({topic for _, topic in rows})
    if len(topics) != NUM_TOPICS:
        logger.warning(
            "ENRICO: %d topics found, the published data has %d", len(topics), NUM_TOPICS
        )
    topic_index = {topic: i for i, topic in enumerate(topics)}

    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n = len(rows)
    # Same arithmetic as the authors' loader, so seed 42 gives their split.
    train_end, val_end = int(n * 0.65), int(n * (0.65 + 0.15))
    positions = {
        "train": order[:train_end],
        "val": order[train_end:val_end],
        "test": order[val_end:],
    }
    splits = {}
    for split, chosen in positions.items():
        splits[split] = EnricoDataset(
            root,
            [rows[i][0] for i in chosen],
            [topic_index[rows[i][1]] for i in chosen],
            image_size=image_size,
            mean=mean,
            std=std,
            augment=augment and split == "train",
        )
    height, width = image_size
    return DataBundle(
        name="enrico",
        task="classification",
        modalities=[
            ModalitySpec("screenshot", (3, height, width), "image"),
            ModalitySpec("wireframe", (3, height, width), "image"),
        ],
        num_outputs=len(topics),
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        class_names=topics,
        meta={
            "source": str(root),
            "skipped_screens": skipped,
            "split": f"random.Random({seed}).shuffle of CSV rows, 65 / 15 / 20",
            "sizes": {s: len(d) for s, d in splits.items()},
            "image_size_hw": [height, width],
            "augmentation": "train only, per access" if augment else "none",
            "normalisation": {"mean": list(mean), "std": list(std)},
        },
    )


def _read_topics(root: Path, problems: Problems) -> tuple[list[tuple[str, str]], list[str]]:
    """Rows (screen_id, topic) of the topics CSV without the skipped screens, and those."""
    try:
        with (root / TOPICS_FILE).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            missing = [c for c in ("screen_id", "topic") if c not in fields]
            if missing:
                problems.add(
                    TOPICS_FILE,
                    f"column(s) {', '.join(missing)} missing (found {', '.join(fields) or 'none'})"
                    "; expected columns screen_id, topic",
                )
                problems.raise_if_any()
            rows = [(str(r["screen_id"]).strip(), str(r["topic"]).strip()) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        problems.add(TOPICS_FILE, f"cannot be read as CSV ({error})")
        problems.raise_if_any()
    empty = [i + 2 for i, (screen, topic) in enumerate(rows) if not screen or not topic]
    if empty:
        problems.add(
            TOPICS_FILE, f"empty screen_id or topic on line(s) {first_items(empty)}; expected both"
        )
    kept = [row for row in rows if row[0] not in SKIPPED_SCREENS]
    if len(kept) < 3:
        problems.add(TOPICS_FILE, f"has {len(kept)} usable rows; expected at least 3")
    problems.raise_if_any()
    return kept, sorted(row[0] for row in rows if row[0] in SKIPPED_SCREENS)


def _check_images(root: Path, screens: list[str], problems: Problems) -> None:
    for folder, suffix in ((SCREENSHOT_DIR, "jpg"), (WIREFRAME_DIR, "png")):
        present = {p.name for p in (root / folder).iterdir()}
        missing = [f"{s}.{suffix}" for s in screens if f"{s}.{suffix}" not in present]
        if missing:
            problems.add(
                folder,
                f"{len(missing)} image(s) missing ({first_items(missing)}); expected "
                f"{folder}/<screen_id>.{suffix} for every screen in {TOPICS_FILE}",
            )
