"""`hfr evaluate --protocol generator`: load a generator and the judges, run the quality protocol, write
`result.json`, `table.md` and grids of generated faces beside their ground truth.

The measuring is `hfr.eval.generator`; this module picks the tasks a generator can do on the given
data, loads the instruments and writes the report.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from hfr.data.manifest import Manifest
from hfr.errors import ArgumentError, DataError
from hfr.eval import generator as gp
from hfr.fileio import atomic_write_text

#: The columns of the table: (metric key, header, scale).
TABLE_METRICS: tuple[tuple[str, str, float], ...] = (
    ("yaw_mae", "yaw MAE", 1.0),
    ("yaw_bin_acc", "in bin %", 100.0),
    ("auc", "judge AUC", 1.0),
    (f"tar@far={gp.FAR:g}", "TAR@1% %", 100.0),
    ("rank1", "rank-1 %", 100.0),
    ("psnr", "PSNR", 1.0),
    ("ssim", "SSIM", 1.0),
    ("psnr_in_mask", "PSNR in mask", 1.0),
    ("psnr_out_mask", "PSNR out", 1.0),
)


def load_synthesizer(generator: str | os.PathLike, size: int, channels: int, device: str = "cpu") -> Any:
    """A reference generator (`truth`, `grey`) or a method's loaded generator.pt (a Synthesizer)."""
    if str(generator) in gp.REFERENCE_GENERATORS:
        return gp.ReferenceGenerator(str(generator), size, channels)
    from hfr.artifacts import load_generator

    loaded = load_generator(generator, device=device)
    if not isinstance(loaded, gp.Synthesizer):
        raise ArgumentError(
            f"{generator}: this method's generator does not take part in the quality protocol "
            f"(its loader returns no protocol_tasks/synthesize/sample_pairs)"
        )
    return loaded


def tasks_for(synth: Any, manifest: Manifest, asked: list[str] | None = None) -> list[str]:
    """The tasks to run: those asked (each must be the generator's), else every task of the generator
    the data has the ground truth for."""
    own = tuple(synth.protocol_tasks)
    if asked:
        bad = [t for t in asked if t not in gp.TASKS]
        if bad:
            raise ArgumentError(f"--task {bad[0]!r}: use one of {', '.join(gp.TASKS)}")
        missing = [t for t in asked if t not in own]
        if missing:
            raise ArgumentError(f"--task {missing[0]}: this generator does {', '.join(own)}")
        return list(asked)
    has_masks = any(r.get("mask_path") for r in manifest)
    has_modalities = {r.modality for r in manifest} >= {"nir", "vis"}
    out = []
    for t in own:
        if t == "pairs":
            if has_modalities:
                out.append(t)
            continue
        if t == "rotate" and has_masks:  # an occluded set: its faces are asked to de-occlude, not to turn
            continue
        try:  # the data holds this task's ground truth when its conditions can be built
            if gp.CONDITION_BUILDERS[t](manifest, max_inputs=4):
                out.append(t)
        except DataError:
            continue
    if not out:
        raise ArgumentError(
            f"{manifest.source}: none of this generator's tasks ({', '.join(own)}) has its ground truth in "
            f"this data; rotate needs a multipie set, deocclude and frontalize an occluded set, pairs a nirvis set"
        )
    return out


