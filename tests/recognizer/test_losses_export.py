"""The contrastive loss on generated pairs and the recognizer file format."""

from __future__ import annotations

import pickle

import pytest
import torch

from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import RecognizerError, export_recognizer, load_recognizer
from hfr.recognizer.losses import pair_contrastive_loss, random_derangement


class _Evil:
    """An object only pickle can restore."""


def test_derangement_has_no_fixed_point():
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 7, 50):
        perm = random_derangement(n, g)
        assert sorted(perm.tolist()) == list(range(n))
        assert not (perm == torch.arange(n)).any()
    with pytest.raises(ValueError):
        random_derangement(1)


def test_contrastive_loss_hand_computed():
    nir = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    vis = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # positives: cos 1 and 0.8 -> mean 0.9; with 2 pairs the derangement swaps them:
    # cos(n0, v1) = 0.6 -> relu(0.6 - 0.5) = 0.1; cos(n1, v0) = 0 -> 0; mean 0.05
    loss = pair_contrastive_loss(nir, vis, margin=0.5, negative_weight=0.1)
    assert loss.item() == pytest.approx(-0.9 + 0.1 * 0.05)
    # identical pairs far from each other: only the positive term, at its minimum -1
    far = torch.eye(4)
    assert pair_contrastive_loss(far, far).item() == pytest.approx(-1.0)


def test_contrastive_loss_pulls_pairs_together():
    torch.manual_seed(0)
    nir = torch.randn(8, 16, requires_grad=True)
    vis = torch.randn(8, 16)
    opt = torch.optim.SGD([nir], lr=20.0)
    before = torch.nn.functional.cosine_similarity(nir, vis).mean().item()
    for _ in range(20):
        opt.zero_grad()
        pair_contrastive_loss(nir, vis, generator=torch.Generator().manual_seed(1)).backward()
        opt.step()
    after = torch.nn.functional.cosine_similarity(nir, vis).mean().item()
    assert after > before + 0.3


def test_export_load_round_trip(tmp_path):
    net = build_lightcnn("lightcnn9", num_classes=5, input_size=32).eval()
    fp = export_recognizer(net, tmp_path / "recognizer.pt", meta={"note": "test"})
    rec = load_recognizer(tmp_path)  # a folder holding recognizer.pt works
    assert rec.fingerprint == fp and rec.arch == "lightcnn9" and rec.input_size == 32
    assert rec.meta == {"note": "test"}
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(net(x), dim=1)
    assert torch.allclose(rec.embed(x), expected, atol=1e-6)
    # other sizes and RGB input are converted to the input spec
    assert rec.embed(torch.rand(2, 3, 48, 48)).shape == (2, 256)
    # the fingerprint depends on the weights
    with torch.no_grad():
        next(net.parameters()).add_(1e-3)
    fp2 = export_recognizer(net, tmp_path / "other.pt")
    assert fp2 != fp


def test_load_errors(tmp_path):
    with pytest.raises(RecognizerError, match="not found"):
        load_recognizer(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(RecognizerError, match="not a readable recognizer file"):
        load_recognizer(tmp_path / "junk.pt")

    with open(tmp_path / "pickled.pt", "wb") as f:
        torch.save({"format": "hfr-recognizer/1", "x": _Evil()}, f, pickle_module=pickle)
    with pytest.raises(RecognizerError, match="needs pickle"):
        load_recognizer(tmp_path / "pickled.pt")
    net = build_lightcnn("lightcnn9", num_classes=0, input_size=32)
    export_recognizer(net, tmp_path / "r.pt")
    payload = torch.load(tmp_path / "r.pt", weights_only=True)
    payload["fingerprint"] = "0" * 16
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(RecognizerError, match="fingerprint mismatch"):
        load_recognizer(tmp_path / "tampered.pt")


def test_fingerprint_ignores_memory_format(tmp_path):
    net = build_lightcnn("lightcnn9", num_classes=3, input_size=32)
    fp = export_recognizer(net, tmp_path / "a.pt")
    net = net.to(memory_format=torch.channels_last)
    assert export_recognizer(net, tmp_path / "b.pt") == fp
    assert load_recognizer(tmp_path / "b.pt").fingerprint == fp
