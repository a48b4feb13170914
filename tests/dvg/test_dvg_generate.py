"""`hfr generate-pairs`: counts, resume without duplicates or gaps, refusals, use by the recognizer."""

from __future__ import annotations

import json
from typing import Any

import torch
from pattern_data import write_patterns

from dvg.generate import load_dvg
from dvg.models import DualGenerator, IdentitySampler
from hfr.artifacts import save_generator_file
from hfr.cli import main
from hfr.data.manifest import Manifest
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer


def _generator(path, seed=0, with_sampler=True, codes=0):
    torch.manual_seed(seed)
    g = DualGenerator(32, 0.125, deterministic=False)
    s = IdentitySampler(256, 256, 0.25)
    modules: dict[str, Any] = {"generator": g.state_dict()}
    if codes:
        modules["attribute_codes"] = {"nir": torch.randn(codes, 256), "vis": torch.randn(codes, 256)}
    config: dict[str, Any] = {"size": 32, "width": 0.125, "deterministic": False, "id_dim": 256}
    if with_sampler:
        modules["identity_sampler"] = s.state_dict()
        config["sampler"] = {"feature_dim": 256, "latent_dim": 256, "width": 0.25}
    save_generator_file(path, "dvg", config, modules)
    return path


def _pairs(out):
    m = Manifest.read(out)
    return sorted(int(r.get("pair")) for r in m if r.modality == "nir"), m


def test_count_resume_and_byte_identical_pairs(tmp_path):
    gen = _generator(tmp_path / "g.pt")
    direct, resumed = tmp_path / "direct", tmp_path / "resumed"
    assert (
        main(["generate-pairs", "--generator", str(gen), "--num", "7", "--batch-size", "3", "--out", str(direct)]) == 0
    )
    assert (
        main(["generate-pairs", "--generator", str(gen), "--num", "4", "--batch-size", "2", "--out", str(resumed)]) == 0
    )
    assert (
        main(["generate-pairs", "--generator", str(gen), "--num", "7", "--batch-size", "3", "--out", str(resumed)]) == 0
    )
    for out in (direct, resumed):
        pairs, m = _pairs(out)
        assert pairs == list(range(7)) and len(m) == 14  # no gaps, no duplicates
        assert json.loads((out / "generated.json").read_text())["pairs"] == 7
    for r in Manifest.read(direct):  # pair i does not depend on batching or interruption
        assert (direct / r.path).read_bytes() == (resumed / r.path).read_bytes()


def test_another_generators_folder_and_missing_sampler_are_errors(tmp_path, capsys):
    a, b = _generator(tmp_path / "a.pt", seed=0), _generator(tmp_path / "b.pt", seed=1)
    out = tmp_path / "pairs"
    assert main(["generate-pairs", "--generator", str(a), "--num", "2", "--out", str(out)]) == 0
    assert main(["generate-pairs", "--generator", str(b), "--num", "4", "--out", str(out)]) == 2
    assert "holds pairs of generator" in capsys.readouterr().err
    assert _pairs(out)[0] == [0, 1]  # nothing lost
    plain = _generator(tmp_path / "plain.pt", with_sampler=False)
    assert main(["generate-pairs", "--generator", str(plain), "--num", "2", "--out", str(tmp_path / "x")]) == 2
    assert "no identity sampler" in capsys.readouterr().err
    drgan = tmp_path / "drgan.pt"
    save_generator_file(drgan, "drgan", {}, {})
    assert main(["generate-pairs", "--generator", str(drgan), "--num", "2", "--out", str(tmp_path / "y")]) == 2
    assert "DR-GAN" in capsys.readouterr().err


