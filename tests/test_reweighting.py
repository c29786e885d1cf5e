"""Reweighting models."""

import torch

from i2moe.reweighting import GlobalWeights, ReweightingMLP


def test_mlp_weights_are_a_distribution_and_temperature_flattens_them():
    torch.manual_seed(0)
    x = torch.randn(6, 12)
    sharp = ReweightingMLP(12, 5, hidden=16, num_layers=2, temperature=0.5).eval()
    flat = ReweightingMLP(12, 5, hidden=16, num_layers=2, temperature=5.0).eval()
    flat.load_state_dict(sharp.state_dict())
    w_sharp, w_flat = sharp(x), flat(x)
    torch.testing.assert_close(w_sharp.sum(-1), torch.ones(6))
    assert (w_sharp >= 0).all()
    assert w_flat.std() < w_sharp.std()


def test_single_layer_is_one_linear():
    model = ReweightingMLP(4, 3, num_layers=1)
    assert [type(m).__name__ for m in model.net] == ["Linear"]
    assert len(ReweightingMLP(4, 3, num_layers=3).net) == 7  # 2 x (Linear, ReLU, Dropout) + Linear


def test_global_weights_are_shared_by_all_samples():
    model = GlobalWeights(4)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    w = model(torch.randn(3, 7))
    assert w.shape == (3, 4)
    torch.testing.assert_close(w[0], w[2])
    torch.testing.assert_close(w[0], torch.softmax(torch.arange(4.0), 0))
