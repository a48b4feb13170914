"""`hfr quickstart`: the main job end to end on built-in synthetic data, sized for a laptop CPU.

1. render small sets of every SynthFace preset (and a contact sheet of each);
2. pretrain LightCNN-9 on the `webface` set (`configs/quickstart/recognizer.yaml`);
3. evaluate it cross-pose on `multipie` test subjects and cross-modal (NIR probes, VIS
   gallery) on `nirvis` test subjects (JSON and plots);
4. build a FAISS gallery of the `nirvis` test subjects' VIS images and search it with a
   few of their NIR images;
5. and on: the methods' stages, found through the `hfr.quickstart` entry-point group and run in
   their `order`: DR-GAN's (order 50, `drgan/quickstart.py`: a small single-image DR-GAN, its pose
   sweep and the cross-pose rank-1 of its G_enc features; `drgan_steps` = 0 skips it) and
   DVG-Face's (order 60, `dvg/quickstart.py`: F_s, the dual generator, generated NIR-VIS pairs,
   their identity consistency and diversity; `dvg_steps` = 0 skips it).

Every model is trained through one stage runner (`hfr.engine.stages.Stages`) from a recipe under
`configs/quickstart/`, each a `base:` recipe of `configs/` plus what the quickstart changes; the
sizes that depend on this config (steps, batch, image size, seed, data folders) are `--set`s.

A method stage is a class (the entry point names it; it is built with no arguments) with:

    order: int                                   # run order, lower first (ties: entry-point name)
    def enabled(self, cfg: QuickstartConfig) -> bool
    def run(self, inputs: StageInputs) -> StageOutput

`StageInputs` gives it the config, the run folder, the rendered sets, the pretrained recognizer
and the stage runner; `StageOutput` returns its summary (stored as `summary[<entry-point name>]`
in summary.json, its time as `timings[<name>]`), what the CLI prints and its lines of summary.md.
The methods' knobs (`drgan_steps`, `dvg_steps`, ...) stay fields of `QuickstartConfig`, so that
`--set drgan_steps=0` keeps working and is type-checked like every other key.

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
from typing import Any, Protocol, runtime_checkable

from hfr.config import recipe_file, save_config
from hfr.data import synth
from hfr.data.stats import dataset_stats
from hfr.engine.rundir import new_run_dir
from hfr.engine.stages import Stages
from hfr.errors import ConfigError
from hfr.fileio import atomic_write_text
from hfr.registry import Registry
from hfr.viz import contact_sheet, save_image

log = logging.getLogger(__name__)

#: The contact-sheet column axis that shows each preset best.
SHEET_AXIS = {"webface": "yaw", "multipie": "yaw", "nirvis": "modality", "occluded": "occlusion"}
#: The entry-point group of the methods' quickstart stages.
ENTRY_POINT_GROUP = "hfr.quickstart"

Progress = Callable[[str, int, int], None]


@dataclass
class QuickstartConfig:
    """What `hfr quickstart` renders and trains.

    The step counts are sized for the 10-minute goal on a 2-core CPU: 9 min 36 s end to end on the
    development VM on a slow day (fp32 matmul at 124 GFLOP/s); the previous 1,000 / 300 / 300 / 150
    steps took 13 min there (README, "Quickstart").
    """

    presets: list[str] = field(default_factory=lambda: list(synth.PRESETS))  #: presets to render
    subjects: int = 0  #: identities per preset (0: the per-preset counts below)
    webface_subjects: int = 200  #: identities of the pretraining set (few enough to learn in minutes)
    webface_images: int = 20  #: images per pretraining identity
    multipie_subjects: int = 40  #: identities of the cross-pose set (40% are test subjects)
    nirvis_subjects: int = 60  #: identities of the cross-modal set (half are test subjects)
    occluded_subjects: int = 8  #: identities of the occlusion set (shown, not trained on)
    size: int = 64  #: rendered image size in pixels
    train_size: int = 32  #: recognizer input size (faces are resized; a multiple of 16)
    seed: int = 0  #: random seed
    workers: int = 2  #: render threads
    sheet_subjects: int = 6  #: rows of each contact sheet
    pipeline: bool = True  #: pretrain, evaluate, build a gallery and search after rendering
    arch: str = "lightcnn9"  #: recognizer architecture
    steps: int = 600  #: pretraining steps (the learning rate drops 10x for the last 30%)
    batch_size: int = 64  #: pretraining batch size
    lr: float = 0.001  #: AdamW learning rate
    probes: int = 5  #: NIR probes searched in the gallery
    drgan_steps: int = 150  #: DR-GAN training steps on the multipie set (0: skip DR-GAN)
    drgan_batch_size: int = 32  #: DR-GAN batch size
    sampler_steps: int = 150  #: DVG-Face identity-sampler steps
    dvg_steps: int = 100  #: DVG-Face generator steps on the nirvis pairs (0: skip DVG-Face)
    dvg_batch_size: int = 8  #: NIR-VIS pairs per DVG-Face step
    dvg_pairs: int = 64  #: generated pairs written

    def validate(self) -> None:
        """Raise ConfigError for unknown presets or impossible counts."""
        unknown = [p for p in self.presets if p not in synth.PRESETS]
        if unknown:
            raise ConfigError(f"quickstart presets: unknown {', '.join(unknown)}; use {', '.join(synth.PRESETS)}")
        if self.sheet_subjects < 1 or self.subjects < 0 or self.steps < 1 or self.probes < 1:
            raise ConfigError("quickstart: sheet_subjects, steps and probes must be >= 1, subjects >= 0")
        if self.drgan_steps < 0 or self.drgan_batch_size < 2:
            raise ConfigError("quickstart: drgan_steps must be >= 0 and drgan_batch_size >= 2")
        if self.dvg_steps < 0 or self.dvg_batch_size < 2 or self.sampler_steps < 1 or self.dvg_pairs < 1:
            raise ConfigError(
                "quickstart: dvg_steps must be >= 0, dvg_batch_size >= 2, sampler_steps and dvg_pairs >= 1"
            )
        if self.pipeline and not {"webface", "multipie", "nirvis"} <= set(self.presets):
            raise ConfigError(
                "quickstart pipeline needs the webface, multipie and nirvis presets; add them or set pipeline=false"
            )

    def subjects_of(self, preset: str) -> int:
        """Identities rendered for `preset`."""
        if self.subjects:
            return self.subjects
        return int(getattr(self, f"{preset}_subjects"))


# ---------------------------------------------------------------------- the method-stage contract
@dataclass
class TextTable:
    """A table a stage wants printed: a title, column headers and rows of cells (the CLI draws it)."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class StageInputs:
    """What a method stage gets.

    Attributes:
        cfg: the quickstart's config (the method's knobs: `drgan_steps`, ...).
        run: the quickstart's run folder; a stage writes under `run/<its name>/` (and `run/eval/`).
        sets: the rendered SynthFace sets, preset name -> dataset folder (manifest.csv inside).
        recognizer: the pretrained LightCNN's recognizer.pt (input `cfg.train_size` px, grayscale).
        stages: the stage runner: `stages.run(name, recipe, sets, run_dir=...)` trains a recipe.
        progress: `progress(stage, done, total)` for long loops, or None.
    """

    cfg: QuickstartConfig
    run: Path
    sets: dict[str, Path]
    recognizer: Path
    stages: Stages
    progress: Progress | None = None


