"""Every recipe under configs/ loads, and runs a couple of steps at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pattern_data import write_patterns

from hfr.cli import main
from hfr.config import read_recipe
from hfr.data.manifest import Manifest

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(CONFIGS.rglob("*.yaml"))


def test_there_are_recipes():
    kinds = {p.parent.name for p in RECIPES}
    assert {"data", "recognizer", "drgan", "dvg", "tsgan"} <= kinds


def _command(recipe: Path) -> list[str]:
    """The command that takes `recipe`: data recipes render, the others train what their `model:` names."""
    from hfr.config import read_model_name

    if recipe.parent.name == "data":
        return ["data", "synth"]
    return ["train-recognizer"] if read_model_name(recipe) == "recognizer" else ["train-generator"]


def _resolved(recipe: Path, capsys) -> dict:
    assert main([*_command(recipe), "--config", str(recipe), "--dry-run"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_resolves(recipe, capsys):
    assert _resolved(recipe, capsys)


def test_multi_image_recipe_is_the_single_image_one_plus_fusion(capsys):
    single = _resolved(CONFIGS / "drgan" / "synth-multipie.yaml", capsys)
    multi = _resolved(CONFIGS / "drgan" / "synth-multipie-multi.yaml", capsys)
    assert single["net"]["multi_image"] == 0 and multi["net"]["multi_image"] == 4
    multi["net"]["multi_image"] = 0
    assert multi == single


@pytest.mark.parametrize("recipe", sorted((CONFIGS / "quickstart").glob("*.yaml")), ids=lambda p: p.stem)
def test_quickstart_recipes_inherit_a_recipe_of_configs(recipe, capsys):
    from hfr.config import read_yaml

    base = (recipe.parent / read_yaml(recipe)["base"]).resolve()
    assert base.parent.parent == CONFIGS and base.parent.name != "quickstart"
    own = _resolved(recipe, capsys)
    # what the quickstart turns off: in-training checkpoints and evaluation
    assert own["train"]["checkpoint_every"] == 0 and own["train"]["eval_every"] == -1
    assert own["model"] == _resolved(base, capsys)["model"]


@pytest.mark.parametrize("recipe", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: p.stem)
def test_data_recipe_renders(recipe, tmp_path):
    out = tmp_path / recipe.stem
    args = ["data", "synth", "--config", str(recipe), "--subjects", "2", "--size", "32"]
    args += ["--set", "images_per_subject=2", "--out", str(out)]
    if "paired_subjects" in yaml.safe_load(recipe.read_text()):
        args += ["--set", "paired_subjects=1"]  # 2 subjects: 1 training subject
    assert main(args) == 0
    manifest = Manifest.read(out)
    assert len(manifest.subjects()) == 2
    assert (out / "preset.yaml").exists()


@pytest.mark.parametrize(
    "recipe,base,changed",
    [
        ("synth-nirvis-pairs20", "synth-nirvis", {"paired_subjects": 20}),
        ("synth-nirvis-pairs50", "synth-nirvis", {"paired_subjects": 50}),
        ("synth-webface-2k", "synth-webface", {"subjects": 2000, "images_per_subject": 10}),
    ],
)
def test_data_regime_recipes_change_only_their_size(recipe, base, changed, capsys):
    """The data-regime recipes are their base recipe (same seed: the same people, the same images)
    with only the regime's options changed."""
    own, full = (
        _resolved(CONFIGS / "data" / f"{recipe}.yaml", capsys),
        _resolved(CONFIGS / "data" / f"{base}.yaml", capsys),
    )
    assert {k: v for k, v in own.items() if own[k] != full[k]} == changed


