"""The paper's modality encoders that are not general-purpose.

* :class:`Conv3dEncoder`: a small 3-D CNN for ADNI's grey-matter volumes [B, 1, D, H, W].
* :class:`VGG11Encoder`: a VGG11 (with batch norm) convolution stack written out here, with an
  optional frozen feature part and weights loaded from a local file, for ENRICO's screens.
* :class:`MaxOutMLP`: a MaxOut MLP for MM-IMDb's text and image features.

Every encoder maps one modality's batch to [B, D]. The MLP, GRU and LSTM encoders used for
MOSI, ADNI's tables and MIMIC come from :mod:`i2moe.encoders`. :data:`PAPER_ENCODERS` holds
builders with the registry's ``builder(spec, dim, **options)`` signature.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from i2moe.spec import DataError, ModalitySpec

logger = logging.getLogger(__name__)

# VGG11's convolution widths, "M" marking a 2x2 max-pool (configuration "A" of Simonyan &
# Zisserman, 2015).
VGG11_LAYOUT: tuple[int | str, ...] = (
    64,
    "M",
    128,
    "M",
    256,
    256,
    "M",
    512,
    512,
    "M",
    512,
    512,
    "M",
)


class Conv3dEncoder(nn.Module):
    """A small 3-D CNN: [B, C, D, H, W] -> [B, dim].

    Each stage is two 3x3x3 convolutions with ReLU; every stage but the last ends in a max-pool
    (``pool_sizes``) and 3-D dropout; the last is max-pooled adaptively to ``pooled_size`` so
    any volume size works (91 x 109 x 91 for ADNI, a few voxels in tests), then flattened and
    projected to ``dim``.

    Args:
        in_channels: C.
        dim: output width.
        channels: widths of the stages.
        pool_sizes: max-pool kernel (= stride) after each stage but the last.
        pooled_size: spatial size the last stage is pooled to.
        dropout: 3-D (channel) dropout after each pooling.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        dim: int = 128,
        channels: Sequence[int] = (32, 64, 128),
        pool_sizes: Sequence[int] = (2, 3),
        pooled_size: tuple[int, int, int] = (3, 3, 3),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(pool_sizes) != len(channels) - 1:
            raise ValueError(
                f"pool_sizes has {len(pool_sizes)} entries; expected one per stage but the "
                f"last ({len(channels) - 1})"
            )
        layers: list[nn.Module] = []
        width = in_channels
        for stage, out in enumerate(channels):
            layers += [
                nn.Conv3d(width, out, 3, padding=1),
                nn.ReLU(),
                nn.Conv3d(out, out, 3, padding=1),
                nn.ReLU(),
            ]
            if stage < len(pool_sizes):
                # ceil_mode keeps small volumes from shrinking to nothing.
                layers += [nn.MaxPool3d(pool_sizes[stage], ceil_mode=True), nn.Dropout3d(dropout)]
            width = out
        layers += [nn.AdaptiveMaxPool3d(pooled_size), nn.Dropout3d(dropout)]
        self.features = nn.Sequential(*layers)
        self.projection = nn.Linear(width * math.prod(pooled_size), dim)

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, D, H, W] -> [B, dim]."""
        return self.projection(self.features(x).flatten(1))


class VGG11Encoder(nn.Module):
    """VGG11 convolutions, average-pooled to 7x7 and projected: [B, 3, H, W] -> [B, dim].

    The convolution stack follows VGG11 ("A") layer by layer, so weights pretrained on
    ImageNet (e.g. a ``state_dict`` of torchvision's ``vgg11_bn`` that you saved to a local
    file) load into it; nothing is downloaded. The paper freezes the convolutional part and
    trains the projection.

    Args:
        dim: output width.
        in_channels: input channels (3 for RGB).
        batch_norm: batch norm after every convolution (VGG11-BN, as the paper).
        dropout: dropout after every ReLU of the convolution stack (0 disables it).
        freeze_features: no gradient to the convolution stack and its batch norm kept in
            evaluation mode (running statistics frozen too).
        weights_path: local file with weights to load at construction (see
            :meth:`load_weights`).
    """

    def __init__(
        self,
        *,
        dim: int = 1024,
        in_channels: int = 3,
        batch_norm: bool = True,
        dropout: float = 0.2,
        freeze_features: bool = True,
        weights_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for entry in VGG11_LAYOUT:
            if entry == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                continue
            assert isinstance(entry, int)
            layers.append(nn.Conv2d(width, entry, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(entry))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = entry
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((7, 7))
        self.head = nn.Linear(width * 7 * 7, dim)
        self.freeze_features = freeze_features
        if weights_path is not None:
            self.load_weights(weights_path)
        self._apply_freeze()

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, dim]."""
        return self.head(self.pool(self.features(x)).flatten(1))

    def train(self, mode: bool = True) -> VGG11Encoder:
        """Set training mode; frozen batch norm stays in evaluation mode."""
        super().train(mode)
        if self.freeze_features:
            for module in self.features.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def load_weights(self, path: str | Path) -> None:
        """Load weights from a local ``torch.save``d state dict.

        The convolution and batch-norm layers of the file's ``features`` stack are matched to
        this module's in order, so torchvision's ``vgg11_bn`` / ``vgg11`` state dicts and
        ones saved from this module (or with a prefix such as ``model.``) all load. The
        projection ``head`` is loaded too when the file has one of the same shape.

        Raises:
            DataError: the file is missing or its layers do not match this module's.
        """
        path = Path(path).expanduser()
        form = "a torch.save'd state dict of a VGG11 (features.<i>.weight, ...)"
        if not path.is_file():
            raise DataError(f"{path}: weight file not found; expected {form}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for foreign files
            raise DataError(f"{path}: cannot be loaded ({error}); expected {form}") from error
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise DataError(f"{path}: holds a {type(state).__name__}; expected {form}")
        groups = _feature_groups(state)
        targets = [m for m in self.features if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
        problems = _match_layers(groups, targets)
        if problems:
            listed = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
            raise DataError(f"{path}: field 'features' does not fit this VGG11: {listed}")
        with torch.no_grad():
            for group, module in zip(groups, targets, strict=True):
                for name, tensor in group.items():
                    getattr(module, name).copy_(tensor)
        head = {k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")}
        if head and all(
            getattr(self.head, k, None) is not None and getattr(self.head, k).shape == v.shape
            for k, v in head.items()
        ):
            self.head.load_state_dict(head)
        else:
            logger.info("%s: no matching 'head' weights; the projection keeps its init", path)

    def _apply_freeze(self) -> None:
        for parameter in self.features.parameters():
            parameter.requires_grad_(not self.freeze_features)
        self.train(self.training)


_FEATURE_KEY = re.compile(
    r"^(?P<prefix>(?:.*\.)?)features\.(?P<index>\d+)\."
    r"(?P<name>weight|bias|running_mean|running_var|num_batches_tracked)$"
)


def _feature_groups(state: dict[str, Any]) -> list[dict[str, Tensor]]:
    """The file's ``features.<i>.*`` tensors grouped per layer, in layer order."""
    by_prefix: dict[str, dict[int, dict[str, Tensor]]] = defaultdict(lambda: defaultdict(dict))
    for key, value in state.items():
        match = _FEATURE_KEY.match(key)
        if match and isinstance(value, Tensor):
            by_prefix[match["prefix"]][int(match["index"])][match["name"]] = value
    if not by_prefix:
        return []
    # Several prefixes (e.g. two networks in one file): use the one with the most layers.
    layers = max(by_prefix.values(), key=len)
    return [layers[i] for i in sorted(layers)]


def _match_layers(groups: list[dict[str, Tensor]], targets: list[nn.Module]) -> list[str]:
    problems = []
    if len(groups) != len(targets):
        kinds = (
            "conv + batch norm" if any(isinstance(t, nn.BatchNorm2d) for t in targets) else "conv"
        )
        problems.append(
            f"{len(groups)} layers with weights; expected {len(targets)} ({kinds} layers of VGG11)"
        )
        return problems
    for position, (group, module) in enumerate(zip(groups, targets, strict=True)):
        expected = dict(module.named_parameters(recurse=False))
        expected.update(dict(module.named_buffers(recurse=False)))
        for name, tensor in expected.items():
            if name not in group:
                if name != "num_batches_tracked":
                    problems.append(f"layer {position} lacks '{name}'")
                continue
            if group[name].shape != tensor.shape:
                problems.append(
                    f"layer {position} '{name}' has shape {tuple(group[name].shape)}; expected "
                    f"{tuple(tensor.shape)}"
                )
        extra = set(group) - set(expected)
        if extra:
            problems.append(f"layer {position} has unexpected {', '.join(sorted(extra))}")
    return problems


class _MaxOut(nn.Module):
    """Linear map to ``out_features * pieces`` values, max over each group of ``pieces``."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.out_features = out_features
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        grouped = self.linear(x).view(*x.shape[:-1], self.out_features, self.pieces)
        return grouped.max(dim=-1).values


class MaxOutMLP(nn.Module):
    """MaxOut MLP for precomputed feature vectors: [B, F] -> [B, dim].

    Batch norm on the input, then per hidden layer a MaxOut unit, batch norm and dropout, then
    a linear projection to ``dim``.

    Args:
        in_features: F (300 for MM-IMDb's text, 4096 for its VGG features).
        dim: output width.
        hidden: widths of the MaxOut layers (the paper: (512, 1024) for text,
            (1024, 2048) for images).
        pieces: linear pieces per MaxOut unit, one per hidden layer.
        dropout: dropout after each hidden layer.
    """

    def __init__(
        self,
        *,
        in_features: int,
        dim: int = 128,
        hidden: Sequence[int] = (512, 1024),
        pieces: Sequence[int] = (2, 5),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if len(pieces) != len(hidden):
            raise ValueError(f"pieces has {len(pieces)} entries; expected {len(hidden)}")
        layers: list[nn.Module] = [nn.BatchNorm1d(in_features)]
        width = in_features
        for out, count in zip(hidden, pieces, strict=True):
            layers += [_MaxOut(width, out, count), nn.BatchNorm1d(out), nn.Dropout(dropout)]
            width = out
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """[B, F] -> [B, dim]."""
        return self.net(x.flatten(1))


def build_conv3d(spec: ModalitySpec, dim: int, **options: Any) -> nn.Module:
    """Registry builder: :class:`Conv3dEncoder` for a volume modality."""
    return Conv3dEncoder(in_channels=spec.shape[0], dim=dim, **options)


def build_vgg11(spec: ModalitySpec, dim: int, **options: Any) -> nn.Module:
    """Registry builder: :class:`VGG11Encoder` for an image modality."""
    return VGG11Encoder(in_channels=spec.shape[0], dim=dim, **options)


def build_maxout(spec: ModalitySpec, dim: int, **options: Any) -> nn.Module:
    """Registry builder: :class:`MaxOutMLP` for a vector modality."""
    return MaxOutMLP(in_features=math.prod(spec.shape), dim=dim, **options)


PAPER_ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "conv3d": build_conv3d,
    "vgg11": build_vgg11,
    "maxout": build_maxout,
}

__all__ = [
    "PAPER_ENCODERS",
    "VGG11_LAYOUT",
    "Conv3dEncoder",
    "MaxOutMLP",
    "VGG11Encoder",
    "build_conv3d",
    "build_maxout",
    "build_vgg11",
]
