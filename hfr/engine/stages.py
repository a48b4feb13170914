"""Train a recipe as a named, reusable stage; render a SynthFace recipe unless its data is there.

A pipeline (`hfr quickstart`, the accuracy benchmarks) trains several models in a row. `Stages`
trains each one through the library, as `hfr train-recognizer` / `hfr train-generator` do: the
recipe's `model:` names the task (`hfr.engine.task.get_task`), the recipe and its `--set`s are
loaded into the task's `config_class`, `hfr.engine.loop.train` runs it and the task's `export`
writes its files. Each stage then leaves a `done.json` (recipe, sets, steps, files, seconds);
with `reuse`, a later run whose stage has the same recipe and sets takes those files instead of
training again. A stage's record also holds its learning curve (`hfr.engine.runlog.learning_curve`:
each in-training evaluation against images seen and training seconds), so a benchmark can plot
its figure of interest against budget.

    stages = Stages(Path("runs/cross_modal/runs"), reuse=True, meta={"benchmark": "cross_modal"})
    recognizer = stages.train("lightcnn-vis", recipe, ["train.steps=600", ...])     # recognizer.pt
    sampler = stages.train("sampler", recipe2, sets, export_key="identity_sampler")  # identity_sampler.pt
    stages.records["lightcnn-vis"]     # what the benchmark's JSON records

Library code: it logs progress (logger `hfr.engine.stages`, level INFO) and raises HFRErrors.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfr.config import configs_dir, load_config, read_model_name, read_yaml
from hfr.data.manifest import MANIFEST_NAME
from hfr.errors import ConfigError, DataError
from hfr.fileio import atomic_write_text

log = logging.getLogger(__name__)

DONE_FILE = "done.json"


def render_synth(
    recipe: str | Path, data: str | Path, subjects: int, size: int, seed: int, workers: int = 2
) -> tuple[Path, bool, float]:
    """(manifest path, rendered now?, seconds): the manifest at `data` (a folder or a .csv) when it
    exists, else the SynthFace preset recipe (configs/data/synth-*.yaml) with these sizes rendered
    into the folder `data` with `workers` threads (the output does not depend on them)."""
    from hfr.data.synth import SynthConfig, validate_config, write_preset

    data = Path(data)
    manifest = data if data.suffix == ".csv" else data / MANIFEST_NAME
    if manifest.is_file():
        return manifest, False, 0.0
    if data.suffix == ".csv":
        raise DataError(
            f"{data}: manifest not found; give a dataset folder (rendered there when absent) "
            f"or an existing manifest.csv"
        )
    cfg = load_config(
        SynthConfig, recipe, [f"subjects={subjects}", f"size={size}", f"seed={seed}", f"workers={workers}"]
    )
    validate_config(cfg)
    t = time.perf_counter()
    log.info(
        "rendering SynthFace %s (%d subjects, %d px, seed %d) into %s",
        cfg.preset,
        cfg.subjects,
        cfg.size,
        cfg.seed,
        data,
    )
    write_preset(cfg, data)
    return data / MANIFEST_NAME, True, round(time.perf_counter() - t, 1)


def recipe_label(recipe: str | Path) -> str:
    """How records name a recipe: relative to the checkout (`configs/dvg/synth-nirvis.yaml`) when it is
    one of its recipes, else the path as given."""
    path = Path(recipe)
    try:
        return str(path.resolve().relative_to(configs_dir().parent))
    except (ValueError, ConfigError):
        return str(path)


@dataclass
class StageRun:
    """What one stage gave: its exported files and how it got them.

    Attributes:
        stage: the stage's name.
        files: {artifact name: file} as the task's `export` returned them (`recognizer`,
            `generator`, `identity_sampler`, ...).
        file: the stage's main file (`files[export_key]`).
        run_dir: the run folder it trained in.
        steps: steps trained.
        reused: True when an earlier run's files were taken (`done.json`), nothing trained.
        logs: the last logged means of the training (empty when reused).
        task: the trained task (its models still in memory); None when reused.
    """

    stage: str
    files: dict[str, Path]
    file: Path
    run_dir: Path
    steps: int
    reused: bool
    logs: dict[str, float] = field(default_factory=dict)
    task: Any = None


class Stages:
    """Trains (or reuses, or takes as given) the models of one pipeline run.

    Args:
        runs: the folder of the runs: stage `s` trains into `runs/s/<timestamp>/` and records
            itself in `runs/s/done.json` (unless `run` is given a `run_dir`).
        reuse: take a stage's files from its `done.json` when the recipe and sets are the same.
        meta: extra provenance written into every exported file (e.g. {"benchmark": "cross_modal"}).

    `records` (stage -> JSON-able dict) and `seconds` ("train <stage>" -> seconds) say what each
    stage did, for a benchmark's JSON.
    """

    def __init__(self, runs: str | Path, reuse: bool = False, meta: dict[str, Any] | None = None) -> None:
        self.runs, self.reuse, self.meta = Path(runs), reuse, dict(meta or {})
        self.records: dict[str, dict[str, Any]] = {}
        self.seconds: dict[str, float] = {}

    def given(self, stage: str, path: str | Path, file_name: str) -> Path:
        """A model file named by the user (the file, or the run folder holding `file_name`); DataError when
        there is none. Its record says so, with the training's steps, batch size and seed when the run
        folder's config.yaml is beside it."""
        path = Path(path)
        p = path / file_name if path.is_dir() else path
        if not p.is_file():
            raise DataError(f"{stage}: {path}: no such file; give a {file_name} or the run folder holding it")
        record: dict[str, Any] = {"file": str(p), "reused": True, "given": True, "run_dir": str(p.parent)}
        config = p.parent / "config.yaml"
        if config.is_file():
            data = read_yaml(config)
            section = data.get("train")
            train = section if isinstance(section, dict) else {}
            record.update(steps=train.get("steps"), batch_size=data.get("batch_size"), seed=train.get("seed"))
        self.records[stage] = record
        return p

    def train(self, stage: str, recipe: str | Path, sets: list[str], export_key: str | None = None) -> Path:
        """Train `recipe` with `sets` as stage `stage` (or reuse it); returns its main exported file:
        `files[export_key]`, by default recognizer.pt for a recognizer recipe, else generator.pt."""
        return self.run(stage, recipe, sets, export_key=export_key).file

    def run(
        self,
        stage: str,
        recipe: str | Path,
        sets: list[str],
        *,
        export_key: str | None = None,
        run_dir: str | Path | None = None,
        export_dir: str | Path | None = None,
    ) -> StageRun:
        """Train `recipe` with `sets` as stage `stage`, export, write done.json; or reuse an earlier run.

        Args:
            stage: the stage's name: its folder under `runs` and the key of its record.
            recipe: the recipe YAML (its `model:` names the task).
            sets: `--set` overrides, in order (part of what `reuse` compares).
            export_key: which exported file is the stage's main one (default: `recognizer` for a
                recognizer recipe, else `generator`).
            run_dir: train in this folder (done.json goes into it) instead of `runs/<stage>/<timestamp>/`.
            export_dir: where the task exports its files (default the run folder).
        """
        from hfr.engine.loop import train
        from hfr.engine.runlog import learning_curve
        from hfr.engine.task import get_task

        recipe = Path(recipe)
        label = recipe_label(recipe)
        model = read_model_name(recipe, sets)
        key = export_key or ("recognizer" if model == "recognizer" else "generator")
        done = (Path(run_dir) if run_dir is not None else self.runs / stage) / DONE_FILE
        if self.reuse and done.is_file():
            earlier = self._reusable(stage, done, label, sets, key)
            if earlier is not None:
                return earlier
        task_cls = get_task(model)
        config_class = getattr(task_cls, "config_class", None)
        if config_class is None:
            raise ConfigError(f"{recipe}: task {model!r} has no config_class; it cannot be trained from a recipe")
        cfg: Any = load_config(config_class, recipe, sets)
        task = task_cls()
        log.info("training %s: %s for %d steps", stage, label, cfg.train.steps)
        t = time.perf_counter()
        result = train(task, cfg, recipe=stage, runs_root=self.runs, run_dir=run_dir)
        folder = Path(result["run_dir"])
        meta = {"steps": result["step"], **self.meta}
        files = _export(task, model, Path(export_dir) if export_dir is not None else folder, meta)
        if key not in files:
            raise ConfigError(
                f"{recipe}: task {model!r} exported {', '.join(files) or 'nothing'}, not {key!r}; "
                f"name one of those as the stage's file"
            )
        seconds = round(time.perf_counter() - t, 1)
        log.info("  %s: %d steps in %.0f s -> %s", stage, result["step"], seconds, files[key])
        record = {
            "recipe": label,
            "sets": list(sets),
            "steps": int(result["step"]),
            "batch_size": getattr(cfg, "batch_size", None),
            "file": str(files[key]),
            "files": {k: str(v) for k, v in files.items()},
            "run_dir": str(folder),
            "train_seconds": seconds,
            "train_eval": _plain(result.get("eval") or {}),
            "curve": _plain(learning_curve(folder)),
        }
        atomic_write_text(done, json.dumps(record, indent=2) + "\n")
        self.records[stage] = {**record, "reused": False}
        self.seconds[f"train {stage}"] = seconds
        logs = {k: float(v) for k, v in (result.get("logs") or {}).items()}
        return StageRun(stage, files, files[key], folder, int(result["step"]), False, logs, task)

    def _reusable(self, stage: str, done: Path, label: str, sets: list[str], key: str) -> StageRun | None:
        """The run `done` records when it trained the same recipe with the same sets and its files exist."""
        try:
            record = json.loads(done.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s); training the stage again", done, exc)
            return None
        files = {k: Path(v) for k, v in (record.get("files") or {"": record.get("file", "")}).items()}
        main = Path(record.get("file", ""))
        if (
            record.get("sets") != list(sets)
            or record.get("recipe", label) != label
            or not all(p.is_file() for p in [main, *files.values()])
        ):
            return None
        log.info("%s: reusing %s", stage, main)
        self.records[stage] = {**record, "reused": True}
        files = {k: v for k, v in files.items() if k} or {key: main}
        return StageRun(stage, files, main, Path(record.get("run_dir", main.parent)), int(record.get("steps", 0)), True)


def _export(task: Any, model: str, folder: Path, meta: dict[str, Any]) -> dict[str, Path]:
    """{artifact: file} that `task.export(folder, meta)` wrote (the task contract's export)."""
    if not callable(getattr(task, "export", None)):
        raise ConfigError(
            f"task {model!r} ({type(task).__name__}) has no export(run_dir, meta); a stage needs the files it writes"
        )
    return {k: Path(v) for k, v in task.export(folder, meta).items()}


def _plain(value: Any) -> Any:
    """Numbers of an evaluation as plain floats (tensors and numpy scalars included), for JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
