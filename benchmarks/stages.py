"""What the accuracy benchmarks share: training a recipe as a named stage, the LightCNN-9 baseline and
DR-GAN frontalization.

A stage trains one recipe through the library (`hfr.engine.loop.train` and the task its `model:`
names, as `hfr train-recognizer` / `hfr train-generator` do) into `runs/<stage>/<timestamp>/`,
exports the model and writes `runs/<stage>/done.json`; with `reuse`, a later run whose stage has
the same `--set`s takes that file instead of training again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from drgan.export import LoadedGenerator
from hfr.config import load_config, read_yaml
from hfr.data.manifest import MANIFEST_NAME
from hfr.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def render_synth(recipe: Path, data: Path, subjects: int, size: int, seed: int, quick: bool
                 ) -> tuple[Path, bool, float]:
    """(manifest path, rendered now?, seconds): the manifest at `data` (a folder or a .csv) when it exists,
    else the SynthFace preset recipe (configs/data/synth-*.yaml) with these sizes rendered into `data`."""
    from hfr.data.synth import SynthConfig, validate_config, write_preset

    manifest = data if data.suffix == ".csv" else data / MANIFEST_NAME
    if manifest.is_file():
        return manifest, False, 0.0
    cfg = load_config(SynthConfig, recipe, [f"subjects={subjects}", f"size={size}", f"seed={seed}",
                                            f"workers={1 if quick else 2}"])
    validate_config(cfg)
    t = time.perf_counter()
    print(f"rendering SynthFace {cfg.preset} ({cfg.subjects} subjects, {cfg.size} px, seed {cfg.seed}) into {data}",
          flush=True)
    write_preset(cfg, data)
    return data / MANIFEST_NAME, True, round(time.perf_counter() - t, 1)


def quiet_sets(quick: bool, batch: int) -> list[str]:
    """No in-training evaluation, best-checkpoint selection or checkpoints (the benchmark evaluates at the
    end); in the smoke mode also small batches, no samples, a log line per step, no progress bar."""
    sets = ["train.eval_every=-1", "train.best_metric=null", "train.checkpoint_every=0"]
    if quick:
        sets += [f"batch_size={batch}", "train.num_workers=0", "train.sample_every=-1", "train.log_every=1",
                 "train.progress=false"]
    return sets


def lightcnn_sets(data: Path, size: int, steps: int, seed: int) -> list[str]:
    """LightCNN-9 from scratch as the benchmarks train it (configs/recognizer/synth-pretrain.yaml with
    these sets): AdamW 1e-3, the lr / 10 at 70% of `steps`, no dropout, `size` px input. SGD from
    scratch stays at ln(N) far beyond the few hundred steps a CPU run affords."""
    return [f"data.train={data}", "data.eval=none", f"data.size={size}", f"train.seed={seed}",
            f"train.steps={steps}", "optim.name=adamw", "optim.lr=0.001", "optim.official_lr_groups=false",
            "net.dropout=0", "optim.gamma=0.1", f"optim.step_size={max(1, round(0.7 * steps))}",
            "train.channels_last=true", "train.sample_every=-1"]


class Stages:
    """Trains (or reuses, or takes as given) the models of one benchmark run; `records` and `seconds`
    say what each stage did, for the benchmark's JSON."""

    def __init__(self, runs: Path, reuse: bool, benchmark: str) -> None:
        self.runs, self.reuse, self.benchmark = runs, reuse, benchmark
        self.records: dict[str, dict[str, Any]] = {}
        self.seconds: dict[str, float] = {}

    def given(self, stage: str, path: Path, file_name: str) -> Path:
        """A model file named on the command line (the file, or the run folder holding `file_name`)."""
        p = path / file_name if path.is_dir() else path
        if not p.is_file():
            raise SystemExit(f"--{stage} {path}: no such file; give a {file_name} or the run folder holding it")
        record: dict[str, Any] = {"file": str(p), "reused": True, "given": True}
        config = p.parent / "config.yaml"
        if config.is_file():
            data = read_yaml(config)
            record.update(steps=data.get("train", {}).get("steps"), batch_size=data.get("batch_size"))
        self.records[stage] = record
        return p

    def train(self, stage: str, recipe: Path, sets: list[str], export_key: str = "generator") -> Path:
        """Train `recipe` with `sets`; returns the exported file: `recognizer.pt` for a recognizer
        recipe, else the file `task.export` names `export_key` (generator, identity_sampler)."""
        import hfr.recognizer.task  # noqa: F401  (registers the `recognizer` task; the others are entry points)
        from hfr.engine.loop import train
        from hfr.engine.task import get_task

        done = self.runs / stage / "done.json"
        if self.reuse and done.is_file():
            record = json.loads(done.read_text(encoding="utf-8"))
            if record.get("sets") == sets and Path(record["file"]).is_file():
                print(f"{stage}: reusing {record['file']}", flush=True)
                self.records[stage] = {**record, "reused": True}
                return Path(record["file"])
        model = read_yaml(recipe)["model"]
        task_cls = get_task(model)
        cfg: Any = load_config(task_cls.config_class, recipe, sets)
        task = task_cls()
        print(f"training {stage}: {recipe.relative_to(ROOT)} for {cfg.train.steps} steps", flush=True)
        t = time.perf_counter()
        result = train(task, cfg, recipe=stage, runs_root=self.runs)
        run_dir = Path(result["run_dir"])
        meta = {"steps": result["step"], "benchmark": self.benchmark}
        if model == "recognizer":
            path = run_dir / "recognizer.pt"
            task.export(path, meta=meta)
        else:
            path = Path(task.export(run_dir, meta)[export_key])
        seconds = round(time.perf_counter() - t, 1)
        print(f"  {stage}: {result['step']} steps in {seconds:.0f} s -> {path}", flush=True)
        record = {"recipe": str(recipe.relative_to(ROOT)), "sets": sets, "steps": int(result["step"]),
                  "batch_size": cfg.batch_size, "file": str(path), "train_seconds": seconds}
        atomic_write_text(done, json.dumps(record, indent=2) + "\n")
        self.records[stage] = {**record, "reused": False}
        self.seconds[f"train {stage}"] = seconds
        return path


@torch.no_grad()
def frontalize(gen: LoadedGenerator, images: torch.Tensor, seed: int, chunk: int = 128) -> torch.Tensor:
    """Images in [0, 1] decoded by DR-GAN at the 0-degree pose bin with one fixed z (drawn from `seed`)."""
    g = gen.generator
    z1 = g.noise(1, torch.Generator().manual_seed(seed), images.device)
    outs = []
    for k in range(0, len(images), chunk):
        x = images[k:k + chunk]
        if gen.channels == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        f, _ = g.encode(x * 2 - 1)
        pose = torch.full((len(f),), gen.bin_of(0.0), dtype=torch.long)
        y = (g.decode(f, pose, z1.expand(len(f), -1)).float() * 0.5 + 0.5).clamp(0, 1)
        outs.append(y.expand(-1, 3, -1, -1) if y.shape[1] == 1 else y)
    return torch.cat(outs) if outs else images[:0]