def test_paired_subjects_override_from_the_command_line(capsys):
    recipe = CONFIGS / "data" / "synth-nirvis-pairs50.yaml"
    assert main(["data", "synth", "--config", str(recipe), "--set", "paired_subjects=20", "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["paired_subjects"] == 20


@pytest.fixture(scope="module")
def nirvis_patterns(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    write_patterns(root / "real", 4, 2, modalities=("nir", "vis"))
    write_patterns(root / "gen", 4, 1, modalities=("nir", "vis"), seed=3, split="", prefix="g")
    return root


@pytest.mark.parametrize("recipe", sorted((CONFIGS / "recognizer").glob("*.yaml")), ids=lambda p: p.stem)
def test_recognizer_recipe_trains_two_steps(recipe, nirvis_patterns, tmp_path):
    sets = [
        f"data.train={nirvis_patterns / 'real'}",
        "data.extra_train=[]",
        "data.eval=none",
        "data.size=32",
        "batch_size=4",
        "train.steps=2",
        "train.num_workers=0",
        "train.progress=false",
        "train.best_metric=none",
        "train.eval_every=-1",
        "train.sample_every=-1",
        "net.pretrained=none",
    ]
    if "finetune" in recipe.stem:
        sets += [f"data.generated={nirvis_patterns / 'gen'}", "finetune.warmup_steps=1", "finetune.pairs_per_batch=2"]
    args = ["train-recognizer", "--config", str(recipe), "--runs", str(tmp_path / "runs")]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    assert list((tmp_path / "runs").rglob("recognizer.pt"))


def _render(tmp_path_factory, preset):
    from hfr.data.synth import SynthConfig, write_preset

    out = tmp_path_factory.mktemp(preset)
    write_preset(SynthConfig(preset=preset, subjects=4, size=32, seed=0, workers=1), out)
    return out


@pytest.fixture(scope="module")
def tiny_multipie(tmp_path_factory):
    return _render(tmp_path_factory, "multipie")


@pytest.mark.parametrize("recipe", sorted((CONFIGS / "drgan").glob("*.yaml")), ids=lambda p: p.stem)
def test_drgan_recipe_trains_two_steps(recipe, tiny_multipie, tmp_path):
    from hfr.models.lightcnn import build_lightcnn
    from hfr.pose.export import export_yaw_estimator
    from hfr.pose.model import YawNet
    from hfr.recognizer.export import export_recognizer

    # F of the identity loss: an untrained LightCNN-9 with BatchNorm (the shared recognizer's kind); P of the
    # pose loss (synth-multipie-pose.yaml): an untrained yaw estimator
    export_recognizer(build_lightcnn("lightcnn9bn-w0.5", input_size=32), tmp_path / "f.pt")
    export_yaw_estimator(YawNet(channels=3, widths=(4, 8)), tmp_path / "p.pt", size=32, mirror=True)
    sets = [
        f"data.train={tiny_multipie}",
        f"data.eval={tiny_multipie}",
        f"data.recognizer={tmp_path / 'f.pt'}",
        f"data.pose_estimator={tmp_path / 'p.pt'}",
        "data.size=32",
        "net.width=0.125",
        "batch_size=8",
        "train.steps=2",
        "train.num_workers=0",
        "train.progress=false",
        "train.eval_every=2",
        "train.sample_every=2",
        "train.amp=off",
    ]
    args = ["train-generator", "--config", str(recipe), "--runs", str(tmp_path / "runs")]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    run = next(p for p in (tmp_path / "runs").glob("*/*") if not p.is_symlink())
    assert (run / "recognizer.pt").is_file()
    if read_recipe(recipe)["model"] == "drgan":  # the plain-CNN baseline (drgan-cnn) writes G_enc only
        assert (run / "generator.pt").is_file() and list((run / "samples").glob("*.png"))


@pytest.fixture(scope="module")
def tiny_nirvis(tmp_path_factory):
    return _render(tmp_path_factory, "nirvis")


@pytest.mark.parametrize("recipe", sorted((CONFIGS / "dvg").glob("*.yaml")), ids=lambda p: p.stem)
def test_dvg_recipe_trains_two_steps(recipe, nirvis_patterns, tiny_nirvis, tmp_path):
    from hfr.models.lightcnn import build_lightcnn
    from hfr.recognizer.export import export_recognizer

    recognizer = tmp_path / "recognizer.pt"
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1), recognizer)
    sets = [
        f"data.recognizer={recognizer}",
        "batch_size=4",
        "train.steps=2",
        "train.num_workers=0",
        "train.progress=false",
        "net.width=0.125",
        "train.amp=off",
    ]
    if "identity-sampler" in recipe.stem:
        sets += [f"data.train={nirvis_patterns / 'real'}", "train.eval_every=2", "eval_samples=8"]
        produced = "identity_sampler.pt"
    else:
        sets += [
            f"data.train={tiny_nirvis}",
            "data.split=",
            "data.size=32",
            "data.identity_sampler=",
            "train.sample_every=2",
        ]
        produced = "generator.pt"
    args = ["train-generator", "--config", str(recipe), "--runs", str(tmp_path / "runs")]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    assert list((tmp_path / "runs").rglob(produced))


@pytest.fixture(scope="module")
def tiny_occluded(tmp_path_factory):
    return _render(tmp_path_factory, "occluded")


@pytest.mark.parametrize("recipe", sorted((CONFIGS / "tsgan").glob("*.yaml")), ids=lambda p: p.stem)
def test_tsgan_recipe_trains_two_steps(recipe, tiny_occluded, tmp_path):
    from hfr.models.lightcnn import build_lightcnn
    from hfr.recognizer.export import export_recognizer

    recognizer = tmp_path / "recognizer.pt"
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1), recognizer)
    args = ["train-generator", "--config", str(recipe), "--runs", str(tmp_path / "runs")]
    for s in (
        f"data.train={tiny_occluded}",
        "data.split=",
        "data.size=32",
        f"data.recognizer={recognizer}",
        "net.width=0.125",
        "batch_size=4",
        "train.steps=2",
        "train.sample_every=2",
        "train.amp=off",
        "train.num_workers=0",
        "train.progress=false",
    ):
        args += ["--set", s]
    assert main(args) == 0
    assert list((tmp_path / "runs").rglob("generator.pt")) and list((tmp_path / "runs").rglob("step-0000002.png"))


@pytest.mark.parametrize("recipe", sorted((CONFIGS / "judge").glob("*.yaml")), ids=lambda p: p.stem)
def test_judge_recipe_trains_two_steps(recipe, tiny_multipie, tmp_path):
    args = ["train-generator", "--config", str(recipe), "--runs", str(tmp_path / "runs")]
    for s in (
        f"data.train={tiny_multipie}",
        f"data.eval={tiny_multipie}",
        "batch_size=8",
        "train.steps=2",
        "train.eval_every=2",
        "train.sample_every=2",
        "train.checkpoint_every=2",
        "train.amp=off",
        "train.num_workers=0",
        "train.progress=false",
    ):
        args += ["--set", s]
    assert main(args) == 0
    run = next(p for p in (tmp_path / "runs").glob("*/*") if not p.is_symlink())
    assert (run / "yaw_estimator.pt").is_file() and (run / "checkpoints" / "step-0000002.pt").is_file()
    assert list((run / "samples").glob("*.png"))
