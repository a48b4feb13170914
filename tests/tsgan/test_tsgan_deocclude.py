"""`tsgan.deocclude`: outputs and grid for a folder (masks, frontalize), batching, bad input, file checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hfr.artifacts import GeneratorFileError, save_generator_file
from hfr.data.imageio import read_image
from hfr.errors import DataError, ImageError
from tsgan.config import TSGANConfig
from tsgan.deocclude import deocclude_folder, load_pair, run_generators
from tsgan.export import export_tsgan, load_tsgan
from tsgan.models import build_tsgan

N_IMAGES = 5


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("deocclude")
    cfg = TSGANConfig()
    cfg.data.size, cfg.net.width, cfg.batch_size = 32, 0.125, 4
    torch.manual_seed(0)
    models = build_tsgan(32, 0.125)
    export_tsgan(models.g_d, models.g_f, root / "generator.pt", cfg, {"steps": 0})
    rng = np.random.default_rng(0)
    (root / "faces").mkdir()
    (root / "masks").mkdir()
    for i in range(N_IMAGES):
        size = 40 if i == 0 else 32  # one input of another size than the generator's: resized
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "faces" / f"f{i}.png")
        mask = np.zeros((size, size), np.uint8)
        mask[8:20, 4 + i : 20 + i] = 255
        Image.fromarray(mask).save(root / "masks" / f"f{i}.png")
    (root / "faces" / "notes.txt").write_text("not an image")
    return root


def test_folder_with_masks_and_frontalize(setup, tmp_path):
    loaded = load_tsgan(setup / "generator.pt")
    out = tmp_path / "out"
    result = deocclude_folder(loaded, setup / "faces", out, masks=setup / "masks", frontalize=True)
    assert result.count == N_IMAGES and result.masked and result.batch_size == 4
    assert [p.name for p in result.deoccluded] == [f"f{i}.png" for i in range(N_IMAGES)]
    assert [p.parent.name for p in result.frontalized] == ["frontalized"] * N_IMAGES
    for p in [*result.deoccluded, *result.frontalized]:
        assert read_image(p, "RGB").shape == (32, 32, 3)
    assert result.grid is not None
    grid = read_image(result.grid, "RGB")
    assert grid.shape[0] > N_IMAGES * 32 and grid.shape[1] > 4 * 32  # 5 rows, 4 columns plus labels
    # the written PNG is G_d's output: the 5th image ran in the padded batch [4, 0, 1, 2]
    pairs = [load_pair(loaded, setup / "faces" / f"f{i}.png", setup / "masks" / f"f{i}.png") for i in range(5)]
    x = torch.stack([pairs[i][0] for i in (4, 0, 1, 2)])
    m = torch.stack([pairs[i][1] for i in (4, 0, 1, 2)])
    with torch.no_grad():
        expected = ((loaded.g_d(x, m)[0] * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    assert np.array_equal(read_image(result.deoccluded[4], "RGB"), expected.permute(1, 2, 0).numpy())
    # a batch-of-one run gives other outputs (the mask attention mixes the batch)
    single, _ = run_generators(loaded, x[:1], m[:1], frontalize=False, batch_size=1)
    assert not torch.equal(single[0], loaded.g_d(x, m)[0].detach())


def test_without_masks_and_without_frontalize(setup, tmp_path):
    loaded = load_tsgan(setup / "generator.pt")
    result = deocclude_folder(loaded, setup / "faces", tmp_path / "out")
    assert result.count == N_IMAGES and not result.masked and result.frontalized == []
    assert not (tmp_path / "out" / "frontalized").exists()
    with_masks = deocclude_folder(loaded, setup / "faces", tmp_path / "masked", masks=setup / "masks")
    assert not np.array_equal(read_image(result.deoccluded[1]), read_image(with_masks.deoccluded[1]))
    with_frontal = deocclude_folder(loaded, setup / "faces", tmp_path / "f", frontalize=True)
    assert result.grid is not None and with_frontal.grid is not None
    narrow, wide = read_image(result.grid, "RGB"), read_image(with_frontal.grid, "RGB")
    assert narrow.shape[1] < wide.shape[1]  # 3 columns vs 4
    one = deocclude_folder(loaded, setup / "faces" / "f2.png", tmp_path / "one")
    assert one.count == 1 and one.deoccluded[0].name == "f2.png"


def test_bad_input_names_the_file(setup, tmp_path):
    loaded = load_tsgan(setup / "generator.pt")
    with pytest.raises(DataError, match="nowhere: input not found"):
        deocclude_folder(loaded, tmp_path / "nowhere", tmp_path / "out")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(wrong / "f1.png")
    with pytest.raises(DataError, match=r"wrong/f1\.png: the mask is 16x16 but its image .*f1\.png is 32x32"):
        deocclude_folder(loaded, setup / "faces" / "f1.png", tmp_path / "out", masks=wrong)
    with pytest.raises(DataError, match=r"f0\.png: no mask"):
        deocclude_folder(loaded, setup / "faces" / "f0.png", tmp_path / "out", masks=wrong)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match=r"bad\.png: cannot decode"):
        deocclude_folder(loaded, broken, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        deocclude_folder(loaded, tmp_path / "empty", tmp_path / "out2")


def test_another_methods_generator_file_is_refused(setup, tmp_path):
    path = tmp_path / "generator.pt"
    save_generator_file(path, "dvg", {"size": 32}, {"generator": {}})
    with pytest.raises(GeneratorFileError, match="DVG-Face NIR-VIS pair generator, not a TSGAN"):
        load_tsgan(path)
    broken = tmp_path / "broken.pt"
    save_generator_file(broken, "tsgan", {"size": 32}, {"g_d": {}})
    with pytest.raises(GeneratorFileError, match="does not fit its own config"):
        load_tsgan(broken)
    assert load_tsgan(setup).fingerprint == load_tsgan(setup / "generator.pt").fingerprint  # a run folder works


def test_cli_deocclude_writes_outputs_and_refuses_bad_input(setup, tmp_path, capsys):
    from hfr.cli import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "deocclude",
                "--generator",
                str(setup / "generator.pt"),
                "--input",
                str(setup / "faces"),
                "--mask",
                str(setup / "masks"),
                "--frontalize",
                "--out",
                str(out),
            ]
        )
        == 0
    )  # the spelling
    assert f"{N_IMAGES} image(s) de-occluded and frontalized (with masks" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "frontalized").glob("*.png")) == [f"f{i}.png" for i in range(N_IMAGES)]
    assert (out / "grid.png").exists()
    assert (
        main(
            [
                "deocclude",
                "--generator",
                str(setup / "generator.pt"),
                "--input",
                str(setup / "missing"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "missing" in capsys.readouterr().err
    drgan = tmp_path / "drgan.pt"
    save_generator_file(drgan, "drgan", {}, {})
    assert (
        main(["deocclude", "--generator", str(drgan), "--input", str(setup / "faces"), "--out", str(tmp_path / "y")])
        == 2
    )
    assert "DR-GAN" in capsys.readouterr().err