def test_real_attributes_come_from_the_data_and_resume_identically(tmp_path, capsys):
    gen = _generator(tmp_path / "g.pt")
    data_a = tmp_path / "a"
    write_patterns(data_a, subjects=3, per_subject=2, modalities=("nir", "vis"), seed=0)
    data_b = tmp_path / "b"
    write_patterns(data_b, subjects=3, per_subject=2, modalities=("nir", "vis"), seed=5)
    args = ["generate-pairs", "--generator", str(gen), "--attributes", "real"]
    outs = {k: tmp_path / k for k in ("direct", "resumed", "other", "prior")}
    assert main([*args, "--data", str(data_a), "--num", "5", "--batch-size", "5", "--out", str(outs["direct"])]) == 0
    assert main([*args, "--data", str(data_a), "--num", "2", "--batch-size", "2", "--out", str(outs["resumed"])]) == 0
    assert main([*args, "--data", str(data_a), "--num", "5", "--batch-size", "2", "--out", str(outs["resumed"])]) == 0
    assert main([*args, "--data", str(data_b), "--num", "5", "--out", str(outs["other"])]) == 0
    assert main(["generate-pairs", "--generator", str(gen), "--num", "5", "--out", str(outs["prior"])]) == 0
    state = json.loads((outs["direct"] / "generated.json").read_text())
    assert state["attributes"] == "real" and state["attribute_data"]["rows"] == 12
    differs = {"other": 0, "prior": 0}
    for r in Manifest.read(outs["direct"]):
        png = (outs["direct"] / r.path).read_bytes()
        assert png == (outs["resumed"] / r.path).read_bytes()
        for k in differs:
            differs[k] += png != (outs[k] / r.path).read_bytes()
    assert differs == {"other": 10, "prior": 10}  # the attribute images matter, and differ from the prior
    # another attribute source in the same folder is refused; nothing is lost
    assert main(["generate-pairs", "--generator", str(gen), "--num", "6", "--out", str(outs["direct"])]) == 2
    assert "attributes 'real'" in capsys.readouterr().err
    assert _pairs(outs["direct"])[0] == list(range(5))
    vis_only = tmp_path / "vis"
    write_patterns(vis_only, subjects=2, per_subject=1)
    assert main([*args, "--data", str(vis_only), "--num", "1", "--out", str(tmp_path / "z")]) == 2
    assert "no subject has both NIR and VIS" in capsys.readouterr().err
    assert main([*args, "--num", "1", "--out", str(tmp_path / "z")]) == 2
    assert "needs --data" in capsys.readouterr().err
    test_only = tmp_path / "test_split"  # attributes come from training rows only, unless --split says otherwise
    write_patterns(test_only, subjects=2, per_subject=1, modalities=("nir", "vis"), split="test")
    assert main([*args, "--data", str(test_only), "--num", "1", "--out", str(tmp_path / "z")]) == 2
    assert "in split 'train'" in capsys.readouterr().err
    assert main([*args, "--data", str(test_only), "--split", "", "--num", "1", "--out", str(tmp_path / "z")]) == 0


def test_auto_attributes_are_the_files_codes_when_it_has_them(tmp_path, capsys):
    with_codes, without = _generator(tmp_path / "c.pt", codes=3), _generator(tmp_path / "p.pt")
    outs = {}
    for name, gen, source in (
        ("auto", with_codes, "auto"),
        ("codes", with_codes, "codes"),
        ("prior", with_codes, "prior"),
        ("old-auto", without, "auto"),
        ("old-prior", without, "prior"),
    ):
        outs[name] = tmp_path / name
        args = [
            "generate-pairs",
            "--generator",
            str(gen),
            "--attributes",
            source,
            "--num",
            "4",
            "--out",
            str(outs[name]),
        ]
        assert main(args) == 0
    states = {k: json.loads((v / "generated.json").read_text())["attributes"] for k, v in outs.items()}
    assert states == {"auto": "codes", "codes": "codes", "prior": "prior", "old-auto": "prior", "old-prior": "prior"}

    def same(a, b):
        return [(outs[a] / r.path).read_bytes() == (outs[b] / r.path).read_bytes() for r in Manifest.read(outs[a])]

    assert all(same("auto", "codes")) and all(same("old-auto", "old-prior"))
    assert not any(same("codes", "prior"))  # the stored codes, not the prior, drew them
    vis = [r for r in Manifest.read(outs["codes"]) if r.modality == "vis"]
    # 4 pairs from 3 stored rows: two pairs share a row's attributes, but not their identity
    assert len({(outs["codes"] / r.path).read_bytes() for r in vis}) == 4
    args = ["generate-pairs", "--generator", str(without), "--attributes", "codes", "--num", "1"]
    assert main([*args, "--out", str(tmp_path / "x")]) == 2
    assert "holds no attribute codes" in capsys.readouterr().err
    loaded = load_dvg(with_codes)
    nir, vis_images = loaded.sample_pairs(4, 0)  # the protocol's pairs are generate-pairs' defaults
    first = Manifest.read(outs["auto"])
    assert nir.shape == (4, 3, 32, 32) and vis_images.shape == nir.shape
    assert len(first) == 8


def test_generated_pairs_feed_the_recognizer_finetune(tmp_path, capsys):
    gen = _generator(tmp_path / "g.pt")
    pairs = tmp_path / "pairs"
    rec = tmp_path / "rec.pt"
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1), rec)
    assert (
        main(["generate-pairs", "--generator", str(gen), "--num", "6", "--out", str(pairs), "--recognizer", str(rec)])
        == 0
    )
    assert "identity consistency" in capsys.readouterr().out
    real = tmp_path / "real"
    write_patterns(real, 4, 2, modalities=("nir", "vis"))
    args = ["train-recognizer", "--config", "configs/recognizer/synth-finetune.yaml", "--runs", str(tmp_path / "runs")]
    for s in (
        f"data.train={real}",
        f"data.generated={pairs}",
        "data.eval=none",
        "data.size=32",
        "batch_size=4",
        "net.pretrained=none",
        "finetune.warmup_steps=1",
        "finetune.pairs_per_batch=2",
        "train.steps=3",
        "train.num_workers=0",
        "train.progress=false",
        "train.log_every=1",
        "train.best_metric=none",
        "train.eval_every=-1",
        "train.sample_every=-1",
    ):
        args += ["--set", s]
    assert main(args) == 0
    from hfr.engine.runlog import read_metrics

    (run,) = [p for p in (tmp_path / "runs").glob("*/*") if not p.is_symlink()]
    assert any("loss_ct" in m for m in read_metrics(run))
