"""The generated-face quality protocol (`hfr.eval.generator`, `hfr evaluate --protocol generator`).

The two reference generators bound every figure: `truth` (the ground truth itself) must report the
floor (pose error = the estimator's own, identity AUC 1, infinite PSNR, FD ~0) and `grey` (a
constant image) chance. A generator that returns its input unchanged (one that "ignores its pose
code") must be caught by the pose figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hfr.data.manifest import Manifest
from hfr.data.synth import SynthConfig, write_preset
from hfr.errors import HFRError
from hfr.eval import generator as gp
from hfr.eval.generator_report import load_synthesizer, markdown_table, run_generator_protocol, tasks_for
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer, load_recognizer


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny multipie, occluded and nirvis renders at 32 px, and a random-weight LightCNN-9 judge."""
    root = tmp_path_factory.mktemp("gen-protocol")
    out = {}
    for preset, subjects in (("multipie", 8), ("occluded", 8), ("nirvis", 10)):
        write_preset(SynthConfig(preset=preset, subjects=subjects, size=32, seed=0, workers=1), root / preset)
        out[preset] = root / preset
    torch.manual_seed(0)
    export_recognizer(build_lightcnn("lightcnn9", 0, 32, 1).eval(), root / "judge.pt")
    out["judge"] = root / "judge.pt"
    return out


class BrightnessYaw:
    """A stand-in yaw estimator: any deterministic function of the pixels will do for the floor checks."""

    def estimate(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float().mean(dim=(1, 2, 3)) - 0.5) * 240.0


class IdentityMap:
    """A generator that ignores its target: returns the input face unchanged."""

    protocol_tasks = ("rotate", "frontalize", "deocclude")
    size, channels = 32, 1

    def synthesize(self, task, images, masks, yaws, seed):
        return images.clone()

    def sample_pairs(self, count, seed):
        raise NotImplementedError


def _judges(sets: dict[str, Path], manifest: Manifest) -> gp.Judges:
    return gp.Judges(load_recognizer(sets["judge"]), BrightnessYaw(), gp.yaw_bins_of(manifest))


def _run(synth, task: str, manifest: Manifest, judges: gp.Judges) -> dict:
    conds = gp.CONDITION_BUILDERS[task](manifest, max_inputs=40, seed=0)
    return gp.evaluate_conditions(synth, task, manifest, conds, judges, seed=0)


def test_rotate_conditions_pair_each_input_with_its_subjects_image_at_every_yaw(sets):
    m = Manifest.read(sets["multipie"])
    conds = gp.rotate_conditions(m, max_inputs=10)
    bins = gp.yaw_bins_of(m)
    assert len(bins) == 9 and len(conds) == 10 * 9
    by_path = {m.image_path(i): r for i, r in enumerate(m)}
    for c in conds:
        assert c.truth is not None and c.source is not None
        truth = by_path[c.truth]
        src = m[c.source]
        assert truth.subject == src.subject == c.subject and src.split == "test"
        assert truth.yaw == c.target_yaw
        assert truth.get("illumination") == src.get("illumination") == "neutral"