def run_generator_protocol(
    generator: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    judge: str | os.PathLike | None = None,
    yaw_estimator: str | os.PathLike | None = None,
    tasks: list[str] | None = None,
    max_inputs: int = 240,
    pairs: int = 400,
    seed: int = 0,
    device: str = "cpu",
    size: int | None = None,
) -> dict[str, Any]:
    """Measure `generator` (a generator.pt, run folder, `truth` or `grey`) on `data`; write the report."""
    from hfr.recognizer.export import load_recognizer

    manifest = Manifest.read(data)
    judge_net = load_recognizer(judge, device=device) if judge else None
    yaw = None
    if yaw_estimator:
        from hfr.pose.export import load_yaw_estimator

        yaw = load_yaw_estimator(yaw_estimator, device=device)
    if judge_net is None and yaw is None:
        raise ArgumentError("give --judge (a recognizer.pt never seen by the generator) and/or --yaw-estimator")
    ref_size = size or _data_size(manifest)
    synth = load_synthesizer(generator, ref_size, 3 if _is_rgb(manifest) else 1, device)
    judges = gp.Judges(judge_net, yaw, gp.yaw_bins_of(manifest))
    result: dict[str, Any] = {
        "protocol": "generator",
        "generator": str(generator),
        "data": str(manifest.source),
        "judge": {"path": str(judge), "fingerprint": judge_net.fingerprint} if judge_net else None,
        "yaw_estimator": str(yaw_estimator) if yaw_estimator else None,
        "seed": seed,
        "tasks": {},
    }
    examples = {}
    for task in tasks_for(synth, manifest, tasks):
        if task == "pairs":
            r = gp.evaluate_pairs(synth, manifest, judges, count=pairs, seed=seed)
        else:
            conds = gp.CONDITION_BUILDERS[task](manifest, max_inputs=max_inputs, seed=seed)
            r = gp.evaluate_conditions(synth, task, manifest, conds, judges, seed=seed)
        examples[task] = r.pop("examples")
        result["tasks"][task] = r
    write_generator_report(result, examples, out)
    return result


def _data_size(manifest: Manifest) -> int:
    from hfr.data.imageio import read_image

    return int(read_image(manifest.image_path(0)).shape[0])


def _is_rgb(manifest: Manifest) -> bool:
    from hfr.data.imageio import read_image

    return read_image(manifest.image_path(0), "RGB").std(axis=2).mean() > 0.5


def _cell(value: Any, scale: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    v = float(value) * scale
    return f"{v:.1f}" if scale == 100.0 or abs(v) >= 10 else f"{v:.3f}"


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """Rows (task, group, value, set, metrics...) of the report's table."""
    rows = []
    for task, r in result["tasks"].items():
        if task == "pairs":
            key = f"tar@far={gp.FAR:g}"
            for kind in ("generated", "real"):
                rows.append(
                    [
                        task,
                        "pairs",
                        "all",
                        kind,
                        "",
                        "",
                        _cell(r[kind]["auc"], 1),
                        _cell(r[kind][key], 100),
                        "",
                        "",
                        "",
                        "",
                        "",
                    ]
                )
            continue
        for group, values in r["groups"].items():
            for value, entry in values.items():
                for kind in ("generated", "input", "truth"):
                    m = entry.get(kind, {})
                    if not m:
                        continue
                    rows.append([task, group, value, kind] + [_cell(m.get(k), s) for k, _, s in TABLE_METRICS])
    return rows


def markdown_table(result: dict[str, Any]) -> str:
    """The report as a markdown table, with the pairs task's FD and novelty lines."""
    head = ["task", "group", "value", "faces"] + [h for _, h, _ in TABLE_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(result)]
    for task, r in result["tasks"].items():
        if "fd" in r:
            fd = ", ".join(f"{k} {v:.3f}" for k, v in r["fd"].items())
            lines.append(f"\n{task}: Frechet distance in the judge's features: {fd}")
        if "novelty" in r:
            lines.append(f"{task}: novelty: " + ", ".join(f"{k} {v:.3f}" for k, v in r["novelty"].items()))
            lines.append(f"{task}: TAR ratio generated / real pairs: {r['tar_ratio']:.3f}")
    return "\n".join(lines) + "\n"


def write_generator_report(
    result: dict[str, Any], examples: dict[str, dict[str, torch.Tensor]], out: str | os.PathLike
) -> list[Path]:
    """`result.json`, `table.md` and one `<task>_grid.png` per task (generated, input, truth columns)."""
    from hfr.viz import labelled_grid, save_image, tensor_to_images

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "result.json", folder / "table.md"]
    atomic_write_text(written[0], json.dumps(result, indent=2, default=float) + "\n")
    atomic_write_text(written[1], markdown_table(result))
    for task, ex in examples.items():
        cols = list(ex)
        imgs = {k: tensor_to_images(v) for k, v in ex.items()}
        n = len(next(iter(imgs.values())))
        if n == 0:
            continue
        cells = [imgs[c][i] for i in range(n) for c in cols]
        grid = labelled_grid(cells, len(cols), col_labels=cols)
        path = folder / f"{task}_grid.png"
        save_image(path, grid)
        written.append(path)
    return written
