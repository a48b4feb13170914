"""What today's generators' faces carry: the generated-face quality protocol on DR-GAN, TSGAN and DVG-Face.

Each generator is trained with its SynthFace recipe as it stands (`configs/drgan/synth-multipie.yaml`,
`configs/tsgan/synth-occluded.yaml`, `configs/dvg/synth-identity-sampler.yaml` then
`configs/dvg/synth-nirvis.yaml` at 32 px as `benchmarks/cross_modal.py` trains it), with F = the
strong shared recognizer's `F` role where a recipe needs one, then measured by
`hfr.eval.generator` with the instruments `benchmarks/judge.py` trained (taken from its stages'
`done.json`; trained here when absent): the *judge* (the shared recipe's
`judge` role: another seed, never seen by a generator) and the yaw estimator. The two reference
generators bound every figure: `truth` (the ground truth: the floor) and `grey` (chance).

| generator | data | tasks |
| --- | --- | --- |
| DR-GAN | `multipie` test subjects | rotate (to each of the 9 yaws), frontalize |
| TSGAN | `occluded` test subjects | deocclude (x_d), frontalize (x_f) |
| DVG-Face | `nirvis` test subjects (real pairs) | pairs of new identities |

Writes `generator_quality.json`, `generator_quality.md` and `generator_quality_<generator>_<task>.png`
grids (generated, input, ground truth; the methods' only) into `--out` (default benchmarks/results).
Instruments and generators are stages
(`--reuse` takes those an earlier run finished; `--judge`, `--yaw-estimator`, `--drgan`, `--tsgan`,
`--dvg` take given files).

    python benchmarks/generator_quality.py                 # trains what is missing (about 30 min on 2 cores)
    python benchmarks/generator_quality.py --reuse         # measure again with the same stages
    python benchmarks/generator_quality.py --quick --out /tmp/gq
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import (  # noqa: E402
    QUICK_SUBJECTS,
    command_line,
    quick_folders,
    quiet_sets,
    script_main,
    shared_instruments,
    start,
)
from hfr.config import recipe_file  # noqa: E402
from hfr.engine.stages import Stages, render_synth  # noqa: E402
from hfr.eval.generator_report import run_generator_protocol  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402
from hfr.recognizer.shared import render_shared_data  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: Which data each generator is measured on.
DATA_OF = {"drgan": "multipie", "tsgan": "occluded", "dvg": "nirvis"}
DVG_SIZE, DVG_STEPS = 32, 600  #: as benchmarks/cross_modal.py trains DVG-Face
SAMPLER_STEPS = 2000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "data", help="SynthFace sets (rendered when absent)")
    p.add_argument("--instruments", type=Path, default=ROOT / "runs" / "judge" / "runs", help="judge/F/yaw stages")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "generator_quality" / "runs", help="generator runs")
    p.add_argument("--generators", nargs="+", default=list(DATA_OF), choices=list(DATA_OF))
    for name in ("judge", "yaw-estimator", "F", "drgan", "tsgan", "dvg"):
        p.add_argument(f"--{name}", type=Path, default=None, help=f"given {name} file (not trained)")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply every generator's training steps")
    p.add_argument("--max-inputs", type=int, default=240, help="test faces per task")
    p.add_argument("--pairs", type=int, default=400, help="generated pairs (DVG-Face)")
    p.add_argument("--reuse", action="store_true", help="reuse stages finished by an earlier run")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="smoke mode: tiny sets, 2 steps per model; needs --out")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    quick_folders(args, p, ["data", "instruments", "runs"])
    return args


def _steps(recipe: str, scale: float, quick: bool) -> int:
    from hfr.config import read_recipe

    return 2 if quick else max(1, round(int(read_recipe(recipe_file(recipe))["train"]["steps"]) * scale))


def train_generators(args: argparse.Namespace, data: dict[str, Path], f_file: Path) -> dict[str, Path]:
    """Each generator's file: given, or trained with its recipe (F = the shared F)."""
    stages = Stages(args.runs, reuse=args.reuse, meta={"benchmark": "generator_quality"})
    q = quiet_sets(args.quick, 8) if args.quick else ["train.sample_every=0", "train.checkpoint_every=0"]
    size = 32 if args.quick else 64
    files: dict[str, Path] = {}
    for name in args.generators:
        given = getattr(args, name)
        if given is not None:
            files[name] = stages.given(name, given, "generator.pt")
            continue
        if name == "drgan":
            recipe = "drgan/synth-multipie.yaml"
            sets = [f"data.train={data['multipie']}", f"data.recognizer={f_file}", "data.eval=none"]
            sets += [f"data.size={size}"]
            sets += [f"train.steps={_steps(recipe, args.steps_scale, args.quick)}", "train.eval_every=-1"]
            sets += ["train.best_metric=null"]
            files[name] = stages.train("drgan", recipe_file(recipe), sets + q)
        elif name == "tsgan":
            recipe = "tsgan/synth-occluded.yaml"
            sets = [f"data.train={data['occluded']}", f"data.recognizer={f_file}", f"data.size={size}"]
            sets += [f"train.steps={_steps(recipe, args.steps_scale, args.quick)}"]
            files[name] = stages.train("tsgan", recipe_file(recipe), sets + q)
        else:
            sampler = stages.train(
                "identity-sampler",
                recipe_file("dvg/synth-identity-sampler.yaml"),
                [
                    f"data.train={data['webface']}",
                    f"data.recognizer={f_file}",
                    f"train.steps={2 if args.quick else SAMPLER_STEPS}",
                    *q,
                ],
                "identity_sampler",
            )
            steps = 2 if args.quick else max(1, round(DVG_STEPS * args.steps_scale))
            files[name] = stages.train(
                "dvg",
                recipe_file("dvg/synth-nirvis.yaml"),
                [
                    f"data.train={data['nirvis']}",
                    f"data.recognizer={f_file}",
                    f"data.identity_sampler={sampler}",
                    f"data.size={DVG_SIZE}",
                    f"train.steps={steps}",
                    *q,
                ],
            )
    args.generator_records = stages.records
    return files


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start(args.threads)
    t0 = time.perf_counter()
    subjects = QUICK_SUBJECTS if args.quick else None
    size = 32 if args.quick else 64
    shared = render_shared_data(args.data, size=size, subjects=subjects)
    occluded, _, _ = render_synth(
        recipe_file("data/synth-occluded.yaml"), args.data / "occluded", 12 if args.quick else 200, size, 0
    )
    data = {
        "webface": shared.webface,
        "multipie": shared.multipie,
        "nirvis": shared.nirvis,
        "occluded": occluded.parent,
    }
    given = {"judge": args.judge, "F": args.F, "yaw_estimator": args.yaw_estimator}
    found = shared_instruments(args.instruments, shared, args.quick, args.reuse, given)
    judge, f_file, yaw = found["judge"], found["F"], found["yaw_estimator"]
    files = train_generators(args, data, f_file)
    result: dict[str, Any] = {
        "benchmark": "generator_quality",
        "command": command_line(argv),
        "judge": str(judge),
        "F": str(f_file),
        "yaw_estimator": str(yaw),
        "generators": {},
        "stages": getattr(args, "generator_records", {}),
        "machine": machine_info(),
    }
    work = args.out / "generator_quality_work"
    for name in ["truth", "grey", *files]:
        for data_name in sorted({DATA_OF[g] for g in files}) if name in ("truth", "grey") else [DATA_OF[name]]:
            label = f"{name}-{data_name}" if name in ("truth", "grey") else name
            logging.info("measuring %s on %s", label, data_name)
            r = run_generator_protocol(
                files.get(name, name),
                data[data_name],
                work / label,
                judge=judge,
                yaw_estimator=yaw,
                max_inputs=args.max_inputs,
                pairs=args.pairs,
            )
            result["generators"][label] = r
            for grid in (work / label).glob("*_grid.png") if name not in ("truth", "grey") else ():
                shutil.copyfile(grid, args.out / f"generator_quality_{label}_{grid.stem.replace('_grid', '')}.png")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_text(args.out / "generator_quality.json", json.dumps(result, indent=2, default=float) + "\n")
    atomic_write_text(args.out / "generator_quality.md", summary_table(result))
    shutil.rmtree(work, ignore_errors=True)
    print(summary_table(result))
    return 0


