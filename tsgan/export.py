"""TSGAN generator files: write G_d and G_f; load them back for `hfr deocclude`.

The file is an `hfr-generator/1` file (see `hfr.artifacts`) of method `tsgan`. Its
`config` holds what rebuilds both generators without the recipe (size, channels, width, MAM
settings, norm, dropout, composite) plus `f_mask` (whether G_f's attention takes the mask as
prior) and `batch_size` (the training batch size: the mask-attention modules mix samples of a
batch, so inference runs in batches of that size). The discriminators are not stored
(training checkpoints hold them). Another method's generator file is refused, naming what it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from hfr.artifacts import GeneratorFileError, fingerprint, load_generator_file, save_generator_file
from hfr.config import from_dict
from hfr.errors import ArgumentError
from hfr.safeload import load_weights_only
from tsgan.config import TSGANConfig
from tsgan.models import DeocclusionGenerator, FrontalizationGenerator

METHOD = "tsgan"


@dataclass
class LoadedTSGAN:
    """G_d and G_f ready for inference (eval mode) and what they were trained with."""

    g_d: DeocclusionGenerator
    g_f: FrontalizationGenerator
    width: float
    batch_size: int
    f_mask: bool
    fingerprint: str
    meta: dict[str, Any]

    @property
    def size(self) -> int:
        """Input/output image size S."""
        return self.g_d.size

    @property
    def channels(self) -> int:
        """Image channels C (3 RGB, 1 grayscale)."""
        return self.g_d.channels

    @property
    def device(self) -> torch.device:
        """Where the generators' weights are."""
        return next(self.g_d.parameters()).device

    #: What the generated-face quality protocol (`hfr.eval.generator`) can ask of TSGAN.
    protocol_tasks: ClassVar[tuple[str, ...]] = ("deocclude", "frontalize")

    def synthesize(
        self, task: str, images: torch.Tensor, masks: torch.Tensor, yaws: torch.Tensor, seed: int
    ) -> torch.Tensor:
        """x_d = G_d(x, M) for `deocclude`, x_f = G_f(x_d) for `frontalize`, of inputs (N, C, S, S) in
        [0, 1] and masks (N, 1, S, S); in batches of the training batch size (`run_generators`: the
        mask-attention module mixes a batch's samples). Yaws and seed are unused (G is deterministic)."""
        from hfr.nn.ranges import to_signed, to_unit
        from tsgan.deocclude import run_generators

        x_d, x_f = run_generators(self, to_signed(images.float()), masks.float(), frontalize=task == "frontalize")
        return to_unit((x_f if x_f is not None else x_d).float())

    def sample_pairs(self, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """TSGAN generates no NIR-VIS pairs."""
        raise ArgumentError("TSGAN generates no NIR-VIS pairs; its protocol tasks are deocclude and frontalize")


def _fingerprint(g_d: DeocclusionGenerator, g_f: FrontalizationGenerator, width: float) -> str:
    state = {
        **{f"g_d.{k}": v for k, v in g_d.state_dict().items()},
        **{f"g_f.{k}": v for k, v in g_f.state_dict().items()},
    }
    return fingerprint(METHOD, f"w{width:g}", g_d.size, g_d.channels, state)


def export_tsgan(
    g_d: DeocclusionGenerator,
    g_f: FrontalizationGenerator,
    path: str | os.PathLike,
    cfg: TSGANConfig,
    meta: dict[str, Any] | None = None,
) -> str:
    """Write G_d and G_f as a generator file atomically; returns its fingerprint."""
    n = cfg.net
    config = {
        "size": g_d.size,
        "channels": g_d.channels,
        "width": float(n.width),
        "mam": bool(n.mam),
        "prior": n.prior,
        "f_prior": n.f_prior,
        "norm": n.norm,
        "dropout": float(n.dropout),
        "attention_kernel": int(n.attention_kernel),
        "composite": bool(n.composite),
        "f_mask": bool(n.f_mask),
        "batch_size": int(cfg.batch_size),
    }
    fp = _fingerprint(g_d, g_f, float(n.width))
    save_generator_file(
        path, METHOD, config, {"g_d": g_d.state_dict(), "g_f": g_f.state_dict()}, {**(meta or {}), "fingerprint": fp}
    )
    return fp


def load_tsgan(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedTSGAN:
    """Load a TSGAN generator.pt (or a run folder holding one); another method's file is refused."""
    payload = load_generator_file(path, METHOD)
    c = payload["config"]
    try:
        common: dict[str, Any] = dict(
            size=int(c["size"]),
            channels=int(c["channels"]),
            width=float(c["width"]),
            mam=bool(c["mam"]),
            norm=str(c["norm"]),
            dropout=float(c["dropout"]),
            attention_kernel=int(c["attention_kernel"]),
        )
        g_d = DeocclusionGenerator(prior=str(c["prior"]), composite=bool(c["composite"]), **common)
        g_f = FrontalizationGenerator(prior=str(c["f_prior"] or c["prior"]), **common)
        g_d.load_state_dict(payload["modules"]["g_d"])
        g_f.load_state_dict(payload["modules"]["g_f"])
        batch_size, f_mask = int(c["batch_size"]), bool(c["f_mask"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise GeneratorFileError(
            f"{path}: TSGAN generator file does not fit its own config "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); it is corrupt or was edited"
        ) from None
    g_d.eval().to(device)
    g_f.eval().to(device)
    meta = dict(payload.get("meta", {}))
    return LoadedTSGAN(g_d, g_f, float(c["width"]), batch_size, f_mask, str(meta.get("fingerprint", "")), meta)


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike) -> str:
    """Write G_d and G_f of a `tsgan` training checkpoint as generator.pt (to measure a run at several
    budgets, as `benchmarks/occlusion.py` does for its learning curve); returns the fingerprint."""
    from tsgan.task import build_models_from

    ck = load_weights_only(checkpoint, "TSGAN training checkpoint")
    try:
        if not isinstance(ck.get("task"), dict) or "g_d" not in ck["task"]:
            raise KeyError("task.g_d")
        cfg = from_dict(TSGANConfig, ck["config"], where=str(checkpoint))
        models = build_models_from(cfg)
        models.g_d.load_state_dict(ck["task"]["g_d"])
        models.g_f.load_state_dict(ck["task"]["g_f"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise GeneratorFileError(
            f"{checkpoint}: not a TSGAN training checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None
    meta = {"method": METHOD, "checkpoint": os.fspath(checkpoint), "step": int(ck.get("step", 0))}
    return export_tsgan(models.g_d.eval(), models.g_f.eval(), path, cfg, meta)
