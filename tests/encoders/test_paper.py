"""The paper's encoders: shapes, gradients, weight loading from local files, freezing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from i2moe.data import DataError, ModalitySpec
from i2moe.encoders.paper import (
    PAPER_ENCODERS,
    Conv3dEncoder,
    MaxOutMLP,
    VGG11Encoder,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_conv3d_shapes_for_any_volume_size():
    encoder = Conv3dEncoder(dim=16, channels=(4, 8, 8))
    assert encoder(torch.randn(2, 1, 9, 11, 9)).shape == (2, 16)
    assert encoder(torch.randn(3, 1, 20, 24, 20)).shape == (3, 16)


def test_conv3d_gradient_reaches_the_first_layer():
    encoder = Conv3dEncoder(dim=8, channels=(4, 4), pool_sizes=(2,))
    volume = torch.randn(2, 1, 8, 8, 8, requires_grad=True)
    encoder(volume).sum().backward()
    assert encoder.features[0].weight.grad.abs().sum() > 0
    assert volume.grad.abs().sum() > 0


def test_conv3d_checks_pool_sizes():
    with pytest.raises(ValueError, match="pool_sizes has 1 entries"):
        Conv3dEncoder(channels=(4, 4, 4), pool_sizes=(2,))


def test_vgg11_shape_and_frozen_features():
    encoder = VGG11Encoder(dim=8)
    encoder.train()
    batch_norms = [m for m in encoder.features if isinstance(m, nn.BatchNorm2d)]
    before = batch_norms[0].running_mean.clone()
    out = encoder(torch.randn(2, 3, 32, 16))
    assert out.shape == (2, 8)
    out.sum().backward()
    assert all(not p.requires_grad and p.grad is None for p in encoder.features.parameters())
    assert encoder.head.weight.grad is not None
    assert all(not bn.training for bn in batch_norms)  # frozen statistics too
    assert torch.equal(batch_norms[0].running_mean, before)


def test_vgg11_unfrozen_trains_features():
    encoder = VGG11Encoder(dim=4, freeze_features=False, batch_norm=False, dropout=0.0)
    encoder(torch.randn(2, 3, 16, 16)).sum().backward()
    assert encoder.features[0].weight.grad.abs().sum() > 0


def test_vgg11_loads_its_own_saved_weights(tmp_path):
    source = VGG11Encoder(dim=6).eval()
    torch.save(source.state_dict(), tmp_path / "vgg.pt")
    loaded = VGG11Encoder(dim=6, weights_path=tmp_path / "vgg.pt").eval()
    image = torch.randn(1, 3, 16, 16)
    assert torch.equal(source(image), loaded(image))


def test_vgg11_loads_torchvision_style_layouts(tmp_path):
    # torchvision's vgg11_bn numbers its layers without dropout and may sit under a prefix;
    # here a dropout-free module plays that file, loaded into one with dropout layers.
    source = VGG11Encoder(dim=6, dropout=0.0).eval()
    state = {f"model.{k}": v for k, v in source.state_dict().items() if k.startswith("features")}
    state["model.classifier.weight"] = torch.zeros(10, 49)  # ignored: not part of features
    torch.save({"state_dict": state}, tmp_path / "vgg11_bn.pth")
    target = VGG11Encoder(dim=6, dropout=0.2, weights_path=tmp_path / "vgg11_bn.pth").eval()
    image = torch.randn(1, 3, 16, 16)
    assert torch.equal(source.features(image), target.features(image))


def test_vgg11_rejects_mismatched_weights(tmp_path):
    torch.save(VGG11Encoder(dim=4, batch_norm=False).state_dict(), tmp_path / "plain.pt")
    with pytest.raises(DataError, match=r"plain\.pt: field 'features'.*expected 16"):
        VGG11Encoder(dim=4, weights_path=tmp_path / "plain.pt")
    with pytest.raises(DataError, match="weight file not found"):
        VGG11Encoder(dim=4, weights_path=tmp_path / "absent.pt")


def test_maxout_mlp_shapes_and_gradient():
    encoder = MaxOutMLP(in_features=30, dim=7, hidden=(16, 8), pieces=(2, 3))
    features = torch.randn(5, 30, requires_grad=True)
    out = encoder(features)
    assert out.shape == (5, 7)
    out.sum().backward()
    assert features.grad.abs().sum() > 0


def test_maxout_unit_takes_the_max_of_its_pieces():
    encoder = MaxOutMLP(in_features=3, dim=2, hidden=(4,), pieces=(3,)).eval()
    unit = encoder.net[1]
    x = torch.randn(2, 3)
    pieces = unit.linear(x).view(2, 4, 3)
    assert torch.equal(unit(x), pieces.max(dim=-1).values)


def test_builders_follow_the_registry_signature():
    volume = PAPER_ENCODERS["conv3d"](ModalitySpec("image", (1, 6, 6, 6), "volume"), 8)
    assert volume(torch.randn(2, 1, 6, 6, 6)).shape == (2, 8)
    text = PAPER_ENCODERS["maxout"](
        ModalitySpec("text", (300,), "vector"), 8, hidden=(8,), pieces=(2,)
    )
    assert text(torch.randn(2, 300)).shape == (2, 8)
    screen = PAPER_ENCODERS["vgg11"](ModalitySpec("screenshot", (3, 32, 16), "image"), 8)
    assert screen(torch.randn(2, 3, 32, 16)).shape == (2, 8)