def _g(r: dict[str, Any], task: str, kind: str, key: str) -> Any:
    try:
        return r["tasks"][task]["groups"]["all"]["all"][kind].get(key)
    except KeyError:
        return None


def _f(v: Any, scale: float = 1.0, digits: int = 2) -> str:
    return "" if v is None else f"{float(v) * scale:.{digits}f}"


def summary_table(result: dict[str, Any]) -> str:
    """One line per (generator, task): pose, identity and fidelity of the generated faces, with the
    inputs' own figures (raw probes) and the references' beside."""
    lines = [
        "| generator | task | yaw MAE (deg) | in target bin % | judge AUC | TAR@1% | rank-1 % | raw rank-1 % | "
        "PSNR | SSIM | FD |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, r in result["generators"].items():
        for task, t in r["tasks"].items():
            if task == "pairs":
                g, real = t["generated"], t["real"]
                lines.append(
                    f"| {label} | pairs | | | {_f(g['auc'], 1, 3)} (real {_f(real['auc'], 1, 3)}) | "
                    f"{_f(g['tar@far=0.01'], 100, 1)} (real {_f(real['tar@far=0.01'], 100, 1)}) | | | | | "
                    f"NIR {_f(t['fd']['nir_generated_vs_real'])}, VIS {_f(t['fd']['vis_generated_vs_real'])} "
                    f"(real NIR-VIS {_f(t['fd']['real_nir_vs_real_vis'])}) |"
                )
                continue
            cells = [
                _f(_g(r, task, "generated", "yaw_mae"), 1, 1),
                _f(_g(r, task, "generated", "yaw_bin_acc"), 100, 1),
                _f(_g(r, task, "generated", "auc"), 1, 3),
                _f(_g(r, task, "generated", "tar@far=0.01"), 100, 1),
                _f(_g(r, task, "generated", "rank1"), 100, 1),
                _f(_g(r, task, "input", "rank1"), 100, 1),
                _f(_g(r, task, "generated", "psnr"), 1, 1),
                _f(_g(r, task, "generated", "ssim"), 1, 3),
                _f(t.get("fd", {}).get("generated_vs_truth")),
            ]
            lines.append(f"| {label} | {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(script_main(main))
