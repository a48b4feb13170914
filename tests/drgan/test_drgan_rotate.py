"""`hfr rotate` and `drgan.rotate`: files, grid, pose bins, seeding, --fuse, refused files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drgan.config import DRGANConfig
from drgan.export import export_generator, load_generator
from drgan.models import Generator, fuse_features
from drgan.recognizer import export_encoder
from drgan.rotate import output_names, parse_yaws, pose_bins_of, rotate_images
from drgan.task import pose_sweep
from hfr.artifacts import save_generator_file
from hfr.cli import main
from hfr.data.imageio import read_image, write_png
from hfr.errors import ArgumentError

BINS = [-60.0, -30.0, 0.0, 30.0, 60.0]
YAWS = "-60,-30,0,30,60"
LABELS = ["-60", "-30", "+0", "+30", "+60"]
S = 32


def _generator_file(folder: Path, multi: bool) -> Path:
    """A fresh generator (BatchNorm statistics from random inputs, so outputs vary) as generator.pt."""
    torch.manual_seed(0)
    g = Generator(S, len(BINS), noise_dim=8, width=0.25, multi_image=multi)
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(2):
            g(torch.rand(16, 3, S, S, generator=gen) * 2 - 1, torch.randint(0, len(BINS), (16,), generator=gen))
    cfg = DRGANConfig()
    cfg.data.size, cfg.data.yaw_bins, cfg.net.width, cfg.net.noise_dim = S, BINS, 0.25, 8
    cfg.net.multi_image = 2 if multi else 0
    folder.mkdir(parents=True, exist_ok=True)
    export_generator(g.eval(), folder / "generator.pt", cfg)
    export_encoder(g, 0.25, folder / "recognizer.pt")
    return folder / "generator.pt"


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """A single-image DR-GAN generator.pt (and recognizer.pt beside it)."""
    return _generator_file(tmp_path_factory.mktemp("single"), multi=False)


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> Path:
    """A multi-image DR-GAN generator.pt (with the confidence head omega)."""
    return _generator_file(tmp_path_factory.mktemp("multi"), multi=True)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """Three images of other sizes and channel counts than the generator's."""
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    write_png(folder / "a.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    write_png(folder / "b.png", rng.integers(0, 256, (S, S), dtype=np.uint8))
    write_png(folder / "c.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    return folder


def _batch(folder: Path) -> torch.Tensor:
    """The faces at S x S RGB in [0, 1], as rotate_folder reads them."""
    from hfr.data.datasets import ManifestDataset
    from hfr.probes import load_targets

    ds = ManifestDataset(load_targets(folder), size=S, channels=3)
    return torch.stack([ds[i]["image"] for i in range(len(ds))])


def test_rotate_writes_one_png_per_input_and_yaw_and_the_sweep(single, faces, tmp_path):
    out = tmp_path / "out"
    assert main(["rotate", "--generator", str(single), "--input", str(faces), "--yaw", YAWS, "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    expected = sorted([f"{s}_yaw{y}.png" for s in "abc" for y in LABELS] + ["pose_sweep.png"])
    assert names == expected
    for name in expected[:-1]:
        assert read_image(out / name, "RGB").shape == (S, S, 3)
    # the PNGs are rotate_images' output
    rotated = rotate_images(load_generator(single), _batch(faces), parse_yaws(YAWS))
    pixels = (rotated[2, 3].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(read_image(out / "c_yaw+30.png", "RGB"), pixels)
    # the sweep: 3 rows x (input + 5 yaws), 2 px padding, a 14 px label strip on top
    sweep = np.asarray(Image.open(out / "pose_sweep.png").convert("RGB"))
    grid_w = 6 * (S + 2) + 2
    assert sweep.shape[0] == 14 + 3 * (S + 2) + 2 and sweep.shape[1] > grid_w
    left = sweep.shape[1] - grid_w

    def cell(r: int, c: int) -> np.ndarray:
        y, x = 14 + 2 + r * (S + 2), left + 2 + c * (S + 2)
        return sweep[y : y + S, x : x + S]

    np.testing.assert_array_equal(cell(1, 0), read_image(faces / "b.png", "RGB"))
    np.testing.assert_array_equal(cell(2, 4), read_image(out / "c_yaw+30.png", "RGB"))
    np.testing.assert_array_equal(cell(0, 1), read_image(out / "a_yaw-60.png", "RGB"))


def test_single_file_input_and_nearest_bins(single, faces, tmp_path):
    out = tmp_path / "one"
    assert (
        main(
            [
                "rotate",
                "--generator",
                str(single.parent),
                "--input",
                str(faces / "a.png"),
                "--yaw",
                "-70,10",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["a_yaw+10.png", "a_yaw-70.png", "pose_sweep.png"]
    loaded = load_generator(single)
    assert pose_bins_of(loaded, [-70, 10, 16, 74.9]) == [0, 2, 3, 4]
    # -70 goes to the -60 bin, 10 to 0: the same images as asking for the bins themselves
    x = _batch(faces)[:1]
    np.testing.assert_array_equal(
        rotate_images(loaded, x, [-70, 10]).numpy(), rotate_images(loaded, x, [-60, 0]).numpy()
    )


def test_rotation_is_the_pose_sweep_of_the_training_task(single, faces):
    loaded = load_generator(single)
    x = _batch(faces)
    rotated = rotate_images(loaded, x, BINS, seed=3)
    sweep = pose_sweep(loaded.generator, x * 2 - 1, seed=3).view(3, len(BINS) + 1, 3, S, S)[:, 1:] * 0.5 + 0.5
    torch.testing.assert_close(rotated, sweep.clamp(0, 1), atol=1e-5, rtol=0)
    # inputs differ, so rows differ; another seed changes z and the images
    assert (rotated[0] - rotated[1]).abs().max() > 0.05
    assert (rotate_images(loaded, x, BINS, seed=4) - rotated).abs().max() > 1e-3
    # chunking does not change anything (each input keeps its own z)
    torch.testing.assert_close(rotate_images(loaded, x, BINS, seed=3, batch_size=2), rotated)


def test_fuse_decodes_one_row_from_the_omega_weighted_feature(multi, faces, tmp_path):
    loaded = load_generator(multi)
    x = _batch(faces)
    fused = rotate_images(loaded, x, BINS, fuse=True)
    singles = rotate_images(loaded, x, BINS)
    assert fused.shape == (1, len(BINS), 3, S, S)
    for row in singles:
        assert (row - fused[0]).abs().max() > 1e-3
    g = loaded.generator
    with torch.no_grad():
        f, omega = g.encode(x * 2 - 1)
        assert omega is not None and omega.std() > 1e-4
        z = g.noise(3, torch.Generator().manual_seed(0))[:1].repeat(len(BINS), 1)
        expected = g.decode(fuse_features(f, omega, 3).repeat(len(BINS), 1), torch.arange(len(BINS)), z)
    torch.testing.assert_close(fused[0], (expected * 0.5 + 0.5).clamp(0, 1), atol=1e-5, rtol=0)

    out = tmp_path / "fused"
    assert (
        main(["rotate", "--generator", str(multi), "--input", str(faces), "--yaw", YAWS, "--out", str(out), "--fuse"])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == sorted([f"fused_yaw{y}.png" for y in LABELS] + ["pose_sweep.png"])
    sweep = Image.open(out / "pose_sweep.png")
    # inputs row (no label strip) above the labelled fused row; 5 columns wide
    assert sweep.size[1] == (S + 4) + (14 + S + 4)
    assert sweep.size[0] >= 5 * (S + 2) + 2


def test_fuse_with_a_single_image_generator_uses_equal_weights(single, faces, caplog):
    loaded = load_generator(single)
    x = _batch(faces)
    with caplog.at_level(logging.WARNING, logger="drgan.rotate"):
        fused = rotate_images(loaded, x, [0.0], fuse=True)
    assert "equal weights" in caplog.text
    g = loaded.generator
    with torch.no_grad():
        f, _ = g.encode(x * 2 - 1)
        z = g.noise(3, torch.Generator().manual_seed(0))[:1]
        expected = g.decode(f.mean(0, keepdim=True), torch.tensor([2]), z) * 0.5 + 0.5
    torch.testing.assert_close(fused[0], expected.clamp(0, 1), atol=1e-5, rtol=0)


def test_yaw_outside_the_bins_is_an_error(single, faces, tmp_path, capsys):
    loaded = load_generator(single)
    with pytest.raises(ArgumentError, match=r"--yaw 90 .*-60, -30, 0, 30, 60"):
        rotate_images(loaded, _batch(faces), [0, 90])
    out = tmp_path / "never"
    assert main(["rotate", "--generator", str(single), "--input", str(faces), "--yaw", "-80", "--out", str(out)]) == 2
    assert "-80" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ArgumentError, match="not a number"):
        parse_yaws("0,left")


@pytest.mark.parametrize("kind", ["dvg", "tsgan", "recognizer"])
def test_other_files_exit_2_naming_what_they_are(kind, single, faces, tmp_path, capsys):
    if kind == "recognizer":
        path, named = single.parent / "recognizer.pt", "recognizer file"
    else:
        path = tmp_path / "generator.pt"
        save_generator_file(path, kind, {}, {})
        named = {"dvg": "DVG-Face", "tsgan": "TSGAN"}[kind]
    assert main(["rotate", "--generator", str(path), "--input", str(faces), "--out", str(tmp_path / "o")]) == 2
    assert named in capsys.readouterr().err


def test_no_images_is_an_error_naming_the_folder(single, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["rotate", "--generator", str(single), "--input", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "empty" in capsys.readouterr().err


def test_repeated_stems_get_their_folder_in_the_name(tmp_path):
    paths = [tmp_path / "s1" / "x.png", tmp_path / "s2" / "x.png", tmp_path / "s2" / "y.png"]
    assert output_names(paths, tmp_path) == ["s1_x", "s2_x", "y"]