@dataclass
class StageOutput:
    """What a method stage returns.

    Attributes:
        summary: JSON-able results, stored as `summary[<stage name>]` in summary.json.
        console: what `hfr quickstart` prints after the shared tables, in order: lines of text and tables.
        markdown: the stage's lines of summary.md (a `## ...` section), paths relative to the run folder.
    """

    summary: dict[str, Any]
    console: list[str | TextTable] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)


@runtime_checkable
class QuickstartStage(Protocol):
    """A method's quickstart stage (module docstring): `order`, `enabled(cfg)`, `run(inputs)`."""

    order: int

    def enabled(self, cfg: QuickstartConfig) -> bool:
        """False to skip the stage with this config (e.g. its step count is 0)."""
        ...

    def run(self, inputs: StageInputs) -> StageOutput:
        """Train, evaluate and draw; write under `inputs.run`."""
        ...


#: The methods' stages: entry points of the `hfr.quickstart` group (one that fails to import is
#: logged and left out).
STAGES: Registry[Any] = Registry("quickstart stage", ENTRY_POINT_GROUP, error=ConfigError)


def method_stages() -> list[tuple[str, QuickstartStage]]:
    """(name, stage) of every installed method stage, in run order: `order`, then name."""
    found = []
    for name in STAGES.names():
        obj = STAGES.get(name)
        stage = obj() if isinstance(obj, type) else obj
        if not isinstance(stage, QuickstartStage):
            raise ConfigError(
                f"{ENTRY_POINT_GROUP} entry point {name!r}: {obj!r} is not a quickstart stage "
                f"(it needs order, enabled(cfg) and run(inputs))"
            )
        found.append((name, stage))
    return sorted(found, key=lambda item: (item[1].order, item[0]))


