"""The training loop: `train(task, config, ...)` runs any registered Task to `train.steps` steps.

The engine owns the run folder, seeding, the device and distributed setup, the epoch and
batch position, logging (`metrics.jsonl`, `log.txt`, progress bar), evaluation and sample
hooks, checkpoints (atomic, rotated, `best.pt`) and exact resume; the task owns its models,
losses and update order (see `hfr.engine.task.Task`).

One step = one batch = one `train_step` call. After step s (counted from 1):
logs are written when s % log_every == 0; evaluation and samples when s % eval_every == 0 /
s % sample_every == 0; a checkpoint when s % checkpoint_every == 0; all of them at the last step.
Evaluation, sampling and DataLoader-iterator creation run with every RNG state preserved,
so they never change the training trajectory, and a run stopped after k steps and resumed
ends bit-identical (on CPU) to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from inspect import Parameter, signature
from pathlib import Path
from typing import Any

import torch

from hfr.config import to_dict, to_yaml
from hfr.engine.checkpoint import (
    CHECKPOINT_DIR,
    CheckpointError,
    CheckpointSaver,
    config_diff,
    find_resume_point,
    load_checkpoint,
    make_payload,
    resolve_resume_path,
    structure_diff,
)
from hfr.engine.distributed import (
    DistInfo,
    any_true,
    broadcast_object,
    gather_objects,
    init_distributed,
    mean_over_ranks,
    shutdown_distributed,
)
from hfr.engine.progress import TrainProgress, format_logs, progress_enabled
from hfr.engine.rundir import DEFAULT_RUNS_ROOT, new_run_dir, run_dirs
from hfr.engine.runlog import MetricsWriter, RunLogFile
from hfr.engine.seeding import (
    derive_seed,
    get_rng_state,
    preserved_rng,
    seed_everything,
    set_deterministic,
    set_rng_state,
)
from hfr.engine.task import TrainContext, get_task, move_to
from hfr.engine.trainconfig import TrainConfig
from hfr.errors import ConfigError, DataError, HFRError, WriteError
from hfr.fileio import atomic_write_text, remove_stale_temporaries

log = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"
SAMPLES_DIR = "samples"


class TrainingDiverged(HFRError):
    """A logged loss became NaN or infinite; the last good checkpoint is left untouched."""


def _float_logs(logs: Any, step: int) -> dict[str, float]:
    if not isinstance(logs, Mapping):
        raise HFRError(
            f"train_step returned {type(logs).__name__} at step {step}; it must return a dict of "
            f"scalar logs such as {{'loss': 0.7}}"
        )
    out = {}
    for k, v in logs.items():
        try:
            out[str(k)] = float(v.detach().float().item() if torch.is_tensor(v) else v)
        except (TypeError, ValueError, RuntimeError):
            raise HFRError(
                f"train_step log {k!r} at step {step} is {type(v).__name__}, not a scalar; return floats or 0-d tensors"
            ) from None
    return out


def _count_images(batch: Any) -> int:
    """The first dimension of the first tensor found in a batch (dict values, list items)."""
    if torch.is_tensor(batch):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, Mapping):
        for key in ("image", "images"):
            if key in batch and torch.is_tensor(batch[key]):
                return _count_images(batch[key])
        items: Iterable = batch.values()
    elif isinstance(batch, (list, tuple)):
        items = batch
    else:
        return 0
    for item in items:
        n = _count_images(item)
        if n:
            return n
    return 0


def _due(step: int, every: int, total: int, at_end: bool = True) -> bool:
    """True when a hook that runs every `every` steps (and at the end unless every < 0) runs after `step`."""
    if every < 0:
        return False
    return (every > 0 and step % every == 0) or (at_end and step == total)


def _set_epoch(obj: Any, epoch: int, start: int) -> int:
    """Call `obj.set_epoch(epoch[, start])`; returns the batches still to skip by hand."""
    fn = getattr(obj, "set_epoch", None)
    if not callable(fn):
        return start
    try:
        params: Mapping[str, Parameter] = signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    if "start" in params or any(p.kind == Parameter.VAR_KEYWORD for p in params.values()):
        fn(epoch, start=start)
        return 0
    fn(epoch)
    return start


class _Trainer:
    """One training run (the state `train` needs between its phases)."""

    def __init__(
        self,
        task: Any,
        config: Any,
        cfg: TrainConfig,
        info: DistInfo,
        recipe: str,
        run_dir: str | os.PathLike | None,
        runs_root: str | os.PathLike,
        resume: str | None,
    ) -> None:
        self.task = task
        self.config = config
        self.cfg = cfg
        self.info = info
        self.recipe = recipe
        self.run_dir_arg = run_dir
        self.runs_root = runs_root
        self.resume = resume
        self.step = 0
        self.epoch = 0
        self.pos = 0
        self.ckpt_path: Path | None = None
        self.last_logs: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}

    # ------------------------------------------------------------------ setup
    def _locate(self) -> tuple[Path, Path | None]:
        """(run folder, checkpoint to resume from); decided on rank 0."""
        if self.resume is None:
            run = Path(self.run_dir_arg) if self.run_dir_arg is not None else new_run_dir(self.recipe, self.runs_root)
            run.mkdir(parents=True, exist_ok=True)
            return run, None
        if self.resume == "auto":
            runs = run_dirs(self.recipe, self.runs_root)
            found_run, ckpt, skipped = find_resume_point(runs)
            for bad, why in skipped:
                log.warning("--resume auto: skipping %s, which does not load (%s)", bad, why)
            if found_run is None or ckpt is None:
                if skipped:
                    raise CheckpointError(
                        f"--resume auto: no checkpoint of {self.recipe!r} under {self.runs_root} loads "
                        f"({len(skipped)} unreadable, newest {skipped[0][0]}); start a new run without --resume"
                    )
                where = "none of its runs holds a checkpoint yet" if runs else "it has no run yet"
                log.warning("--resume auto: %s under %s: %s; starting a new run", self.recipe, self.runs_root, where)
                return self._fresh_run(), None
            if runs and found_run != runs[0]:
                log.warning(
                    "--resume auto: the newest run %s holds no checkpoint that loads; continuing %s", runs[0], found_run
                )
            return found_run, ckpt
        ckpt, run = resolve_resume_path(self.resume)
        return run, ckpt

    def _check_best_metric(self) -> None:
        """Refuse, before step 1, a `train.best_metric` that the task's evaluation will not produce.

        A task may declare `eval_metrics()`, the names its `evaluate()` returns under this config
        (an empty set when it evaluates nothing); without an `evaluate`, no metric can be chosen.
        """
        metric = self.cfg.best_metric
        if metric is None:
            return
        if not callable(getattr(self.task, "evaluate", None)):
            raise ConfigError(f"train.best_metric={metric!r}: this task has no evaluation; set train.best_metric=null")
        declared = getattr(self.task, "eval_metrics", None)
        if callable(declared):
            names = set(declared())
            if names and metric not in names:
                raise ConfigError(
                    f"train.best_metric={metric!r} is not among what this run evaluates "
                    f"({', '.join(sorted(names))}); pick one of those or null"
                )
            if not names:
                raise ConfigError(
                    f"train.best_metric={metric!r}: this run evaluates nothing; set the task's "
                    f"evaluation data (e.g. data.eval) or train.best_metric=null"
                )

    @contextlib.contextmanager
    def _stop_cleanly_on_write_failure(self) -> Iterator[None]:
        """A checkpoint that cannot be written stops training with a line naming the last complete one."""
        try:
            yield
        except WriteError as exc:
            last = (
                f"the last complete checkpoint is {self.saver.last}" if self.saver.last else "no checkpoint was written"
            )
            raise WriteError(
                f"{exc} Training stopped after step {self.step}; {last}; free space and continue with --resume auto"
            ) from None

    def _fresh_run(self) -> Path:
        run = Path(self.run_dir_arg) if self.run_dir_arg is not None else new_run_dir(self.recipe, self.runs_root)
        run.mkdir(parents=True, exist_ok=True)
        return run

    def _context(self, run_dir: Path) -> TrainContext:
        info, cfg = self.info, self.cfg
        cuda = info.device.type == "cuda"
        amp = cfg.amp in ("auto", "bf16") and cuda
        if cfg.amp == "bf16" and not cuda:
            log.info("train.amp=bf16 on %s: autocast is CUDA-only here, training in fp32", info.device)
        channels_last = cuda if cfg.channels_last == "auto" else bool(cfg.channels_last)
        generator = torch.Generator(device=info.device)
        generator.manual_seed(derive_seed(cfg.seed, info.rank, 1))
        name = getattr(self.config, "model", None) or self.recipe
        return TrainContext(
            device=info.device,
            rank=info.rank,
            world_size=info.world_size,
            local_rank=info.local_rank,
            amp=amp,
            channels_last=channels_last,
            generator=generator,
            seed=cfg.seed,
            num_workers=cfg.num_workers,
            run_dir=run_dir,
            logger=logging.getLogger(f"hfr.task.{name}"),
            train_cfg=cfg,
        )

    def _restore(self, ckpt_path: Path, ctx: TrainContext) -> dict | None:
        data = load_checkpoint(ckpt_path, map_location=self.info.device)
        diffs = structure_diff(self.task.state_dict(), data["task"])
        if diffs:
            raise CheckpointError(
                f"{ckpt_path}: the checkpoint does not fit this task's models/optimizers "
                f"(another architecture or config?):\n  "
                + "\n  ".join(diffs)
                + "\nresume with the run's own config.yaml, or start a new run"
            )
        changed = config_diff(to_dict(self.config), data.get("config") or {})
        if changed:
            raise ConfigError(
                f"{ckpt_path}: the config differs from the checkpoint's outside the train: "
                f"section:\n  "
                + "\n  ".join(changed[:20])
                + f"\nresume with {ckpt_path.parent.parent / CONFIG_NAME} (only train.* may change) "
                f"or start a new run"
            )
        self.task.load_state_dict(data["task"])
        self.step, self.epoch, self.pos = int(data["step"]), int(data["epoch"]), int(data["batch_in_epoch"])
        rng = data.get("rng") or []
        if int(data.get("world_size", 1)) == self.info.world_size and len(rng) == self.info.world_size:
            set_rng_state(rng[self.info.rank], ctx.generator)
        else:
            log.warning(
                "checkpoint was written by %s process(es), this run has %d: random streams are reseeded "
                "and the data order restarts at epoch %d",
                data.get("world_size"),
                self.info.world_size,
                self.epoch + 1,
            )
            self.epoch, self.pos = self.epoch + 1, 0
        log.info("resumed from %s at step %d (epoch %d, batch %d)", ckpt_path, self.step, self.epoch, self.pos)
        return data.get("best")

    # ------------------------------------------------------------------ helpers
    def _epoch_iter(self, loader: Iterable, epoch: int, start: int) -> Iterator:
        """An iterator over `loader` for `epoch`, positioned after its first `start` batches."""
        remaining = start
        batch_sampler = getattr(loader, "batch_sampler", None)
        sampler = getattr(loader, "sampler", None)
        if batch_sampler is not None and callable(getattr(batch_sampler, "set_epoch", None)):
            remaining = _set_epoch(batch_sampler, epoch, start)
        elif sampler is not None and callable(getattr(sampler, "set_epoch", None)):
            remaining = _set_epoch(sampler, epoch, start)
        else:
            remaining = _set_epoch(loader, epoch, start)
        with preserved_rng():
            # the iterator draws its workers' base seed from torch's RNG: take it from a stream of
            # (seed, rank, epoch) so workers differ per epoch and training's RNG is untouched
            torch.default_generator.manual_seed(derive_seed(self.cfg.seed, self.info.rank, epoch, 2))
            it = iter(loader)
        if remaining:
            log.warning(
                "the training loader cannot start mid-epoch; loading and skipping %d batch(es) to "
                "resume (use a sampler with set_epoch(epoch, start))",
                remaining,
            )
            for _ in range(remaining):
                if next(it, None) is None:
                    break
        return it

    def _payload(self, ctx: TrainContext) -> dict | None:
        """The checkpoint dict on rank 0 (None elsewhere); every rank contributes its RNG state."""
        rngs = gather_objects(get_rng_state(ctx.generator), self.info)
        if not self.info.is_main:
            return None
        return make_payload(
            task_state=self.task.state_dict(),
            step=self.step,
            epoch=self.epoch,
            batch_in_epoch=self.pos,
            rng=rngs,
            config=to_dict(self.config),
            world_size=self.info.world_size,
            best=self.saver.best,
        )

    def _diverged(self, logs: dict[str, float], run_dir: Path) -> TrainingDiverged:
        bad = next(((k, v) for k, v in logs.items() if not math.isfinite(v)), None)
        what = f"loss {bad[0]!r} became {bad[1]}" if bad else "a loss became non-finite on another rank"
        if self.saver.last is not None:
            good = f"the last good checkpoint is {self.saver.last}"
            resume = f", or resume from it with --resume {self.saver.last}"
        else:
            good = f"no checkpoint was written yet (run folder {run_dir})"
            resume = ""
        return TrainingDiverged(
            f"{what} at step {self.step}; {good}; lower the learning rate, check the data "
            f"for broken images, or add gradient clipping{resume}"
        )

    def _write_sample(self, run_dir: Path, ctx: TrainContext) -> Path | None:
        from hfr.viz import image_grid, save_image, tensor_to_images

        with preserved_rng(ctx.generator), torch.no_grad():
            grid = self.task.sample_grid()
        if grid is None:
            return None
        if not torch.is_tensor(grid) or grid.ndim != 4:
            raise HFRError(
                f"sample_grid returned {type(grid).__name__} "
                f"{tuple(grid.shape) if torch.is_tensor(grid) else ''}; expected a (N, C, H, W) tensor"
            )
        images = tensor_to_images(grid, value_range=(0.0, 1.0))  # the Task contract: sample grids are in [0, 1]
        ncol = int(getattr(self.task, "sample_columns", 0) or math.ceil(math.sqrt(len(images))))
        path = run_dir / SAMPLES_DIR / f"step-{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(path, image_grid(images, ncol))
        return path

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        info, cfg = self.info, self.cfg
        located = self._locate() if info.is_main else None
        run_dir, ckpt_path = broadcast_object(located, info)
        run_dir = Path(run_dir)
        set_deterministic(cfg.deterministic)
        package = type(self.task).__module__.split(".")[0]
        with RunLogFile(run_dir, extra=(package,)) if info.is_main else _Null():
            return self._run(run_dir, ckpt_path)

    def _run(self, run_dir: Path, ckpt_path: Path | None) -> dict[str, Any]:
        info, cfg = self.info, self.cfg
        ctx = self._context(run_dir)
        seed_everything(cfg.seed, 0)  # identical model init on every rank
        self.task.build(self.config, ctx)
        self._check_best_metric()
        seed_everything(cfg.seed, info.rank)
        best = self._restore(Path(ckpt_path), ctx) if ckpt_path is not None else None
        self.saver = CheckpointSaver(
            run_dir / CHECKPOINT_DIR, cfg.keep_checkpoints, cfg.best_metric, cfg.best_mode, best
        )
        resumed_from = str(ckpt_path) if ckpt_path is not None else None
        metrics = MetricsWriter(run_dir)
        if info.is_main:
            remove_stale_temporaries(run_dir)
            remove_stale_temporaries(run_dir / CHECKPOINT_DIR)
            atomic_write_text(run_dir / CONFIG_NAME, to_yaml(self.config))
            if ckpt_path is not None:
                dropped = metrics.truncate_after(self.step)
                if dropped:
                    log.info("dropped %d metrics line(s) logged after step %d", dropped, self.step)
            log.info(
                "training %s: steps %d -> %d on %s (world size %d, amp %s), run folder %s",
                self.recipe,
                self.step,
                cfg.steps,
                info.device,
                info.world_size,
                "bf16" if ctx.amp else "off",
                run_dir,
            )
        if self.step >= cfg.steps:
            log.info("nothing to do: the checkpoint is at step %d and train.steps is %d", self.step, cfg.steps)
            return self._result(run_dir, resumed_from)

        loader = self.task.train_loader()
        per_step = getattr(self.task, "images_per_step", None)
        has_eval = callable(getattr(self.task, "evaluate", None))
        has_samples = callable(getattr(self.task, "sample_grid", None))
        window: dict[str, list[float]] = defaultdict(list)
        window_images, window_time = 0, 0.0
        # the learning curve's x axes: images and seconds of training steps (a resumed run restarts the
        # seconds at 0 and counts the images before the checkpoint as step x images per step)
        seen_images = self.step * (int(per_step()) if callable(per_step) else cfg_batch(self.config)) * info.world_size
        train_seconds = 0.0
        total = cfg.steps
        it = self._epoch_iter(loader, self.epoch, self.pos)
        fresh_iter = self.pos == 0
        bar = TrainProgress(total, self.step, progress_enabled(cfg.progress, info.is_main), self.recipe)
        try:
            with bar:
                while self.step < total:
                    t0 = time.perf_counter()
                    try:
                        batch = next(it)
                    except StopIteration:
                        if fresh_iter:
                            raise DataError(
                                f"the training loader yielded no batch in epoch {self.epoch}; give "
                                f"the task more data or smaller batches"
                            ) from None
                        self.epoch, self.pos = self.epoch + 1, 0
                        it = self._epoch_iter(loader, self.epoch, 0)
                        fresh_iter = True
                        continue
                    fresh_iter = False
                    self.pos += 1
                    batch = move_to(batch, info.device)
                    images = int(per_step()) if callable(per_step) else _count_images(batch)
                    logs = _float_logs(self.task.train_step(batch, self.step), self.step)
                    self.step += 1
                    step_time = time.perf_counter() - t0
                    window_time += step_time
                    train_seconds += step_time
                    window_images += images * info.world_size
                    seen_images += images * info.world_size
                    local_bad = not all(math.isfinite(v) for v in logs.values())
                    if any_true(local_bad, info):
                        err = self._diverged(logs if local_bad else {}, run_dir)
                        log.error("%s", err)
                        raise err
                    for k, v in logs.items():
                        window[k].append(v)
                    rate = window_images / window_time if window_time > 0 else None
                    bar.update(self.step, rate, logs)

                    if _due(self.step, cfg.log_every, total):
                        means = mean_over_ranks({k: sum(v) / len(v) for k, v in window.items()}, info)
                        self.last_logs = means
                        if info.is_main:
                            record = {
                                "step": self.step,
                                "epoch": self.epoch,
                                "images/s": round(rate, 2) if rate else None,
                                **means,
                            }
                            metrics.write(record)
                            log.info(
                                "step %d/%d epoch %d %s %s",
                                self.step,
                                total,
                                self.epoch,
                                f"{rate:,.0f} img/s" if rate else "",
                                format_logs(means, 8),
                            )
                        window.clear()
                        window_images, window_time = 0, 0.0

                    payload: dict | None = None
                    gathered = False  # _payload is collective: call it at most once per step on every rank
                    checkpoint_due = _due(self.step, cfg.checkpoint_every, total)
                    if has_eval and _due(self.step, cfg.eval_every, total):
                        with preserved_rng(ctx.generator):
                            evals = self.task.evaluate() or {}
                        evals = broadcast_object({str(k): float(v) for k, v in evals.items()}, info)
                        self.last_eval = evals
                        if info.is_main and evals:
                            metrics.write(
                                {
                                    "step": self.step,
                                    "epoch": self.epoch,
                                    "images": seen_images,
                                    "train_seconds": round(train_seconds, 2),
                                    **{f"eval/{k}": v for k, v in evals.items()},
                                }
                            )
                            log.info("eval step %d: %s", self.step, format_logs(evals, 12))
                        if cfg.best_metric is not None and self.saver.improved(evals):
                            payload, gathered = self._payload(ctx), True
                            if payload is not None:
                                with self._stop_cleanly_on_write_failure():
                                    self.saver.save_best(payload, evals[cfg.best_metric])
                            else:
                                self.saver.best = {
                                    "metric": cfg.best_metric,
                                    "value": evals[cfg.best_metric],
                                    "step": self.step,
                                }
                    if has_samples and info.is_main and _due(self.step, cfg.sample_every, total):
                        path = self._write_sample(run_dir, ctx)
                        if path is not None:
                            log.info("samples %s", path)
                    if checkpoint_due:
                        payload = payload if gathered else self._payload(ctx)
                        if payload is not None:
                            payload["best"] = self.saver.best
                            with self._stop_cleanly_on_write_failure():
                                self.saver.save(payload)
        finally:
            del it
        return self._result(run_dir, resumed_from)

    def _result(self, run_dir: Path, resumed_from: str | None) -> dict[str, Any]:
        return {
            "run_dir": str(run_dir),
            "step": self.step,
            "epoch": self.epoch,
            "checkpoint": str(self.saver.last) if self.saver.last else None,
            "best": self.saver.best,
            "logs": dict(self.last_logs),
            "eval": dict(self.last_eval),
            "resumed_from": resumed_from,
        }


class _Null:
    """A do-nothing context manager (log.txt is written by rank 0 only)."""

    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def train(
    task: Any,
    config: Any,
    *,
    train_cfg: TrainConfig | None = None,
    recipe: str | None = None,
    run_dir: str | os.PathLike | None = None,
    runs_root: str | os.PathLike = DEFAULT_RUNS_ROOT,
    resume: str | None = None,
) -> dict[str, Any]:
    """Train `task` (a Task instance or a registered name) on the recipe's whole `config`.

    Args:
        task: a Task, or the registered name of one (`get_task(name)()` is called).
        config: the recipe's resolved config (a dataclass or a dict); given to `task.build`,
            saved as `config.yaml` and inside every checkpoint.
        train_cfg: the TrainConfig; default `config.train`.
        recipe: the recipe name: `runs_root/<recipe>/<timestamp>/` and `--resume auto` look-ups;
            default `config.model`.
        run_dir: use this folder instead of a new timestamped one (ignored when resuming).
        runs_root: the folder holding every recipe's runs (default `runs`).
        resume: None (new run), "auto" (newest run of the recipe, its newest checkpoint; a new
            run when there is none) or a checkpoint file / run folder. Training continues in
            the checkpoint's run folder until `train_cfg.steps`.

    Returns:
        {"run_dir", "step", "epoch", "checkpoint" (newest), "best", "logs" (last logged means),
         "eval" (last evaluation), "resumed_from"}.

    Raises:
        TrainingDiverged when a log becomes NaN/inf; CheckpointError / ConfigError when a
        checkpoint is unreadable or does not fit; ConfigError for a bad TrainConfig.
    """
    cfg = train_cfg if train_cfg is not None else getattr(config, "train", None)
    if cfg is None and isinstance(config, Mapping) and isinstance(config.get("train"), TrainConfig):
        cfg = config["train"]
    if not isinstance(cfg, TrainConfig):
        raise ConfigError("train(): no TrainConfig; give train_cfg= or a config with a `train:` section")
    cfg.validate()
    if isinstance(task, str):
        task = get_task(task)()
    name = recipe or getattr(config, "model", None) or (config.get("model") if isinstance(config, Mapping) else None)
    info = init_distributed(cfg.device)
    try:
        result = _Trainer(task, config, cfg, info, str(name or "run"), run_dir, runs_root, resume).run()
    except BaseException:
        shutdown_distributed(info, clean=False)
        raise
    shutdown_distributed(info)
    return result


def cfg_batch(config: Any) -> int:
    """The recipe's `batch_size` (0 when it has none): images per step of a task without images_per_step."""
    return int(getattr(config, "batch_size", 0) or 0)