def test_truth_reports_the_floor_and_grey_reports_chance(sets):
    m = Manifest.read(sets["multipie"])
    judges = _judges(sets, m)
    truth = _run(gp.ReferenceGenerator("truth", 32, 1), "rotate", m, judges)
    grey = _run(gp.ReferenceGenerator("grey", 32, 1), "rotate", m, judges)
    t_all = truth["groups"]["all"]["all"]
    g_all = grey["groups"]["all"]["all"]
    # floor: the generated faces are the ground truth
    assert t_all["generated"]["auc"] == pytest.approx(1.0)
    assert t_all["generated"]["tar@far=0.01"] == pytest.approx(1.0)
    assert t_all["generated"]["rank1"] == pytest.approx(t_all["truth"]["rank1"])  # the real images' own rank-1
    assert (
        t_all["generated"]["identical"] == 1.0
        and t_all["generated"]["psnr"] == gp.PSNR_CAP
        and t_all["generated"]["l1"] == 0.0
    )
    assert t_all["generated"]["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert t_all["generated"]["yaw_mae"] == pytest.approx(t_all["truth"]["yaw_mae"])  # = the estimator's error
    assert truth["fd"]["generated_vs_truth"] == pytest.approx(0.0, abs=1e-6)
    # chance: every grey face has the same feature, so genuine and impostor scores come from one pool
    assert g_all["generated"]["auc"] < 0.75
    assert g_all["generated"]["tar@far=0.01"] < 0.2
    assert g_all["generated"]["psnr"] < 20 and g_all["generated"]["ssim"] < 0.8
    assert grey["fd"]["generated_vs_truth"] > 100 * max(truth["fd"]["generated_vs_truth"], 1e-6)
    # the inputs (raw probes) are measured the same way in both runs
    assert g_all["input"]["auc"] == pytest.approx(t_all["input"]["auc"])


def test_a_generator_that_ignores_the_target_yaw_is_caught_by_the_pose_figures(sets):
    m = Manifest.read(sets["multipie"])
    judges = _judges(sets, m)
    lazy = _run(IdentityMap(), "rotate", m, judges)
    truth = _run(gp.ReferenceGenerator("truth", 32, 1), "rotate", m, judges)
    for entry in lazy["groups"]["target_yaw"].values():
        # the identity map gives back the input: its metrics are the input's
        assert entry["generated"]["l1"] == pytest.approx(entry["input"]["l1"])
    # estimated yaw follows the input, not the target: the error exceeds the floor
    assert lazy["groups"]["all"]["all"]["generated"]["yaw_mae"] > truth["groups"]["all"]["all"]["generated"]["yaw_mae"]
    assert set(lazy["groups"]["target_yaw"]) == {f"{b:g}" for b in gp.yaw_bins_of(m)}


def test_deocclusion_measures_inside_and_outside_the_mask(sets):
    m = Manifest.read(sets["occluded"])
    judges = _judges(sets, m)
    res = _run(IdentityMap(), "deocclude", m, judges)
    inp = res["groups"]["all"]["all"]["input"]
    # the occluded input differs from its clean image mostly under the occluder
    assert inp["l1_in_mask"] > 3 * inp["l1_out_mask"]
    assert inp["psnr_out_mask"] > inp["psnr_in_mask"]
    assert set(res["groups"]["occlusion"]) <= {r.get("occlusion") for r in m}
    truth = _run(gp.ReferenceGenerator("truth", 32, 1), "deocclude", m, judges)
    t = truth["groups"]["all"]["all"]["generated"]
    assert t["l1_in_mask"] == 0.0 and t["l1_out_mask"] == 0.0


def test_frontalize_uses_the_frontal_image_as_truth(sets):
    m = Manifest.read(sets["occluded"])
    conds = gp.frontalize_conditions(m, max_inputs=20)
    assert conds and all(c.target_yaw == 0.0 for c in conds)
    for c in conds:
        assert c.source is not None and c.truth == m.resolve(m[c.source].get("frontal_path"))


def test_pairs_truth_and_grey(sets):
    m = Manifest.read(sets["nirvis"])
    judges = _judges(sets, m)
    grey = gp.evaluate_pairs(gp.ReferenceGenerator("grey", 32, 1), m, judges, count=20)
    assert grey["generated"]["auc"] == pytest.approx(0.5)  # all scores tie
    assert grey["generated"]["tar@far=0.01"] == 0.0
    truth = gp.evaluate_pairs(gp.ReferenceGenerator("truth", 32, 1), m, judges, count=20)
    assert truth["n"] == len({r.subject for r in m if r.split == "test"})
    assert truth["generated"]["auc"] > grey["generated"]["auc"]
    assert truth["fd"]["nir_generated_vs_real"] < grey["fd"]["nir_generated_vs_real"]
    assert 0.0 <= truth["novelty"]["fraction_farther_than_within"] <= 1.0


def test_tasks_follow_the_generator_and_the_data(sets):
    mp, oc, nv = (Manifest.read(sets[k]) for k in ("multipie", "occluded", "nirvis"))
    truth = gp.ReferenceGenerator("truth", 32, 1)
    assert tasks_for(truth, mp) == ["rotate", "frontalize"]
    assert tasks_for(truth, oc) == ["frontalize", "deocclude"]
    assert "pairs" in tasks_for(truth, nv)
    with pytest.raises(HFRError, match="this generator does"):
        tasks_for(IdentityMap(), mp, ["pairs"])
    with pytest.raises(HFRError, match="use one of"):
        tasks_for(truth, mp, ["spin"])


def test_a_generator_output_of_the_wrong_shape_is_an_error(sets):
    class Bad(IdentityMap):
        def synthesize(self, task, images, masks, yaws, seed):
            return images[:, :, :16]

    m = Manifest.read(sets["multipie"])
    with pytest.raises(HFRError, match="shape"):
        _run(Bad(), "rotate", m, _judges(sets, m))


def test_report_files_and_table(sets, tmp_path):
    res = run_generator_protocol("grey", sets["multipie"], tmp_path, judge=sets["judge"], max_inputs=6)
    data = json.loads((tmp_path / "result.json").read_text())
    assert set(data["tasks"]) == {"rotate", "frontalize"}
    assert (tmp_path / "rotate_grid.png").is_file() and (tmp_path / "table.md").is_file()
    table = markdown_table(res)
    assert "| rotate | target_yaw | -60 | generated |" in table
    auc = data["tasks"]["rotate"]["groups"]["all"]["all"]["generated"]["auc"]
    assert math.isfinite(auc)


def test_unknown_reference_or_file_is_a_clear_error(tmp_path):
    with pytest.raises(HFRError):
        load_synthesizer(tmp_path / "missing.pt", 32, 1)
    with pytest.raises(HFRError, match="use one of"):
        gp.ReferenceGenerator("black", 32, 1)


def test_cli_runs_and_refuses_missing_options(sets, tmp_path, capsys):
    from hfr.cli import main

    assert main(["evaluate", "--protocol", "generator", "--data", str(sets["multipie"])]) == 2
    assert "--generator" in capsys.readouterr().err
    code = main(
        [
            "evaluate",
            "--protocol",
            "generator",
            "--generator",
            "truth",
            "--judge",
            str(sets["judge"]),
            "--data",
            str(sets["multipie"]),
            "--task",
            "rotate",
            "--max-inputs",
            "4",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert list(data["tasks"]) == ["rotate"]
    assert np.isclose(data["tasks"]["rotate"]["groups"]["all"]["all"]["generated"]["auc"], 1.0)
