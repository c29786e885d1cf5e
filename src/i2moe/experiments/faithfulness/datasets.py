"""The suite's data sets: their cases, sizes and arrays, and the check of their ground truth.

Every data set comes from :func:`i2moe.data.synth.generate`, in its layout (``mod<m>``, ``y``,
``split``, ``interaction``, ``interaction_names``, ``latent_bits``), except two constructions
the generator does not have: circular synergy (:func:`circular_synergy`) and the mechanism cue
of the mixtures (:func:`with_mechanism_cue`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from i2moe.data.base import DataBundle

KINDS: tuple[str, ...] = (
    "uniqueness_first",
    "uniqueness_last",
    "redundancy",
    "synergy_parity",
    "synergy_circular",
    "mixed",
)
EMBEDDINGS: tuple[str, ...] = ("vector", "tokens")
MIXTURE = {"uniqueness": 0.25, "synergy": 0.5, "redundancy": 0.25}
NUM_TOKENS = 4
CUE_SCALE = 2.0
CUE_NOISE = 0.3
CIRCULAR_BINS = 4
# Samples per data set and epochs by number of modalities (defaults of the suite): parity and
# circular synergy of 3-4 modalities need more data and epochs than of 2 (docs/faithfulness.md).
SUITE_SIZES: dict[int, tuple[int, int]] = {2: (2000, 15), 3: (3000, 20), 4: (3000, 30)}


@dataclass(frozen=True)
class Case:
    """One data set of the suite."""

    kind: str
    num_modalities: int
    embedding: str

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.num_modalities}m-{self.embedding}"


def suite(
    modalities: tuple[int, ...] = (2, 3, 4),
    embeddings: tuple[str, ...] = EMBEDDINGS,
    kinds: tuple[str, ...] = KINDS,
) -> list[Case]:
    """Every combination of interaction kind, number of modalities and embedding kind."""
    return [Case(k, n, e) for n in modalities for e in embeddings for k in kinds]


def suite_size(num_modalities: int) -> tuple[int, int]:
    """(samples, epochs) of the suite's data sets with this many modalities."""
    return SUITE_SIZES.get(num_modalities, SUITE_SIZES[max(SUITE_SIZES)])


def circular_synergy(
    num_modalities: int, num_samples: int, dim: int, num_tokens: int | None, seed: int
) -> dict[str, np.ndarray]:
    """Non-linear synergy: angles theta_m uniform on the circle, y = 1 when theta_0 lies within a
    quarter turn of the sum of the others (mod 2 pi). Any proper subset of the angles is
    independent of y; the decision boundary is curved, not a parity of bits.

    Modality m is its angle's point on a circle of radius 2 in a random plane of its ``dim``
    dimensions (on every token alike) plus noise of standard deviation 0.1; ``latent_bits``
    are the angles in :data:`CIRCULAR_BINS` bins.
    """
    import numpy as np

    from i2moe.data.splits import stratified_split
    from i2moe.data.synth import SYNERGY, interaction_names, modality_name

    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, size=(num_samples, num_modalities))
    difference = np.angle(np.exp(1j * (angles[:, 0] - angles[:, 1:].sum(1))))
    labels = (np.abs(difference) < np.pi / 2).astype(np.int64)
    arrays: dict[str, np.ndarray] = {}
    for m in range(num_modalities):
        basis, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
        circle = np.stack([np.cos(angles[:, m]), np.sin(angles[:, m])], 1) @ basis.T * 2.0
        shape = (num_samples, dim) if not num_tokens else (num_samples, num_tokens, dim)
        values = (circle if not num_tokens else circle[:, None, :]) + 0.1 * rng.standard_normal(
            shape
        )
        arrays[modality_name(m)] = values.astype(np.float32)
    names = interaction_names(num_modalities)
    arrays["y"] = labels
    arrays["split"] = stratified_split(labels, seed=seed)
    arrays["interaction"] = np.full(num_samples, names.index(SYNERGY), dtype=np.int64)
    arrays["interaction_names"] = np.array(names)
    bins = np.floor(angles / (2 * np.pi / CIRCULAR_BINS)).astype(np.int64)
    arrays["latent_bits"] = np.clip(bins, 0, CIRCULAR_BINS - 1)
    return arrays


