"""`hfr quickstart`: the main job end to end on built-in synthetic data, sized for a laptop CPU.

1. render small sets of every SynthFace preset (and a contact sheet of each);
2. pretrain LightCNN-9 on the `webface` set;
3. evaluate it cross-pose on `multipie` test subjects and cross-modal (NIR probes, VIS
   gallery) on `nirvis` test subjects (JSON and plots);
4. build a FAISS gallery of the `nirvis` test subjects' VIS images and search it with a
   few of their NIR images;
5. train a small single-image DR-GAN (`configs/drgan/synth-multipie.yaml` scaled down) on
   the `multipie` training subjects for `drgan_steps` steps: its pose-sweep grid of test
   subjects and the cross-pose rank-1 of its G_enc features (0 steps skips it);
6. DVG-Face (`configs/dvg/synth-identity-sampler.yaml` and `synth-nirvis.yaml` scaled down):
   the identity sampler F_s on the LightCNN's `webface` features, the dual generator on the
   `nirvis` training pairs for `dvg_steps` steps at `train_size` px, then `dvg_pairs` generated
   NIR-VIS pairs of new identities (attributes encoded from real training pairs), their grid
   and their identity consistency and diversity under the LightCNN (0 steps skips it).

Everything lands in one run folder (`runs/quickstart/<timestamp>/` by default) with a
`summary.json` and a `summary.md`. `pipeline: false` stops after step 1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfr.config import save_config
from hfr.data import synth
from hfr.data.stats import dataset_stats
from hfr.engine.rundir import new_run_dir
from hfr.errors import OptionError
from hfr.fileio import atomic_write_text
from hfr.viz import contact_sheet, save_image

log = logging.getLogger(__name__)

#: The contact-sheet column axis that shows each preset best.
SHEET_AXIS = {"webface": "yaw", "multipie": "yaw", "nirvis": "modality", "occluded": "occlusion"}

Progress = Callable[[str, int, int], None]


@dataclass
class QuickstartConfig:
    """What `hfr quickstart` renders and trains."""

    presets: list[str] = field(default_factory=lambda: list(synth.PRESETS))  #: presets to render
    subjects: int = 0        #: identities per preset (0: the per-preset counts below)
    webface_subjects: int = 200   #: identities of the pretraining set (few enough to learn in minutes)
    webface_images: int = 20      #: images per pretraining identity
    multipie_subjects: int = 40   #: identities of the cross-pose set (40% are test subjects)
    nirvis_subjects: int = 60     #: identities of the cross-modal set (half are test subjects)
    occluded_subjects: int = 8    #: identities of the occlusion set (shown, not trained on)
    size: int = 64           #: rendered image size in pixels
    train_size: int = 32     #: recognizer input size (faces are resized; a multiple of 16)
    seed: int = 0            #: random seed
    workers: int = 2         #: render threads
    sheet_subjects: int = 6  #: rows of each contact sheet
    pipeline: bool = True    #: pretrain, evaluate, build a gallery and search after rendering
    arch: str = "lightcnn9"  #: recognizer architecture
    steps: int = 1000        #: pretraining steps (the learning rate drops 10x for the last 30%)
    batch_size: int = 64     #: pretraining batch size
    lr: float = 0.001        #: AdamW learning rate
    probes: int = 5          #: NIR probes searched in the gallery
    drgan_steps: int = 300   #: DR-GAN training steps on the multipie set (0: skip DR-GAN)
    drgan_batch_size: int = 32   #: DR-GAN batch size
    sampler_steps: int = 300     #: DVG-Face identity-sampler steps
    dvg_steps: int = 150         #: DVG-Face generator steps on the nirvis pairs (0: skip DVG-Face)
    dvg_batch_size: int = 8      #: NIR-VIS pairs per DVG-Face step
    dvg_pairs: int = 64          #: generated pairs written

    def validate(self) -> None:
        """Raise OptionError for unknown presets or impossible counts."""
        unknown = [p for p in self.presets if p not in synth.PRESETS]
        if unknown:
            raise OptionError(f"quickstart presets: unknown {', '.join(unknown)}; "
                              f"use {', '.join(synth.PRESETS)}")
        if self.sheet_subjects < 1 or self.subjects < 0 or self.steps < 1 or self.probes < 1:
            raise OptionError("quickstart: sheet_subjects, steps and probes must be >= 1, subjects >= 0")
        if self.drgan_steps < 0 or self.drgan_batch_size < 2:
            raise OptionError("quickstart: drgan_steps must be >= 0 and drgan_batch_size >= 2")
        if self.dvg_steps < 0 or self.dvg_batch_size < 2 or self.sampler_steps < 1 or self.dvg_pairs < 1:
            raise OptionError("quickstart: dvg_steps must be >= 0, dvg_batch_size >= 2, sampler_steps and "
                              "dvg_pairs >= 1")
        if self.pipeline and not {"webface", "multipie", "nirvis"} <= set(self.presets):
            raise OptionError("quickstart pipeline needs the webface, multipie and nirvis presets; "
                              "add them or set pipeline=false")

    def subjects_of(self, preset: str) -> int:
        """Identities rendered for `preset`."""
        if self.subjects:
            return self.subjects
        return getattr(self, f"{preset}_subjects")


def _render(cfg: QuickstartConfig, run: Path, progress: Progress | None) -> list[dict[str, Any]]:
    rows = []
    for preset in cfg.presets:
        scfg = synth.SynthConfig(preset=preset, subjects=cfg.subjects_of(preset), size=cfg.size,
                                 seed=cfg.seed, workers=cfg.workers,
                                 images_per_subject=cfg.webface_images)
        synth.validate_config(scfg)
        update = (lambda d, t, p=preset: progress(f"rendering {p}", d, t)) if progress else None
        manifest = synth.write_preset(scfg, run / "data" / preset, progress=update)
        stats = dataset_stats(manifest)
        sheet = run / "sheets" / f"{preset}.png"
        save_image(sheet, contact_sheet(manifest, by=SHEET_AXIS[preset], subjects=cfg.sheet_subjects))
        rows.append({"preset": preset, "subjects": stats["subjects"], "images": stats["images"],
                     "modalities": stats["modalities"], "splits": stats["splits"],
                     "yaw_histogram": stats["yaw_histogram"], "manifest": str(run / "data" / preset),
                     "sheet": str(sheet)})
    return rows


def _pretrain(cfg: QuickstartConfig, run: Path) -> dict[str, Any]:
    from hfr.engine.loop import train
    from hfr.engine.trainconfig import TrainConfig
    from hfr.recognizer.config import RecognizerConfig, RecognizerData, RecognizerNet, RecognizerOptim
    from hfr.recognizer.task import RecognizerTask
    from hfr.data.transforms import AugmentConfig

    rcfg = RecognizerConfig(
        mode="pretrain", batch_size=cfg.batch_size,
        data=RecognizerData(train=str(run / "data" / "webface"), size=cfg.train_size, channels=1),
        net=RecognizerNet(arch=cfg.arch, dropout=0.0),
        optim=RecognizerOptim(name="adamw", lr=cfg.lr, weight_decay=1e-4, official_lr_groups=False,
                              step_size=max(1, int(cfg.steps * 0.7)), gamma=0.1),
        augment=AugmentConfig(flip_p=0.5),
        train=TrainConfig(steps=cfg.steps, log_every=max(1, cfg.steps // 10), checkpoint_every=0,
                          eval_every=-1, sample_every=0, seed=cfg.seed, num_workers=1, device="auto",
                          channels_last=True),
    )
    rcfg.validate()
    task = RecognizerTask()
    result = train(task, rcfg, recipe="recognizer", run_dir=run / "train", runs_root=run)
    recognizer = run / "recognizer.pt"
    task.export(recognizer, meta={"recipe": "quickstart", "steps": result["step"]})
    return {"run_dir": str(result["run_dir"]), "recognizer": str(recognizer),
            "logs": {k: float(v) for k, v in result.get("logs", {}).items()}}


def _evaluate(run: Path, progress: Progress | None) -> dict[str, Any]:
    from hfr.eval.report import evaluate

    out = {}
    for protocol, preset in (("cross-pose", "multipie"), ("cross-modal", "nirvis")):
        update = (lambda d, t, p=protocol: progress(f"evaluating {p}", d, t)) if progress else None
        folder = run / "eval" / protocol
        out[protocol] = evaluate(run / "recognizer.pt", run / "data" / preset, protocol, folder, progress=update)
        out[protocol]["folder"] = str(folder)
    return out


def _search(cfg: QuickstartConfig, run: Path) -> dict[str, Any]:
    from hfr.data.manifest import Manifest
    from hfr.embed import embed_manifest
    from hfr.gallery import Gallery
    from hfr.recognizer.export import load_recognizer

    recognizer = load_recognizer(run / "recognizer.pt")
    nirvis = Manifest.read(run / "data" / "nirvis").select(split="test")
    vis = nirvis.select(modality="vis")
    feats = embed_manifest(recognizer, vis)
    gallery = Gallery.build(feats, [r.subject for r in vis], recognizer.fingerprint,
                            modalities=[r.modality for r in vis], paths=[r.path for r in vis])
    folder = gallery.save(run / "gallery")
    seen: set[str] = set()
    probes = []
    for r in nirvis.select(modality="nir"):
        if r.subject not in seen:
            seen.add(r.subject)
            probes.append(r)
        if len(probes) == cfg.probes:
            break
    probe_manifest = nirvis.with_records(probes)
    result = gallery.search_subjects(embed_manifest(recognizer, probe_manifest), k=3,
                                     fingerprint=recognizer.fingerprint)
    truth = {r.path: r.subject for r in probes}
    rows = [{"probe": p, "true": truth[p], "rank": rank, "subject": s, "score": sc}
            for p, rank, s, sc in result.rows([r.path for r in probes])]
    return {"gallery": str(folder), "gallery_images": len(gallery), "rows": rows}


def _drgan(cfg: QuickstartConfig, run: Path) -> dict[str, Any]:
    """Train a small DR-GAN on the multipie set; write its pose sweep of test faces; rank-1 of G_enc."""
    import torch

    from drgan.config import DRGANConfig
    from drgan.task import DRGANTask, pose_sweep
    from hfr.config import load_config
    from hfr.data.datasets import ManifestDataset
    from hfr.data.manifest import Manifest
    from hfr.engine.loop import train
    from hfr.eval.report import evaluate
    from hfr.viz import labelled_grid, tensor_to_images

    data = run / "data" / "multipie"
    # configs/drgan/synth-multipie.yaml's settings, with fewer steps and a smaller batch
    sets = [f"data.train={data}", "data.eval=none", f"data.size={cfg.size}", "net.width=0.25",
            "net.d_heads=separate", "augment.flip_p=0.5", f"batch_size={cfg.drgan_batch_size}",
            f"train.steps={cfg.drgan_steps}", f"train.log_every={max(1, cfg.drgan_steps // 10)}",
            "train.checkpoint_every=0", "train.eval_every=-1", f"train.sample_every={cfg.drgan_steps}",
            "train.best_metric=none", f"train.seed={cfg.seed}", "train.num_workers=1", "train.channels_last=true"]
    dcfg = load_config(DRGANConfig, None, sets)
    task = DRGANTask()
    result = train(task, dcfg, recipe="drgan", run_dir=run / "drgan", runs_root=run)
    files = task.export(run / "drgan", meta={"recipe": "quickstart", "steps": result["step"]})
    test = Manifest.read(data).select(split="test")
    picks, seen = [], set()
    for r in test:  # one non-frontal neutral-light face per test subject
        if r.subject not in seen and abs(r.yaw) >= 30 and r.get("illumination", "neutral") == "neutral":
            seen.add(r.subject)
            picks.append(r)
        if len(picks) == 6:
            break
    images = torch.stack([item["image"] for item in ManifestDataset(test.with_records(picks), size=cfg.size,
                                                                   channels=3)])
    grid = pose_sweep(task.G.cpu(), images * 2 - 1, seed=cfg.seed) * 0.5 + 0.5
    labels = ["input", *(f"{b:+g}" for b in dcfg.data.yaw_bins)]
    sweep = run / "drgan" / "pose_sweep.png"
    save_image(sweep, labelled_grid(tensor_to_images(grid), ncol=len(labels), col_labels=labels))
    pose = evaluate(files["recognizer"], data, "cross-pose", run / "eval" / "cross-pose-drgan")
    return {"run_dir": str(result["run_dir"]), "generator": files["generator"], "sweep": str(sweep),
            "rank1_by_abs_yaw": pose["rank1_by_abs_yaw"], "mean": pose["mean"],
            "logs": {k: float(v) for k, v in result.get("logs", {}).items()}}


def _dvg(cfg: QuickstartConfig, run: Path) -> dict[str, Any]:
    """Stage 6: F_s, the dual generator, generated pairs, their grid and statistics (module docstring)."""
    from dvg.config import DVGConfig
    from dvg.generate import generate_pairs, load_dvg, pair_statistics
    import torch

    from dvg.sampler_task import IdentitySamplerConfig, IdentitySamplerTask
    from dvg.task import DVGTask
    from hfr.config import load_config
    from hfr.data.datasets import ManifestDataset
    from hfr.data.manifest import Manifest
    from hfr.engine.loop import train
    from hfr.recognizer.export import load_recognizer
    from hfr.viz import labelled_grid, tensor_to_images

    recognizer = run / "recognizer.pt"
    quiet = ["train.checkpoint_every=0", "train.eval_every=-1", "train.best_metric=none", f"train.seed={cfg.seed}",
             "train.num_workers=0"]
    scfg = load_config(IdentitySamplerConfig, None, [f"data.train={run / 'data' / 'webface'}", f"data.recognizer={recognizer}",
                                             f"train.steps={cfg.sampler_steps}", "train.sample_every=-1",
                                             f"train.log_every={max(1, cfg.sampler_steps // 5)}", *quiet])
    sampler_task = IdentitySamplerTask()
    train(sampler_task, scfg, recipe="dvg-sampler", run_dir=run / "dvg" / "sampler", runs_root=run)
    sampler = sampler_task.export(run / "dvg" / "sampler", {"recipe": "quickstart"})["identity_sampler"]
    nirvis = run / "data" / "nirvis"
    # configs/dvg/synth-nirvis.yaml's settings at the recognizer's input size, with fewer steps
    gcfg = load_config(DVGConfig, None, [
        f"data.train={nirvis}", f"data.size={cfg.train_size}", f"data.recognizer={recognizer}",
        f"data.identity_sampler={sampler}", "net.width=0.25", "net.deterministic=true",
        f"batch_size={cfg.dvg_batch_size}", f"train.steps={cfg.dvg_steps}",
        f"train.log_every={max(1, cfg.dvg_steps // 10)}", f"train.sample_every={cfg.dvg_steps}", *quiet])
    task = DVGTask()
    result = train(task, gcfg, recipe="dvg", run_dir=run / "dvg" / "generator", runs_root=run)
    generator = task.export(run / "dvg" / "generator", {"recipe": "quickstart", "steps": result["step"]})["generator"]
    pairs = run / "dvg" / "pairs"
    generate_pairs(load_dvg(generator), pairs, cfg.dvg_pairs, seed=cfg.seed, attributes="real", data=nirvis)
    manifest = Manifest.read(pairs)
    stats = pair_statistics(load_recognizer(recognizer), manifest)
    shown = manifest.filter(lambda r: int(r.get("pair")) < 8)
    rows = [shown.filter(lambda r, m=m: r.modality == m) for m in ("nir", "vis")]
    images = [img for rows_m in rows for img in tensor_to_images(torch.stack(
        [item["image"] for item in ManifestDataset(rows_m, size=cfg.size, channels=3)]))]
    grid = run / "dvg" / "pairs.png"
    save_image(grid, labelled_grid(images, ncol=len(rows[0]), row_labels=["NIR", "VIS"]))
    return {"generator": generator, "pairs": str(pairs), "grid": str(grid), "samples": str(run / "dvg" / "generator"
                                                                                        / "samples"),
            "consistency": stats["consistency"], "diversity": stats["diversity"],
            "logs": {k: float(v) for k, v in result.get("logs", {}).items()}}


def run_quickstart(cfg: QuickstartConfig, out: str | Path | None = None,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Run the quickstart into `out` (default a new `runs/quickstart/<timestamp>`); return the summary.

    `progress(stage, done, total)` is called as work advances.
    """
    cfg.validate()
    start = time.perf_counter()
    run = Path(out) if out is not None else new_run_dir("quickstart")
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"out": str(run), "config": dataclasses.asdict(cfg),
                               "presets": _render(cfg, run, progress)}
    timings["render"] = time.perf_counter() - t0
    if cfg.pipeline:
        t0 = time.perf_counter()
        summary["pretrain"] = _pretrain(cfg, run)
        timings["pretrain"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary["evaluation"] = _evaluate(run, progress)
        timings["evaluate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary["search"] = _search(cfg, run)
        timings["search"] = time.perf_counter() - t0
        if cfg.drgan_steps:
            t0 = time.perf_counter()
            summary["drgan"] = _drgan(cfg, run)
            timings["drgan"] = time.perf_counter() - t0
        if cfg.dvg_steps:
            t0 = time.perf_counter()
            summary["dvg"] = _dvg(cfg, run)
            timings["dvg"] = time.perf_counter() - t0
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
    atomic_write_text(run / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    atomic_write_text(run / "summary.md", _markdown(summary))
    return summary


def _rel(path: str, root: str) -> str:
    p = Path(path)
    return str(p.relative_to(root)) if p.is_relative_to(root) else path


def _markdown(summary: dict[str, Any]) -> str:
    root = summary["out"]
    lines = ["# hfr quickstart", "", f"Finished in {summary['seconds']} s "
             f"({', '.join(f'{k} {v} s' for k, v in summary['timings'].items())}).", "",
             "## SynthFace sets", "",
             "| preset | subjects | images | modalities | splits | contact sheet |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in summary["presets"]:
        mods = ", ".join(f"{k} {v}" for k, v in r["modalities"].items())
        splits = ", ".join(f"{k} {v}" for k, v in r["splits"].items())
        lines.append(f"| {r['preset']} | {r['subjects']} | {r['images']} | {mods} | {splits} | "
                     f"![{r['preset']}]({_rel(r['sheet'], root)}) |")
    if "evaluation" in summary:
        pose = summary["evaluation"]["cross-pose"]
        modal = summary["evaluation"]["cross-modal"]
        lines += ["", "## Cross-pose rank-1 (multipie test subjects, frontal gallery)", "",
                  "| yaw (+-) | " + " | ".join(pose["rank1_by_abs_yaw"]) + " | mean |",
                  "| --- " * (len(pose["rank1_by_abs_yaw"]) + 2) + "|",
                  "| rank-1 (%) | " + " | ".join(f"{100 * v:.1f}" for v in pose["rank1_by_abs_yaw"].values())
                  + f" | {100 * pose['mean']:.1f} |",
                  "", "## Cross-modal (nirvis test subjects: NIR probes, VIS gallery)", "",
                  "| rank-1 (%) | VR@FAR=1% | VR@FAR=0.1% |", "| --- | --- | --- |",
                  f"| {100 * modal['mean']['rank1']:.1f} | {100 * modal['mean']['vr@far=0.01']:.1f} | "
                  f"{100 * modal['mean']['vr@far=0.001']:.1f} |",
                  "", "## Gallery search (top 3 subjects per NIR probe)", "",
                  "| probe | true subject | rank | subject | score |", "| --- | --- | --- | --- | --- |"]
        for row in summary["search"]["rows"]:
            lines.append(f"| {row['probe']} | {row['true']} | {row['rank']} | {row['subject']} | "
                         f"{row['score']:.3f} |")
    if "drgan" in summary:
        d = summary["drgan"]
        lines += ["", f"## DR-GAN ({summary['config']['drgan_steps']} steps on the multipie training subjects)", "",
                  "Cross-pose rank-1 of G_enc features (%):", "",
                  "| yaw (+-) | " + " | ".join(d["rank1_by_abs_yaw"]) + " | mean |",
                  "| --- " * (len(d["rank1_by_abs_yaw"]) + 2) + "|",
                  "| rank-1 (%) | " + " | ".join(f"{100 * v:.1f}" for v in d["rank1_by_abs_yaw"].values())
                  + f" | {100 * d['mean']:.1f} |", "",
                  "Pose sweep of test subjects (input, then every pose bin):", "",
                  f"![DR-GAN pose sweep]({_rel(d['sweep'], root)})"]
    if "dvg" in summary:
        g = summary["dvg"]
        lines += ["", f"## DVG-Face ({summary['config']['dvg_steps']} steps on the nirvis training pairs)", "",
                  "Generated NIR-VIS pairs of new identities (F_s identities, attributes of real training pairs); "
                  "under the LightCNN, the NIR and VIS image of a pair have mean cosine "
                  f"{g['consistency']:.3f} (identity consistency), different pairs {g['diversity']:.3f} (diversity).",
                  "", f"![DVG-Face generated pairs]({_rel(g['grid'], root)})"]
    return "\n".join(lines) + "\n"
