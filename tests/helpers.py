"""Small model factories, data and configurations shared by the tests."""

from pathlib import Path

import numpy as np
import torch

from i2moe.builders import i2moe_model

SHAPES_3 = {"a": (10,), "b": (5, 3), "c": (7,)}


def tiny_model(shapes=None, num_outputs=4, **config):
    config = {"dim": 8, "fusion_options": {"num_heads": 2, "dropout": 0.0}, **config}
    return i2moe_model(shapes or SHAPES_3, num_outputs, **config)


def expert_output_shapes(model) -> list[tuple[int, ...]]:
    """Records the output shape [E, N, C] of every call of ``model.experts``: N = B for an
    intact-only call, P * B for the training passes (``run_passes``)."""
    shapes = []
    stack = model.experts
    stack.register_forward_hook(lambda module, args, out: shapes.append(tuple(out.output.shape)))
    run_passes = stack.run_passes

    def recording(*args, **kwargs):
        result = run_passes(*args, **kwargs)
        shapes.append(tuple(result.output.shape))
        return result

    stack.run_passes = recording
    return shapes


def batch_for(shapes, size=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(size, *s, generator=generator) for k, s in shapes.items()}


def no_dropout(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def tiny_run_config(data, epochs: int = 1, batch_size: int = 16):
    """A RunConfig for a small, fast run on the data file ``data`` (D = 8, 2 heads)."""
    from i2moe.config import RunConfig

    config = RunConfig()
    config.data.name = str(data)
    config.model.dim = 8
    config.model.fusion_options = {"num_heads": 2}
    config.train.epochs = epochs
    config.train.batch_size = batch_size
    return config


def embeddings(
    tokens: list[int], batch: int = 3, seed: int = 0, dim: int = 8
) -> list[torch.Tensor]:
    """Random fusion inputs: one [batch, T_m, dim] tensor per modality."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, t, dim, generator=generator) for t in tokens]


def probe_loss(out, seed: int = 1) -> torch.Tensor:
    """A scalar that reaches every parameter of a backbone through ``Fused`` (latent, aux_loss).

    latent.sum() would carry (almost) no gradient: the final LayerNorm output sums to
    sum(beta) + sum(gamma * x_hat) and x_hat sums to 0 while gamma is still all ones; so the
    latent is weighted with a fixed random vector.
    """
    generator = torch.Generator().manual_seed(seed)
    probe = torch.randn(out.latent.shape[-1], generator=generator)
    return (out.latent * probe).sum() + out.aux_loss


def write_npz(path: Path, num_samples: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = np.arange(num_samples) % 2
    np.savez(
        path,
        a=rng.normal(size=(num_samples, 3)) + y[:, None],
        b=rng.normal(size=(num_samples, 2)),
        y=y,
    )
    return path


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def quick_bench_job(size, variant, **changes):
    """A one-repeat CPU benchmark job of a quick size (the worker's job format)."""
    job = {
        "size": size,
        "variant": variant,
        "quick": True,
        "device": "cpu",
        "repeats": 1,
        "warmup": 0,
        "perturb_k": None,
        "compile": False,
        "bf16": False,
        "threads": 1,
        "floor": False,
    }
    return {**job, **changes}