def run_relative(path: str | Path, root: str | Path) -> str:
    """`path` relative to the run folder `root` when inside it (for summary.md links), else as given."""
    p = Path(path)
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(path)


# ---------------------------------------------------------------------- the shared stages
def _render(cfg: QuickstartConfig, run: Path, progress: Progress | None) -> list[dict[str, Any]]:
    rows = []
    for preset in cfg.presets:
        scfg = synth.SynthConfig(
            preset=preset,
            subjects=cfg.subjects_of(preset),
            size=cfg.size,
            seed=cfg.seed,
            workers=cfg.workers,
            images_per_subject=cfg.webface_images,
        )
        synth.validate_config(scfg)
        update = (lambda d, t, p=preset: progress(f"rendering {p}", d, t)) if progress else None
        manifest = synth.write_preset(scfg, run / "data" / preset, progress=update)
        stats = dataset_stats(manifest)
        sheet = run / "sheets" / f"{preset}.png"
        save_image(sheet, contact_sheet(manifest, by=SHEET_AXIS[preset], subjects=cfg.sheet_subjects))
        rows.append(
            {
                "preset": preset,
                "subjects": stats["subjects"],
                "images": stats["images"],
                "modalities": stats["modalities"],
                "splits": stats["splits"],
                "yaw_histogram": stats["yaw_histogram"],
                "manifest": str(run / "data" / preset),
                "sheet": str(sheet),
            }
        )
    return rows


def _pretrain(cfg: QuickstartConfig, run: Path, stages: Stages) -> dict[str, Any]:
    """LightCNN on the webface set: configs/quickstart/recognizer.yaml with this config's sizes."""
    sets = [
        f"data.train={run / 'data' / 'webface'}",
        f"data.size={cfg.train_size}",
        f"net.arch={cfg.arch}",
        f"batch_size={cfg.batch_size}",
        f"optim.lr={cfg.lr!r}",
        f"optim.step_size={max(1, int(cfg.steps * 0.7))}",
        f"train.steps={cfg.steps}",
        f"train.log_every={max(1, cfg.steps // 10)}",
        f"train.seed={cfg.seed}",
    ]
    done = stages.run(
        "recognizer", recipe_file("quickstart/recognizer.yaml"), sets, run_dir=run / "train", export_dir=run
    )
    return {"run_dir": str(done.run_dir), "recognizer": str(done.file), "logs": done.logs}


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
    gallery = Gallery.build(
        feats,
        [r.subject for r in vis],
        recognizer.fingerprint,
        modalities=[r.modality for r in vis],
        paths=[str(vis.resolve(r.path).resolve()) for r in vis],
    )
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
    result = gallery.search_subjects(
        embed_manifest(recognizer, probe_manifest), k=3, fingerprint=recognizer.fingerprint
    )
    truth = {r.path: r.subject for r in probes}
    rows = [
        {"probe": p, "true": truth[p], "rank": rank, "subject": s, "score": sc}
        for p, rank, s, sc in result.rows([r.path for r in probes])
    ]
    return {"gallery": str(folder), "gallery_images": len(gallery), "rows": rows}


