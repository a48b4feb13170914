"""Tests of the LightCNN models: official parameter counts, sizes, API, checkpoint import."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hfr.errors import ArgumentError, HFRError, ImageError
from hfr.models import (
    ARCHITECTURES,
    LightCNN29v2,
    build_lightcnn,
    count_parameters,
    fc_input_size,
    load_official,
)

OFFICIAL_COUNTS = {"lightcnn9": 5_480_864, "lightcnn29": 12_573_280, "lightcnn29v2": 10_475_872}


class NotWeights:
    """A custom Python object: a checkpoint holding it needs an unsafe pickle load."""

    def __init__(self) -> None:
        self.payload = "anything"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_parameter_count_without_classifier_matches_official(arch: str) -> None:
    model = build_lightcnn(arch, num_classes=79077)
    assert count_parameters(model) == OFFICIAL_COUNTS[arch]
    classifier = 256 * 79077 + (0 if arch == "lightcnn29v2" else 79077)
    assert count_parameters(model, with_classifier=True) == OFFICIAL_COUNTS[arch] + classifier
    assert count_parameters(build_lightcnn(arch), with_classifier=True) == OFFICIAL_COUNTS[arch]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_features_and_logits_at_48px(arch: str) -> None:
    torch.manual_seed(0)
    model = build_lightcnn(arch, num_classes=7, input_size=48).eval()
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        feat = model(x)
        logits, feat2 = model.forward_with_logits(x)
    assert feat.shape == (3, 256) and logits.shape == (3, 7)
    assert torch.equal(feat, feat2)
    assert model.fc2 is not None
    torch.testing.assert_close(logits, model.fc2(feat))
    # Each image's feature depends on that image only.
    with torch.no_grad():
        torch.testing.assert_close(model(x[1:2]), feat[1:2], rtol=1e-4, atol=1e-5)
    # Dropout acts on the classifier input in training mode only.
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        assert not torch.allclose(model.classify(feat), logits)


def test_fc_input_is_derived_from_the_size() -> None:
    assert fc_input_size(128) == 8 * 8 * 128
    assert fc_input_size(96) == 6 * 6 * 128
    assert fc_input_size(64) == 4 * 4 * 128
    model = build_lightcnn("lightcnn9", input_size=96)
    assert model.get_submodule("fc1.filter").in_features == 4608
    assert model(torch.rand(1, 1, 96, 96)).shape == (1, 256)


@pytest.mark.parametrize("size", [100, 8, 0, -16, 72])
def test_sizes_that_do_not_work_are_refused(size: int) -> None:
    with pytest.raises(ArgumentError, match="multiple of 16"):
        build_lightcnn("lightcnn29v2", input_size=size)


def test_registry_names_options_and_errors() -> None:
    assert isinstance(build_lightcnn("LightCNN-29v2", input_size=32), LightCNN29v2)
    with pytest.raises(ArgumentError, match="lightcnn9, lightcnn29, lightcnn29v2"):
        build_lightcnn("resnet50")
    with pytest.raises(ArgumentError, match="num_classes"):
        build_lightcnn("lightcnn9", num_classes=-1, input_size=32)
    rgb = build_lightcnn("lightcnn9", input_size=32, in_channels=3)
    assert rgb.get_submodule("features.0.filter").in_channels == 3
    model = build_lightcnn("lightcnn9", input_size=32)
    assert model.fc2 is None and not any(n.startswith("fc2") for n, _ in model.named_parameters())
    with pytest.raises(ArgumentError, match="no classifier"):
        model.classify(torch.zeros(1, 256))
    with pytest.raises(ImageError, match=r"\(B, 1, 32, 32\)"):
        model(torch.rand(1, 1, 64, 64))
    with pytest.raises(ImageError):
        model(torch.rand(1, 3, 32, 32))


def _save_official(model: torch.nn.Module, path: Path) -> None:
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, path)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_load_official_round_trip(arch: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_lightcnn(arch, num_classes=11, input_size=32).eval()
    path = tmp_path / "ckpt.pth.tar"
    _save_official(model, path)
    loaded = load_official(path)
    assert loaded.arch == arch and loaded.num_classes == 11 and loaded.input_size == 32
    assert not loaded.training
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        logits, feat = model.forward_with_logits(x)
        logits2, feat2 = loaded.forward_with_logits(x)
    assert torch.equal(feat, feat2) and torch.equal(logits, logits2)

    headless = load_official(path, arch=arch, num_classes=0)
    assert headless.fc2 is None
    with torch.no_grad():
        assert torch.equal(headless(x), feat)


def test_load_official_plain_state_dict_and_128px(tmp_path: Path) -> None:
    model = build_lightcnn("lightcnn9").eval()
    path = tmp_path / "plain.pt"
    torch.save(model.state_dict(), path)
    loaded = load_official(path)
    assert loaded.input_size == 128 and loaded.num_classes == 0
    x = torch.rand(1, 1, 128, 128)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_load_official_reports_mismatches(tmp_path: Path) -> None:
    path = tmp_path / "c29.pth"
    _save_official(build_lightcnn("lightcnn29", num_classes=5, input_size=32), path)
    with pytest.raises(HFRError, match="checkpoint is lightcnn29 but lightcnn9 was asked") as info:
        load_official(path, arch="lightcnn9")
    message = str(info.value)
    assert "missing keys features.0.filter.weight" in message
    assert "unexpected keys conv1.filter.weight" in message
    with pytest.raises(HFRError, match="lightcnn29 but lightcnn29v2 was asked.*fc.filter.weight"):
        load_official(path, arch="lightcnn29v2")
    with pytest.raises(HFRError, match="5 classes but num_classes=7"):
        load_official(path, num_classes=7)

    odd = tmp_path / "odd.pth"
    torch.save({"state_dict": {"module.backbone.weight": torch.zeros(2)}}, odd)
    with pytest.raises(HFRError, match="cannot tell which LightCNN.*backbone.weight"):
        load_official(odd)
    with pytest.raises(HFRError, match="not found"):
        load_official(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk" * 10)
    with pytest.raises(HFRError, match="not a readable"):
        load_official(junk)


def test_load_official_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "unsafe.pth"
    state = {"module." + k: v for k, v in build_lightcnn("lightcnn9", input_size=16).state_dict().items()}
    torch.save({"state_dict": state, "args": NotWeights()}, path)
    with pytest.raises(HFRError, match="refused.*pickle"):
        load_official(path)


def test_29v2_pooling_is_max_plus_average_and_differentiable() -> None:
    from hfr.models.lightcnn import _max_plus_avg_pool

    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]], dtype=torch.double, requires_grad=True)
    out = _max_plus_avg_pool(x)
    assert out.item() == 6.0 + 3.0
    out.sum().backward()
    assert x.grad is not None and x.grad.flatten().tolist() == [0.25, 0.25, 0.25, 1.25]
    y = torch.randn(1, 2, 4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_max_plus_avg_pool, (y,))
