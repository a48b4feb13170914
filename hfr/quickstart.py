"""`hfr quickstart`: the main job on built-in synthetic data, sized for a laptop CPU.

This issue's quickstart renders a small set of each SynthFace preset, writes a contact
sheet of each and a summary (JSON and Markdown) into one run folder. Later issues extend
it with training and evaluation.
"""

from __future__ import annotations

import dataclasses
import json
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

#: The contact-sheet column axis that shows each preset best.
SHEET_AXIS = {"webface": "yaw", "multipie": "yaw", "nirvis": "modality", "occluded": "occlusion"}


@dataclass
class QuickstartConfig:
    """What `hfr quickstart` renders."""

    presets: list[str] = field(default_factory=lambda: list(synth.PRESETS))  #: presets to render
    subjects: int = 12       #: identities per preset
    size: int = 64           #: image size in pixels
    seed: int = 0            #: random seed
    workers: int = 1         #: render worker processes
    sheet_subjects: int = 6  #: rows of each contact sheet

    def validate(self) -> None:
        """Raise OptionError for unknown presets or impossible counts."""
        unknown = [p for p in self.presets if p not in synth.PRESETS]
        if unknown:
            raise OptionError(f"quickstart presets: unknown {', '.join(unknown)}; "
                              f"use {', '.join(synth.PRESETS)}")
        if self.sheet_subjects < 1:
            raise OptionError(f"sheet_subjects must be >= 1, got {self.sheet_subjects}")


def run_quickstart(cfg: QuickstartConfig, out: str | Path | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Render each preset into `out` (default a new `runs/quickstart/<timestamp>`), write sheets
    and `summary.json`/`summary.md`; return the summary."""
    cfg.validate()
    start = time.perf_counter()
    run = Path(out) if out is not None else new_run_dir("quickstart")
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    synth_cfgs = [synth.SynthConfig(preset=p, subjects=cfg.subjects, size=cfg.size, seed=cfg.seed,
                                    workers=cfg.workers) for p in cfg.presets]
    for scfg in synth_cfgs:
        synth.validate_config(scfg)
    rows = []
    done_before = 0
    totals: dict[str, int] = {}

    def report(preset: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            totals[preset] = total
            if progress is not None:
                progress(done_before + done, done_before + total)
        return update

    for scfg in synth_cfgs:
        manifest = synth.write_preset(scfg, run / "data" / scfg.preset, progress=report(scfg.preset))
        done_before += len(manifest)
        stats = dataset_stats(manifest)
        sheet_path = run / "sheets" / f"{scfg.preset}.png"
        save_image(sheet_path, contact_sheet(manifest, by=SHEET_AXIS[scfg.preset],
                                             subjects=cfg.sheet_subjects))
        rows.append({"preset": scfg.preset, "subjects": stats["subjects"], "images": stats["images"],
                     "modalities": stats["modalities"], "splits": stats["splits"],
                     "yaw_histogram": stats["yaw_histogram"], "manifest": str(manifest.source or
                                                                            run / "data" / scfg.preset),
                     "sheet": str(sheet_path)})
    summary = {"out": str(run), "config": dataclasses.asdict(cfg), "presets": rows,
               "seconds": round(time.perf_counter() - start, 2)}
    atomic_write_text(run / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(run / "summary.md", _markdown(summary))
    return summary


def _markdown(summary: dict[str, Any]) -> str:
    lines = ["# hfr quickstart", "", f"Rendered in {summary['seconds']} s.", "",
             "| preset | subjects | images | modalities | splits | contact sheet |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in summary["presets"]:
        mods = ", ".join(f"{k} {v}" for k, v in r["modalities"].items())
        splits = ", ".join(f"{k} {v}" for k, v in r["splits"].items())
        sheet = Path(r["sheet"]).relative_to(summary["out"]) if Path(r["sheet"]).is_relative_to(
            summary["out"]) else r["sheet"]
        lines.append(f"| {r['preset']} | {r['subjects']} | {r['images']} | {mods} | {splits} | "
                     f"![{r['preset']}]({sheet}) |")
    return "\n".join(lines) + "\n"
