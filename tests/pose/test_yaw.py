"""The yaw estimator (`hfr.pose`): flips negate labels, its file round-trips and refuses bad files, it learns.

The Task contract (learning, logs, export/reload, exact resume, DDP) is checked for the `yaw`
task in tests/engine/test_task_contract.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from hfr.config import load_config
from hfr.data.augment import AugmentConfig
from hfr.data.manifest import Manifest, make_record
from hfr.engine import train
from hfr.engine.task import TrainContext
from hfr.errors import ConfigError, DataError, HFRError
from hfr.pose.config import YawConfig
from hfr.pose.export import FORMAT, YawEstimatorError, export_yaw_estimator, load_yaw_estimator
from hfr.pose.model import YawNet, predict_degrees
from hfr.pose.task import YawTask, augment_with_yaw, yaw_metrics

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "configs" / "judge" / "synth-yaw.yaml"
QUIET = [
    "train.num_workers=0",
    "train.progress=false",
    "train.sample_every=-1",
    "train.checkpoint_every=0",
    "train.log_every=1",
    "train.device=cpu",
    "train.amp=off",
    "train.channels_last=false",
]


@pytest.fixture(scope="module")
def multipie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 SynthFace multipie subjects at 32 px (4 train, 2 test; 9 yaws x 4 lights each)."""
    from hfr.data.synth import SynthConfig, write_preset

    out = tmp_path_factory.mktemp("multipie")
    write_preset(SynthConfig(preset="multipie", subjects=6, size=32, seed=0, workers=1), out)
    return out


def _trained_net() -> YawNet:
    """A small YawNet with non-trivial weights and BatchNorm statistics."""
    torch.manual_seed(0)
    net = YawNet(1, [4, 8, 8, 8])
    torch.nn.init.normal_(net.head.weight)
    net.train()
    with torch.no_grad():
        net(torch.rand(8, 1, 32, 32))  # moves the running statistics away from their defaults
    return net


# ------------------------------------------------------------------------------------ flips
def test_a_flip_negates_the_yaw_label_of_exactly_the_flipped_faces():
    torch.manual_seed(0)
    images = torch.rand(64, 1, 16, 16)
    yaw = torch.linspace(-60, 60, 64)
    out, labels = augment_with_yaw(images, yaw, AugmentConfig(flip_p=1.0), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, images.flip(-1), atol=1e-5)
    assert torch.equal(labels, -yaw)

    out, labels = augment_with_yaw(images, yaw, AugmentConfig(flip_p=0.5), generator=torch.Generator().manual_seed(1))
    flipped = labels != yaw
    assert 10 < int(flipped.sum()) < 54  # both kinds occur
    assert torch.equal(labels[flipped], -yaw[flipped])
    assert torch.allclose(out[flipped], images[flipped].flip(-1), atol=1e-5)
    assert torch.equal(out[~flipped], images[~flipped])


def test_mirror_averaged_estimates_are_antisymmetric_under_a_flip():
    net = _trained_net()
    faces = torch.rand(10, 1, 32, 32)
    a = predict_degrees(net, faces, 32, mirror=True)
    b = predict_degrees(net, faces.flip(-1), 32, mirror=True)
    assert torch.allclose(a, -b, atol=1e-4)
    assert net.training  # the previous mode is restored


# ------------------------------------------------------------------------------------ files
def test_export_and_load_give_identical_estimates_for_any_size_and_channels(tmp_path):
    net = _trained_net()
    path = tmp_path / "yaw_estimator.pt"
    fp = export_yaw_estimator(net, path, size=32, meta={"steps": 3})
    judge = load_yaw_estimator(path)
    assert judge.fingerprint == fp and judge.size == 32 and judge.channels == 1 and judge.meta == {"steps": 3}
    assert load_yaw_estimator(tmp_path).fingerprint == fp  # a folder means its yaw_estimator.pt
    faces = torch.rand(7, 1, 32, 32)
    expected = predict_degrees(net, faces, 32, mirror=True)
    assert torch.equal(judge.estimate(faces), expected)
    assert torch.allclose(judge.estimate(faces, batch_size=3), expected, atol=1e-4)  # batching changes only rounding
    assert not judge.model.training

    rgb64 = torch.rand(5, 3, 64, 64)
    from hfr.pose.model import prepare

    gray32 = prepare(rgb64, 32, 1)
    assert gray32.shape == (5, 1, 32, 32)
    assert torch.allclose(judge.estimate(rgb64), judge.estimate(gray32), atol=1e-5)
    assert judge.estimate(torch.zeros(0, 1, 32, 32)).shape == (0,)


