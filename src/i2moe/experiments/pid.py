"""Exact partial information decomposition (PID) of discrete data, the ground truth of
interactions (``docs/faithfulness.md``).

For two sources X0, X1 and a target Y, the PID splits I(Y; X0, X1) into redundancy (what both
say), the unique information of each source, and synergy (what only both together say). We use
the BROJA measure (Bertschinger et al. 2014) computed exactly by ``dit`` (optional extra
``pid``: ``pip install "i2moe[pid]"``); it is the measure to trust for two sources.

With n > 2 modalities we decompose n two-source problems by grouping: source 0 is one modality
m, source 1 is all the other modalities as one joint variable. Each split names one of
``uni_m`` (m alone carries the target), ``uni_rest`` (the others carry it without m), ``red``
(m and the others both carry it) or ``syn`` (only m with the others carries it); the
dataset's interaction is then

* ``uni_m`` when split m says ``uni_m`` and every other split says ``uni_rest``;
* ``red`` when every split says ``red``;
* ``syn`` when every split says ``syn``;
* otherwise ``mixed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INSTALL_HINT = 'the exact PID needs the optional package dit: pip install "i2moe[pid]"'


def dit_available() -> bool:
    """Whether ``dit`` can be imported."""
    try:
        import dit  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class PIDAtoms:
    """The BROJA decomposition of I(Y; X0, X1), in bits."""

    redundancy: float
    unique_0: float
    unique_1: float
    synergy: float

    @property
    def total(self) -> float:
        """I(Y; X0, X1)."""
        return self.redundancy + self.unique_0 + self.unique_1 + self.synergy

    def dominant(self) -> str:
        """The largest atom: ``red``, ``uni_0``, ``uni_1`` or ``syn``."""
        atoms = {
            "red": self.redundancy,
            "uni_0": self.unique_0,
            "uni_1": self.unique_1,
            "syn": self.synergy,
        }
        return max(atoms, key=atoms.__getitem__)


def joint_pmf(source_0: np.ndarray, source_1: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Empirical joint distribution [|X0|, |X1|, |Y|] of three integer code arrays [N]."""
    codes = [np.unique(np.asarray(v), return_inverse=True)[1] for v in (source_0, source_1, target)]
    shape = tuple(int(c.max()) + 1 for c in codes)
    pmf = np.zeros(shape, dtype=np.float64)
    np.add.at(pmf, tuple(codes), 1.0)
    return pmf / pmf.sum()


def group_codes(columns: np.ndarray) -> np.ndarray:
    """One integer code per distinct row of [N, k] (k variables as one joint variable)."""
    columns = np.asarray(columns).reshape(len(columns), -1)
    return np.unique(columns, axis=0, return_inverse=True)[1].ravel()


def pid_broja(pmf: np.ndarray, attempts: int = 3) -> PIDAtoms:
    """BROJA PID of a joint distribution [|X0|, |X1|, |Y|] (``dit.pid.PID_BROJA``).

    dit's numerical optimiser is not deterministic and now and then stops far from the optimum
    (seen: synergy 0 on XOR). It minimises I_Q(Y; X0, X1), and synergy is I(Y; X0, X1) minus
    that minimum, so of several attempts the one with the largest synergy is the best optimum.

    Raises:
        ImportError: when ``dit`` is not installed.
    """
    try:
        import dit
        from dit.pid import PID_BROJA
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    pmf = np.asarray(pmf, dtype=np.float64)
    best = None
    for _ in range(attempts):
        result = PID_BROJA(dit.Distribution.from_ndarray(pmf / pmf.sum()), [[0], [1]], [2])

        def atom(*sources: tuple[int, ...], result=result) -> float:
            return max(0.0, float(result.get_pi(tuple(sources))))

        atoms = PIDAtoms(
            redundancy=atom((0,), (1,)),
            unique_0=atom((0,)),
            unique_1=atom((1,)),
            synergy=atom((0, 1)),
        )
        if best is None or atoms.synergy > best.synergy:
            best = atoms
    return best


def pid_samples(source_0: np.ndarray, source_1: np.ndarray, target: np.ndarray) -> PIDAtoms:
    """BROJA PID of the empirical distribution of samples (each source [N] or [N, k])."""
    return pid_broja(joint_pmf(group_codes(source_0), group_codes(source_1), target))


@dataclass(frozen=True)
class InteractionCheck:
    """The PID verdict on one data set: per split, then overall."""

    interaction: str  # uni_<m index>, red, syn or mixed
    splits: list[tuple[int, PIDAtoms, str]]  # (modality m, PID of m vs the rest, verdict)
    information: float  # I(Y; all sources) in bits


def _split_verdict(atoms: PIDAtoms, share: float) -> str:
    names = {"red": "red", "uni_0": "uni_m", "uni_1": "uni_rest", "syn": "syn"}
    top = atoms.dominant()
    value = {
        "red": atoms.redundancy,
        "uni_0": atoms.unique_0,
        "uni_1": atoms.unique_1,
        "syn": atoms.synergy,
    }[top]
    return names[top] if atoms.total > 0 and value >= share * atoms.total else "mixed"


def check_interaction(
    latent: np.ndarray, target: np.ndarray, *, share: float = 0.9
) -> InteractionCheck:
    """Name the interaction between discrete latent variables [N, n] and a target [N] by PID.

    For n = 2 this is one BROJA decomposition; for n > 2 one per modality m, with m against the
    other modalities grouped (module docstring). A split's verdict is its largest atom when it
    holds at least ``share`` of the information, else ``mixed``.
    """
    latent = np.asarray(latent)
    num_sources = latent.shape[1]
    splits = []
    for m in range(num_sources if num_sources > 2 else 1):
        rest = np.delete(latent, m, axis=1)
        atoms = pid_samples(latent[:, m], rest, target)
        splits.append((m, atoms, _split_verdict(atoms, share)))
    verdicts = [verdict for _, _, verdict in splits]
    information = splits[0][1].total
    if num_sources == 2:
        interaction = {"uni_m": "uni_0", "uni_rest": "uni_1"}.get(verdicts[0], verdicts[0])
    elif all(v == "red" for v in verdicts):
        interaction = "red"
    elif all(v == "syn" for v in verdicts):
        interaction = "syn"
    else:
        unique = [m for m, v in enumerate(verdicts) if v == "uni_m"]
        others_rest = all(v == "uni_rest" for m, v in enumerate(verdicts) if m not in unique)
        interaction = f"uni_{unique[0]}" if len(unique) == 1 and others_rest else "mixed"
    return InteractionCheck(interaction, splits, information)