def with_mechanism_cue(arrays: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Append each sample's mechanism to every modality: a one-hot over ``interaction_names``
    times :data:`CUE_SCALE`, with noise of standard deviation :data:`CUE_NOISE` (drawn from
    ``seed + 1``), on every token of a sequence.

    Without it a mixture sample's mechanism cannot be told from its inputs even knowing the
    label (for two modalities at most 2/3 of the samples can be attributed right, whatever the
    method).
    """
    import numpy as np

    from i2moe.data.synth import modality_name

    rng = np.random.default_rng(seed + 1)
    num_modalities = arrays["latent_bits"].shape[1]
    cue = CUE_SCALE * np.eye(len(arrays["interaction_names"]))[arrays["interaction"]]  # [N, E]
    for m in range(num_modalities):
        values = arrays[modality_name(m)]
        noisy = cue + CUE_NOISE * rng.standard_normal(cue.shape)
        if values.ndim == 3:
            noisy = np.repeat(noisy[:, None, :], values.shape[1], axis=1)  # [N, T, E]
        arrays[modality_name(m)] = np.concatenate([values, noisy.astype(np.float32)], axis=-1)
    return arrays


def make_data(case: Case, *, num_samples: int = 2000, dim: int = 16, seed: int = 0) -> dict:
    """Arrays of one suite data set (the layout of :func:`i2moe.data.synth.generate`).

    Mixtures (a quarter uniqueness of modality 0, half synergy, a quarter redundancy) carry the
    mechanism as a cue (:func:`with_mechanism_cue`).
    """
    from i2moe.data.synth import generate

    tokens = NUM_TOKENS if case.embedding == "tokens" else None
    n = case.num_modalities
    if case.kind == "synergy_circular":
        return circular_synergy(n, num_samples, dim, tokens, seed)
    interaction, unique = {
        "uniqueness_first": ("uniqueness", 0),
        "uniqueness_last": ("uniqueness", n - 1),
        "redundancy": ("redundancy", 0),
        "synergy_parity": ("synergy", 0),
        "mixed": ("mixed", 0),
    }[case.kind]
    arrays = generate(
        interaction,
        num_modalities=n,
        num_samples=num_samples,
        dim=dim,
        num_tokens=tokens,
        seed=seed,
        unique_modality=unique,
        proportions=MIXTURE if interaction == "mixed" else None,
    )
    return with_mechanism_cue(arrays, seed) if interaction == "mixed" else arrays


def suite_bundle(arrays: dict, name: str = "faithfulness") -> DataBundle:
    """The generated arrays as a classification bundle, split by their ``split`` codes and
    not standardised (the generator's scale is part of the data set)."""
    from i2moe.data.base import ArrayDataset, DataBundle, ModalitySpec
    from i2moe.data.synth import modality_name
    from i2moe.spec import SPLITS

    names = [modality_name(m) for m in range(arrays["latent_bits"].shape[1])]
    splits = {}
    for code, split in enumerate(SPLITS):
        rows = arrays["split"] == code
        splits[split] = ArrayDataset(
            {k: arrays[k][rows] for k in names}, arrays["y"][rows], "classification"
        )
    return DataBundle(
        name=name,
        task="classification",
        modalities=[ModalitySpec.from_shape(k, arrays[k].shape[1:]) for k in names],
        num_outputs=int(arrays["y"].max()) + 1,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
    )


def true_interaction(arrays: dict) -> str:
    """The data set's interaction as generated: its most frequent mechanism."""
    import numpy as np

    names = [str(v) for v in arrays["interaction_names"]]
    return names[int(np.bincount(arrays["interaction"], minlength=len(names)).argmax())]


def check_ground_truth(arrays: dict) -> dict[str, Any]:
    """Verify the generated interaction by exact PID (BROJA) of ``latent_bits`` -> ``y``.

    A pure data set is decomposed once (n = 2) or by grouping (n > 2,
    :mod:`i2moe.experiments.pid`); a mixture is decomposed per mechanism, on that mechanism's
    samples. Returns the PID verdict (``uni_mod<m>``, ``syn``, ``red``, ``mixed``; for a
    mixture, the verdict of its most frequent mechanism), whether every decomposition matches
    the generator, and I(Y; latents).
    """
    import numpy as np

    from i2moe.data.synth import modality_name
    from i2moe.experiments.pid import check_interaction

    names = [str(v) for v in arrays["interaction_names"]]
    codes = arrays["interaction"]
    verdicts, information, matches = {}, {}, True
    for code in np.unique(codes):
        rows = codes == code
        check = check_interaction(arrays["latent_bits"][rows], arrays["y"][rows])
        verdict = check.interaction
        if verdict.startswith("uni_"):  # uni_<modality index>
            verdict = f"uni_{modality_name(int(verdict[4:]))}"
        verdicts[names[code]] = verdict
        information[names[code]] = check.information
        matches &= verdict == names[code]
    truth = true_interaction(arrays)
    return {"pid": verdicts[truth], "pid_matches": bool(matches), "bits": information[truth]}
