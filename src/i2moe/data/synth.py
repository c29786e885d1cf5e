"""Generated multimodal data with a known interaction between the modalities and the label.

Every sample has one latent symbol per modality (``latent_bits`` [N, n], a bit for binary
labels, otherwise a symbol in 0..K-1). Modality ``m`` encodes its symbol clearly: the symbol's
prototype (K points at pairwise distance 2, in a random subspace of the modality's ``dim``
dimensions) plus Gaussian noise of standard deviation ``noise`` per coordinate. How the label
depends on the symbols is the interaction:

* ``uniqueness``: ``y`` is the symbol of modality ``unique_modality``; the other modalities
  carry independent symbols, so they hold no information about the label.
* ``redundancy``: every modality carries ``y`` itself, so any one modality suffices.
* ``synergy``: the symbols are independent and uniform and ``y`` is their sum modulo K (the
  parity for K = 2), so every modality alone, and every proper subset, is at chance while all
  together determine the label.
* ``mixed``: each sample is drawn from one of the mechanisms above with given proportions.

The per-sample mechanism is recorded in ``interaction`` as an index into
``interaction_names`` = ``[uni_mod0, ..., uni_mod{n-1}, syn, red]``, the order of I2MoE's
experts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from i2moe.data.base import DataError
from i2moe.data.files import write_atomically
from i2moe.data.splits import stratified_split

INTERACTIONS: tuple[str, ...] = ("uniqueness", "redundancy", "synergy", "mixed")
MIN_MODALITIES, MAX_MODALITIES = 2, 8
MIN_SAMPLES = 20
DEFAULT_NOISE = 0.5
SYNERGY, REDUNDANCY = "syn", "red"
# Mechanism names accepted as keys of ``proportions`` besides the per-sample record names.
_MECHANISM_ALIASES = {"synergy": SYNERGY, "redundancy": REDUNDANCY}


def modality_name(index: int) -> str:
    """Name of the generated modality ``index`` (``mod0``, ``mod1``, ...)."""
    return f"mod{index}"


def interaction_names(num_modalities: int) -> list[str]:
    """Per-sample record names: one uniqueness name per modality, then synergy, redundancy."""
    return [f"uni_{modality_name(m)}" for m in range(num_modalities)] + [SYNERGY, REDUNDANCY]


def _check_options(
    interaction: str,
    num_modalities: int,
    num_samples: int,
    dim: int,
    num_tokens: int | None,
    noise: float,
    unique_modality: int,
    num_classes: int,
    proportions: Mapping[str, float] | None,
) -> None:
    def fail(option: str, value: object, expected: str) -> DataError:
        return DataError(f"synthetic data: option '{option}': {value!r}; expected {expected}")

    if interaction not in INTERACTIONS:
        raise fail("interaction", interaction, f"one of {', '.join(INTERACTIONS)}")
    if not MIN_MODALITIES <= num_modalities <= MAX_MODALITIES:
        raise fail(
            "num_modalities", num_modalities, f"{MIN_MODALITIES} to {MAX_MODALITIES} modalities"
        )
    if num_classes < 2:
        raise fail("num_classes", num_classes, "at least 2 classes")
    if num_samples < max(MIN_SAMPLES, 10 * num_classes):
        raise fail(
            "num_samples", num_samples, f"at least {max(MIN_SAMPLES, 10 * num_classes)} samples"
        )
    needed_dim = 1 if num_classes == 2 else num_classes
    if dim < needed_dim:
        raise fail("dim", dim, f"at least {needed_dim} (one dimension per class beyond 2)")
    if num_tokens is not None and num_tokens < 1:
        raise fail("num_tokens", num_tokens, "None (vectors) or a positive number of tokens")
    if not (np.isfinite(noise) and noise >= 0):
        raise fail("noise", noise, "a finite standard deviation >= 0")
    if not 0 <= unique_modality < num_modalities:
        raise fail("unique_modality", unique_modality, f"a modality index 0..{num_modalities - 1}")
    if proportions is not None and interaction != "mixed":
        raise fail("proportions", dict(proportions), "no proportions unless interaction 'mixed'")


def _mechanism_weights(
    names: list[str], unique_modality: int, proportions: Mapping[str, float] | None
) -> np.ndarray:
    """Probabilities over ``names`` for interaction 'mixed' (default: a third each)."""
    if proportions is None:
        proportions = {"uniqueness": 1.0, "synergy": 1.0, "redundancy": 1.0}
    weights = np.zeros(len(names), dtype=np.float64)
    for key, value in proportions.items():
        record = {**_MECHANISM_ALIASES, "uniqueness": names[unique_modality]}.get(key, key)
        if record not in names:
            raise DataError(
                f"synthetic data: option 'proportions': unknown mechanism '{key}'; expected "
                f"uniqueness, synergy, redundancy or one of {', '.join(names)}"
            )
        if not (np.isfinite(value) and value >= 0):
            raise DataError(
                f"synthetic data: option 'proportions': '{key}' is {value!r}; expected a "
                "non-negative number"
            )
        weights[names.index(record)] += value
    if weights.sum() <= 0:
        raise DataError(
            "synthetic data: option 'proportions': all zero; expected at least one positive share"
        )
    return weights / weights.sum()


def _prototypes(
    rng: np.random.Generator, num_modalities: int, num_classes: int, dim: int
) -> np.ndarray:
    """[n, K, D] symbol prototypes per modality, pairwise distance 2 within a modality."""
    prototypes = np.empty((num_modalities, num_classes, dim), dtype=np.float64)
    for m in range(num_modalities):
        if num_classes == 2:
            direction = rng.standard_normal(dim)
            direction /= np.linalg.norm(direction)
            prototypes[m] = np.stack([-direction, direction])
        else:
            # Orthonormal directions scaled by sqrt(2) are pairwise 2 apart, like +/- a unit.
            basis, _ = np.linalg.qr(rng.standard_normal((dim, num_classes)))
            prototypes[m] = np.sqrt(2.0) * basis.T
    return prototypes


def generate(
    interaction: str,
    *,
    num_modalities: int = 2,
    num_samples: int = 3000,
    dim: int = 16,
    num_tokens: int | None = None,
    noise: float = DEFAULT_NOISE,
    seed: int = 0,
    unique_modality: int = 0,
    num_classes: int = 2,
    proportions: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Generate a classification data set whose label depends on the modalities in a known way.

    Args:
        interaction: ``uniqueness``, ``redundancy``, ``synergy`` or ``mixed`` (see the module
            docstring for the definitions).
        num_modalities: Number of modalities, 2 to 8.
        num_samples: Number of samples (at least 20 and 10 per class).
        dim: Features per modality (per token for sequences).
        num_tokens: None (or 1) for [N, dim] vectors; T > 1 for [N, T, dim] sequences whose
            tokens each carry a random positive share of the signal (the token mean carries
            all of it) plus their own noise.
        noise: Standard deviation of the Gaussian noise per coordinate; symbol prototypes are 2
            apart, so about 0.5 keeps each symbol clearly readable.
        seed: Seed; the output depends only on the arguments.
        unique_modality: The modality that carries the label for ``uniqueness`` (and for the
            uniqueness share of ``mixed``).
        num_classes: Number of classes K (the latent symbols take K values).
        proportions: For ``mixed`` only: mechanism -> share, keys ``uniqueness``,
            ``synergy``, ``redundancy`` or record names such as ``uni_mod1``; default a third
            each of uniqueness (of ``unique_modality``), synergy and redundancy.

    Returns:
        Arrays ready for ``numpy.savez`` and :func:`i2moe.data.npz.read_npz`: ``mod0`` ..
        ``mod{n-1}`` (float32), ``y`` (int64 class ids), ``split`` (int8, stratified 70/15/15
        on label and mechanism), ``interaction`` (int64 index into ``interaction_names`` per
        sample), ``interaction_names`` (text) and ``latent_bits`` (int64 [N, n] symbols).

    Raises:
        DataError: for an option out of range, naming the option and the accepted values.
    """
    _check_options(
        interaction,
        num_modalities,
        num_samples,
        dim,
        num_tokens,
        noise,
        unique_modality,
        num_classes,
        proportions,
    )
    rng = np.random.default_rng(seed)
    names = interaction_names(num_modalities)
    uniqueness_code = unique_modality
    synergy_code, redundancy_code = names.index(SYNERGY), names.index(REDUNDANCY)

    if interaction == "mixed":
        weights = _mechanism_weights(names, unique_modality, proportions)
        mechanism = rng.choice(len(names), size=num_samples, p=weights)
    else:
        code = {
            "uniqueness": uniqueness_code,
            "synergy": synergy_code,
            "redundancy": redundancy_code,
        }[interaction]
        mechanism = np.full(num_samples, code, dtype=np.int64)

    # Start from independent uniform symbols, then tie the label to them per mechanism.
    latent = rng.integers(0, num_classes, size=(num_samples, num_modalities))
    labels = np.empty(num_samples, dtype=np.int64)
    for m in range(num_modalities):
        rows = mechanism == m
        labels[rows] = latent[rows, m]
    rows = mechanism == synergy_code
    labels[rows] = latent[rows].sum(axis=1) % num_classes
    rows = mechanism == redundancy_code
    labels[rows] = rng.integers(0, num_classes, size=int(rows.sum()))
    latent[rows] = labels[rows, None]

    prototypes = _prototypes(rng, num_modalities, num_classes, dim)
    arrays: dict[str, np.ndarray] = {}
    for m in range(num_modalities):
        signal = prototypes[m, latent[:, m]]
        if num_tokens is None or num_tokens == 1:
            values = signal + noise * rng.standard_normal((num_samples, dim))
        else:
            shares = num_tokens * rng.dirichlet(np.ones(num_tokens), size=num_samples)
            values = shares[:, :, None] * signal[:, None, :]
            values += noise * rng.standard_normal((num_samples, num_tokens, dim))
        arrays[modality_name(m)] = values.astype(np.float32)

    # Stratifying on label and mechanism keeps every mechanism's share equal across splits.
    arrays["y"] = labels
    arrays["split"] = stratified_split(labels * len(names) + mechanism, seed=seed)
    arrays["interaction"] = mechanism.astype(np.int64)
    arrays["interaction_names"] = np.array(names)
    arrays["latent_bits"] = latent.astype(np.int64)
    return arrays


def write_synth(path: str | Path, interaction: str, **options: Any) -> Path:
    """Generate data (``generate(interaction, **options)``) and write it to ``path`` as an
    ``.npz`` atomically.

    A reader never sees a half-written file (:func:`i2moe.data.files.write_atomically`);
    missing parent folders are created.

    Args:
        path: The ``.npz`` file to write.
        interaction: ``uniqueness``, ``redundancy``, ``synergy`` or ``mixed``.
        **options: The keyword options of :func:`generate` (``num_modalities``,
            ``num_samples``, ``dim``, ``num_tokens``, ``noise``, ``seed``,
            ``unique_modality``, ``num_classes``, ``proportions``).

    Returns:
        The path written (exactly ``path``; no suffix is added).

    Raises:
        DataError: for an option out of range or a path that cannot be written.
    """
    arrays = generate(interaction, **options)
    target = Path(path)
    try:
        write_atomically(target, lambda stream: np.savez(stream, **arrays))
    except OSError as error:
        raise DataError(
            f"{target}: cannot be written ({error.strerror or error}); expected a writable path "
            "for the .npz file"
        ) from error
    return target