def test_missing_corrupt_and_foreign_files_are_refused_naming_the_path(tmp_path):
    net = _trained_net()
    good = tmp_path / "good.pt"
    export_yaw_estimator(net, good, size=32)

    with pytest.raises(YawEstimatorError, match="not found.*train one"):
        load_yaw_estimator(tmp_path / "absent.pt")

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(HFRError, match=f"{truncated}.*not a readable yaw-estimator file"):
        load_yaw_estimator(truncated)

    foreign = tmp_path / "recognizer.pt"
    torch.save({"format": "hfr-recognizer/1", "state_dict": {}}, foreign)
    with pytest.raises(HFRError, match=f"{foreign}: not an hfr yaw-estimator file .*'hfr-recognizer/1'"):
        load_yaw_estimator(foreign)

    payload = torch.load(good, weights_only=True)
    assert payload["format"] == FORMAT
    payload["state_dict"]["head.bias"] += 1.0
    edited = tmp_path / "edited.pt"
    torch.save(payload, edited)
    with pytest.raises(YawEstimatorError, match=f"{edited}: fingerprint mismatch"):
        load_yaw_estimator(edited)

    del payload["state_dict"]["head.weight"]
    broken = tmp_path / "broken.pt"
    torch.save(payload, broken)
    with pytest.raises(YawEstimatorError, match=f"{broken}: yaw-estimator file with missing or mismatched parts"):
        load_yaw_estimator(broken)


# ------------------------------------------------------------------------------------ config and data
def test_the_recipe_loads_and_impossible_values_are_refused():
    cfg = load_config(YawConfig, RECIPE)
    assert cfg.model == "yaw" and cfg.data.size == 32 and cfg.augment.flip_p == 0.5
    for sets, key in (
        (["net.widths=[]"], "net.widths"),
        (["data.size=8"], "data.size"),
        (["data.channels=2"], "data.channels"),
        (["data.yaw_bins=[10, 0]"], "data.yaw_bins"),
        (["batch_size=1"], "batch_size"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config(YawConfig, RECIPE, sets)


def _manifest_with_yaws(root: Path, yaws: list[float | None]) -> Path:
    """A manifest over the conftest-style 16 px images, with the given yaw per row."""
    import numpy as np

    from hfr.data.imageio import write_png

    recs = []
    for i, yaw in enumerate(yaws):
        name = f"s{i % 2}/{i}.png"
        write_png(root / name, np.full((16, 16), 10 * i, np.uint8))
        recs.append(make_record(name, f"s{i % 2}", "vis", yaw, "train"))
    Manifest(recs, root).write(root)
    return root / "manifest.csv"


def test_rows_without_yaw_are_skipped_and_counted_and_none_at_all_is_an_error(tmp_path, caplog):
    some = _manifest_with_yaws(tmp_path / "some", [None, 10.0, -20.0, None, 30.0, 0.0])
    cfg = load_config(YawConfig, RECIPE, [f"data.train={some}", "data.eval=none", "data.size=16", "batch_size=2"])
    task = YawTask()
    logger = logging.getLogger("hfr.task.yaw-test")
    with caplog.at_level(logging.INFO, logger=logger.name):
        task.build(cfg, TrainContext(device=torch.device("cpu"), logger=logger))
    assert len(task.manifest) == 4
    assert "skipped 2 of 6 training rows" in caplog.text

    none = _manifest_with_yaws(tmp_path / "none", [None, None, None])
    cfg = load_config(YawConfig, RECIPE, [f"data.train={none}", "data.eval=none", "data.size=16", "batch_size=2"])
    with pytest.raises(DataError, match=f"{none}: none of its 3 training rows .* has a yaw"):
        YawTask().build(cfg, TrainContext(device=torch.device("cpu")))


def test_yaw_metrics_use_the_nearest_bins():
    bins = [-60.0, -45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0, 60.0]
    m = yaw_metrics(torch.tensor([0.0, 20.0, -50.0, 60.0]), torch.tensor([5.0, 30.0, -45.0, 45.0]), bins)
    assert m["yaw_mae"] == pytest.approx((5 + 10 + 5 + 15) / 4)
    assert m["yaw_bin_acc"] == pytest.approx(0.5)  # 0 -> 0 and -50 -> -45 agree; 20 -> 15 and 60 -> 60 do not


# ------------------------------------------------------------------------------------ learning
def test_short_training_estimates_held_out_yaw_far_better_than_always_zero(multipie, tmp_path):
    sets = [
        f"data.train={multipie}",
        f"data.eval={multipie}",
        "batch_size=32",
        "train.steps=100",
        "train.eval_every=0",
        "train.best_metric=null",
        "optim.lr=0.003",
        *QUIET,
    ]
    cfg = load_config(YawConfig, RECIPE, sets)
    task = YawTask()
    result = train(task, cfg, recipe="yaw-learns", runs_root=tmp_path / "runs")
    test_rows = [r for r in Manifest.read(multipie) if r.split == "test"]
    zero_mae = sum(abs(float(r.yaw or 0.0)) for r in test_rows) / len(test_rows)  # 33.3 degrees
    mae = result["eval"]["yaw_mae"]
    assert mae < 0.3 * zero_mae, (mae, zero_mae)  # 6.7 degrees after 100 steps

    files = task.export(result["run_dir"], meta={"steps": result["step"]})
    judge = load_yaw_estimator(files["yaw_estimator"])
    assert judge.meta["eval"]["yaw_mae"] == pytest.approx(mae)
    assert judge.meta["eval"]["rows"] == len(test_rows) and judge.meta["steps"] == 100
