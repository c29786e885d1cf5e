"""Mulan birds: which of 19 bird species are heard in 645 ten-second audio clips."""

from __future__ import annotations

import numpy as np

from i2moe.data.base import DataBundle
from i2moe.data.bundled.shipped import check_fractions, check_seed, open_data, rows_bundle
from i2moe.data.registry import register_dataset
from i2moe.data.scaling import training_standardised
from i2moe.data.splits import multilabel_holdout

BIRDS_CITATION = (
    "F. Briggs et al. The 9th annual MLSP competition: New methods for acoustic classification "
    "of multiple simultaneous bird species in a noisy environment. IEEE International Workshop "
    "on Machine Learning for Signal Processing (MLSP), 2013. Multilabel version from the Mulan "
    "library, http://mulan.sourceforge.net/datasets-mlc.html"
)
BIRDS_LICENCE = "unspecified by the authors (research benchmark; cite Briggs et al. 2013)"


@register_dataset(
    "birds",
    description="Mulan birds: 19 bird species in audio clips; clip audio + segment views",
    citation=BIRDS_CITATION,
    licence=BIRDS_LICENCE,
    task="multilabel",
    num_samples=645,
    modalities=("audio (153,)", "segments (105,)"),
)
def load_birds(
    seed: int = 0, val_fraction: float = 0.15, mask_empty_segments: bool = True
) -> DataBundle:
    """Mulan birds: 645 ten-second recordings, which of 19 bird species are heard (multilabel).

    Modalities:

    * ``audio`` (153): the ``audio-ssd*`` statistical spectrum descriptors of the whole clip.
    * ``segments`` (105): the 98 ``cluster*`` columns (normalised histogram of the clip's
      detected syllable segments over a codebook of segment clusters) followed by 7 segment
      statistics: ``segments`` (count), mean/std of the segments' rectangle width, height and
      volume. The recording ``location`` and the ``hasSegments`` flag are not features.

    337 clips have no detected segment; their segment view is all zeros in the source. With
    ``mask_empty_segments`` (default) that view is marked unobserved (``observed`` False,
    inputs 0) and its standardisation statistics come from the training clips that have
    segments; otherwise the zeros are kept as values.

    The official Mulan train/test split (322/323) is kept; a seeded, label-stratified
    ``val_fraction`` of the training clips becomes the validation split (iterative
    stratification, Sechidis et al. 2011). Views are standardised with training statistics.

    Args:
        seed: seed of the validation split.
        val_fraction: fraction of the official training clips used for validation.
        mask_empty_segments: mark the segment view of clips without segments as missing.

    Returns:
        A 19-label multilabel bundle with two vector modalities.
    """
    check_seed("birds", seed)
    check_fractions("birds", val_fraction, 0.0)
    with open_data("birds.npz") as handle, np.load(handle) as archive:
        data = {key: archive[key] for key in archive.files}
    labels = data["labels"].astype(np.float32)
    official_train = np.flatnonzero(~data["is_test"])
    held_out = multilabel_holdout(labels[official_train] > 0, val_fraction, seed)
    splits = (official_train[~held_out], official_train[held_out], np.flatnonzero(data["is_test"]))
    has_segments = data["has_segments"]
    audio = training_standardised(data["audio"], splits[0])
    if mask_empty_segments:
        segments = training_standardised(data["segments"], splits[0], observed=has_segments)
        segments[~has_segments] = 0.0
        observed = np.stack([np.ones_like(has_segments), has_segments], axis=1)
    else:
        segments = training_standardised(data["segments"], splits[0])
        observed = None
    return rows_bundle(
        "birds",
        {"audio": audio, "segments": segments},
        labels,
        splits,
        class_names=[str(s) for s in data["species"]],
        observed=observed,
        description="Mulan birds (MLSP 2013 bird song), clip audio + segment views",
        meta={
            "source": "http://mulan.sourceforge.net/datasets-mlc.html",
            "split": "official Mulan train/test; seeded label-stratified validation from train",
            "preprocessing": "views standardised with training statistics"
            + ("; segment view masked where a clip has no segments" if mask_empty_segments else ""),
            "feature_names": {
                "audio": [str(f) for f in data["audio_features"]],
                "segments": [str(f) for f in data["segment_features"]],
            },
            "seed": seed,
        },
    )