def run_quickstart(
    cfg: QuickstartConfig,
    out: str | Path | None = None,
    progress: Progress | None = None,
    report: Callable[[str, StageOutput], None] | None = None,
) -> dict[str, Any]:
    """Run the quickstart into `out` (default a new `runs/quickstart/<timestamp>`); return the summary.

    `progress(stage, done, total)` is called as work advances; `report(name, output)` as each method
    stage finishes (the CLI prints `output.console` after the shared tables).
    """
    cfg.validate()
    start = time.perf_counter()
    run = Path(out) if out is not None else new_run_dir("quickstart")
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    summary: dict[str, Any] = {
        "out": str(run),
        "config": dataclasses.asdict(cfg),
        "presets": _render(cfg, run, progress),
    }
    timings["render"] = time.perf_counter() - t0
    markdown: list[str] = []
    if cfg.pipeline:
        stages = Stages(run, reuse=False, meta={"recipe": "quickstart"})
        t0 = time.perf_counter()
        summary["pretrain"] = _pretrain(cfg, run, stages)
        timings["pretrain"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary["evaluation"] = _evaluate(run, progress)
        timings["evaluate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary["search"] = _search(cfg, run)
        timings["search"] = time.perf_counter() - t0
        inputs = StageInputs(
            cfg,
            run,
            {row["preset"]: Path(row["manifest"]) for row in summary["presets"]},
            Path(summary["pretrain"]["recognizer"]),
            stages,
            progress,
        )
        for name, stage in method_stages():
            if not stage.enabled(cfg):
                continue
            t0 = time.perf_counter()
            output = stage.run(inputs)
            timings[name] = time.perf_counter() - t0
            summary[name] = output.summary
            markdown += output.markdown
            if report is not None:
                report(name, output)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
    atomic_write_text(run / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    atomic_write_text(run / "summary.md", _markdown(summary, markdown))
    return summary


def _markdown(summary: dict[str, Any], stage_lines: list[str]) -> str:
    """summary.md: the shared sections from `summary`, then the method stages' lines."""
    root = summary["out"]
    lines = [
        "# hfr quickstart",
        "",
        f"Finished in {summary['seconds']} s ({', '.join(f'{k} {v} s' for k, v in summary['timings'].items())}).",
        "",
        "## SynthFace sets",
        "",
        "| preset | subjects | images | modalities | splits | contact sheet |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in summary["presets"]:
        mods = ", ".join(f"{k} {v}" for k, v in r["modalities"].items())
        splits = ", ".join(f"{k} {v}" for k, v in r["splits"].items())
        lines.append(
            f"| {r['preset']} | {r['subjects']} | {r['images']} | {mods} | {splits} | "
            f"![{r['preset']}]({run_relative(r['sheet'], root)}) |"
        )
    if "evaluation" in summary:
        pose = summary["evaluation"]["cross-pose"]
        modal = summary["evaluation"]["cross-modal"]
        lines += [
            "",
            "## Cross-pose rank-1 (multipie test subjects, frontal gallery)",
            "",
            "| yaw (+-) | " + " | ".join(pose["rank1_by_abs_yaw"]) + " | mean |",
            "| --- " * (len(pose["rank1_by_abs_yaw"]) + 2) + "|",
            "| rank-1 (%) | "
            + " | ".join(f"{100 * v:.1f}" for v in pose["rank1_by_abs_yaw"].values())
            + f" | {100 * pose['mean']:.1f} |",
            "",
            "## Cross-modal (nirvis test subjects: NIR probes, VIS gallery)",
            "",
            "| rank-1 (%) | VR@FAR=1% | VR@FAR=0.1% |",
            "| --- | --- | --- |",
            f"| {100 * modal['mean']['rank1']:.1f} | {100 * modal['mean']['vr@far=0.01']:.1f} | "
            f"{100 * modal['mean']['vr@far=0.001']:.1f} |",
            "",
            "## Gallery search (top 3 subjects per NIR probe)",
            "",
            "| probe | true subject | rank | subject | score |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in summary["search"]["rows"]:
            lines.append(f"| {row['probe']} | {row['true']} | {row['rank']} | {row['subject']} | {row['score']:.3f} |")
    return "\n".join(lines + stage_lines) + "\n"
