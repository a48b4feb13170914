"""Tiny recipes of every registered task, for the plug-in contract tests (tests/engine/test_task_contract.py).

Each task has one or more variants: a recipe file from configs/, `--set` overrides that make it
tiny (32 px, narrow networks, small batches), and the log key that must fall over `steps` steps.
A new method adds its variants to `VARIANTS`; the contract test fails for a registered task
that has none. `write_contract_data(root)` renders the small datasets and frozen networks the
recipes point at (`{root}` in a set is replaced by that folder).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pattern_data import write_patterns

from hfr.artifacts import save_generator_file
from hfr.config import load_config
from hfr.data.synth import SynthConfig, write_preset
from hfr.engine.task import get_task
from hfr.engine.trainconfig import TrainConfig
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer

ROOT = Path(__file__).resolve().parents[1]

#: What every variant sets: CPU, no workers, no bar, no in-training evaluation, log every step.
QUIET = [
    "train.num_workers=0",
    "train.progress=false",
    "train.eval_every=-1",
    "train.best_metric=null",
    "train.sample_every=0",
    "train.log_every=1",
    "train.device=cpu",
    "train.amp=off",
    "train.channels_last=false",
]


@dataclass(frozen=True)
class Variant:
    """One tiny configuration of a task for the contract tests."""

    task: str  #: the registered task name (`model:`)
    name: str  #: the variant's test id
    recipe: str  #: the recipe file, relative to the repository root
    sets: tuple[str, ...]  #: overrides making it tiny; `{root}` is the contract data folder
    falling: str  #: the log key whose mean over the last steps must lie below its first steps'
    steps: int = 20  #: steps of the learning check
    margin: float = 0.02  #: how far below the first steps' mean the last steps' mean must be
    extra: tuple[str, ...] = field(default=())  #: more overrides for the learning check only

    def config(self, root: Path, steps: int, more: tuple[str, ...] = ()) -> object:
        """The resolved config of this variant for `steps` steps, data under `root`."""
        task_cls = get_task(self.task)
        sets = [s.replace("{root}", str(root)) for s in (*self.sets, *QUIET, *more)] + [f"train.steps={steps}"]
        return load_config(task_cls.config_class, ROOT / self.recipe, sets)


#: DVG-Face at 32 px, width 0.125, 4 pairs a step, with the contract data's F and F_s.
DVG_TINY = (
    "data.train={root}/nirvis",
    "data.recognizer={root}/recognizer.pt",
    "data.identity_sampler={root}/identity_sampler.pt",
    "data.size=32",
    "net.width=0.125",
    "batch_size=4",
)

VARIANTS: list[Variant] = [
    Variant(
        "recognizer",
        "recognizer",
        "configs/recognizer/synth-pretrain.yaml",
        (
            "data.train={root}/patterns",
            "data.eval=none",
            "data.size=32",
            "batch_size=16",
            "net.dropout=0",
            "optim.name=adamw",
            "optim.lr=0.001",
            "optim.weight_decay=0",
            "augment.crop_p=0",
        ),
        falling="loss_ce",
        steps=40,
        margin=0.15,
    ),
    Variant(
        "drgan",
        "drgan",
        "configs/drgan/synth-multipie.yaml",
        (
            "data.train={root}/multipie",
            "data.eval=none",
            "data.size=32",
            "net.width=0.25",
            "batch_size=16",
            "loss.l1_weight=1",
            "loss.identity_weight=1",
            "data.recognizer={root}/recognizer.pt",
            "augment.flip_p=0",
        ),
        falling="loss_d_id",
        steps=24,
        margin=0.05,
    ),
    Variant(
        "drgan-cnn",
        "drgan-cnn",
        "configs/drgan/synth-multipie-cnn.yaml",
        ("data.train={root}/multipie", "data.eval=none", "data.size=32", "net.width=0.25", "batch_size=16"),
        falling="loss_ce",
        steps=24,
        margin=0.05,
    ),
    Variant(
        "drgan",
        "drgan-multi",
        "configs/drgan/synth-multipie-multi.yaml",
        (
            "data.train={root}/multipie",
            "data.eval=none",
            "data.size=32",
            "net.width=0.25",
            "batch_size=16",
            "net.multi_image=2",
            "loss.l1_weight=1",
            "data.recognizer={root}/recognizer.pt",
            "loss.switch_every=2",
            "loss.d_skip_accuracy=0.9",
            "augment.flip_p=0.5",
        ),
        falling="loss_d_id",
        steps=24,
        margin=0.05,
    ),
    Variant(
        "dvg-sampler",
        "dvg-sampler",
        "configs/dvg/synth-identity-sampler.yaml",
        ("data.train={root}/patterns", "data.recognizer={root}/recognizer.pt", "batch_size=16", "net.width=0.25"),
        falling="loss_rec",
        steps=20,
        margin=0.05,
    ),
    Variant(
        "dvg",
        "dvg",
        "configs/dvg/synth-nirvis.yaml",
        (*DVG_TINY, "optim.lr=0.001"),
        falling="loss_pix",
        steps=20,
        margin=0.02,
    ),
    Variant(
        "dvg",
        "dvg-variational-unpaired",
        "configs/dvg/synth-nirvis.yaml",
        (
            *DVG_TINY,
            "net.deterministic=false",
            "data.unpaired={root}/patterns",
            "data.unpaired_batch=3",
            "optim.lr=0.001",
        ),
        falling="loss_pix",
        steps=20,
        margin=0.02,
    ),
    Variant(
        "tsgan",
        "tsgan",
        "configs/tsgan/synth-occluded.yaml",
        (
            "data.train={root}/occluded",
            "data.split=",
            "data.recognizer={root}/recognizer.pt",
            "data.size=32",
            "net.width=0.125",
            "batch_size=4",
            "optim.lr=0.001",
            "net.d_conditional=true",
            # the paper's G_d (redraws the whole face): its pixel loss falls from a high start; with the
            # recipe's composite (only the occluder is G_d's) it starts near its floor and is too noisy
            "net.composite=false",
        ),
        falling="loss_pixel_d",
        steps=20,
        margin=0.02,
    ),
    Variant(
        "yaw",
        "yaw",
        "configs/judge/synth-yaw.yaml",
        (
            "data.train={root}/multipie",
            "data.eval={root}/multipie",
            "data.size=32",
            "net.widths=[8,16,32,32]",
            "batch_size=16",
            "optim.schedule=constant",
        ),
        falling="loss",
        steps=20,
        margin=0.01,
    ),
]


def variants_of(task: str) -> list[Variant]:
    """The variants of one task."""
    return [v for v in VARIANTS if v.task == task]


def write_contract_data(root: Path) -> Path:
    """Render the sets and frozen networks the variants point at into `root`; returns `root`.

    multipie (8 subjects), nirvis (6), occluded (4) at 32 px; patterns (8 subjects x 6 VIS);
    recognizer.pt (a LightCNN-9 at 32 px, gray, random weights: F for DVG-Face and TSGAN);
    identity_sampler.pt (an untrained F_s over its 256-d features).
    """
    from dvg.models import IdentitySampler

    root.mkdir(parents=True, exist_ok=True)
    write_preset(SynthConfig(preset="multipie", subjects=8, size=32, seed=0, workers=1), root / "multipie")
    write_preset(SynthConfig(preset="nirvis", subjects=6, size=32, seed=0, workers=1), root / "nirvis")
    write_preset(SynthConfig(preset="occluded", subjects=4, size=32, seed=0, workers=1), root / "occluded")
    write_patterns(root / "patterns", 8, 6)
    torch.manual_seed(0)
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1), root / "recognizer.pt")
    sampler = IdentitySampler(256, 256, width=0.25)
    save_generator_file(
        root / "identity_sampler.pt",
        "dvg-sampler",
        {"feature_dim": 256, "latent_dim": 256, "width": 0.25},
        {"sampler": sampler.state_dict()},
    )
    return root


def train_config(cfg: Any) -> TrainConfig:
    """The `train:` section of a resolved config."""
    train = cfg.train
    assert isinstance(train, TrainConfig)
    return train


def tensors_of(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(path, tensor) of every tensor inside nested dicts, lists and tuples (modules' state dicts included)."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, torch.nn.Module):
        yield from tensors_of(obj.state_dict(), prefix)
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from tensors_of(obj[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from tensors_of(v, f"{prefix}[{i}]")


def tensor_digest(t: torch.Tensor) -> str:
    """A digest of a tensor's dtype, shape and values (whatever its device and memory layout)."""
    c = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{c.dtype}|{tuple(c.shape)}".encode())
    h.update(c.reshape(-1).view(torch.uint8).numpy().tobytes() if c.numel() else b"")
    return h.hexdigest()


def state_digest(state: Any) -> str:
    """One digest of every tensor (and its path) in a nested state."""
    h = hashlib.sha256()
    for path, t in tensors_of(state):
        h.update(path.encode())
        h.update(tensor_digest(t).encode())
    return h.hexdigest()


RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def without_running_stats(state: Any) -> Any:
    """A nested state without BatchNorm running statistics (keys ending in running_mean/var, num_batches_tracked)."""
    if isinstance(state, dict):
        return {k: without_running_stats(v) for k, v in state.items() if not str(k).endswith(RUNNING_STATS)}
    if isinstance(state, (list, tuple)):
        return type(state)(without_running_stats(v) for v in state)
    return state
