"""DR-GAN generator files: write G (G_enc + G_dec) with its pose bins; load it back for rotation.

The file is an `hfr-generator/1` file (see `hfr.artifacts`) of method `drgan`; its
`config` holds size, channels, width, N_z, multi_image and the yaw bins, so `load_generator`
rebuilds G without the recipe. D is not stored (training checkpoints hold it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from drgan.config import DRGANConfig
from drgan.models import Discriminator, Generator
from hfr.artifacts import GeneratorFileError, fingerprint, load_generator_file, save_generator_file
from hfr.config import from_dict
from hfr.safeload import load_weights_only

METHOD = "drgan"


@dataclass
class LoadedGenerator:
    """A DR-GAN generator ready for inference (eval mode) and what it was trained with."""

    generator: Generator
    yaw_bins: list[float]
    width: float
    fingerprint: str
    meta: dict[str, Any]

    @property
    def size(self) -> int:
        """Input/output image size S."""
        return self.generator.size

    @property
    def channels(self) -> int:
        """Image channels."""
        return self.generator.channels

    def bin_of(self, yaw: float) -> int:
        """The index of the pose bin nearest to `yaw` (degrees)."""
        return min(range(len(self.yaw_bins)), key=lambda i: abs(self.yaw_bins[i] - yaw))

    #: What the generated-face quality protocol (`hfr.eval.generator`) can ask of DR-GAN.
    protocol_tasks: ClassVar[tuple[str, ...]] = ("rotate", "frontalize")

    @torch.inference_mode()
    def synthesize(
        self, task: str, images: torch.Tensor, masks: torch.Tensor, yaws: torch.Tensor, seed: int
    ) -> torch.Tensor:
        """G_dec(G_enc(x), c, z): each input (N, C, S, S) in [0, 1] rotated to its yaw's nearest pose bin
        (`rotate` and `frontalize` alike), with z from a generator seeded by `seed`; masks are unused."""
        from drgan.rotate import pose_bins_of, prepare_images
        from hfr.nn.ranges import to_signed, to_unit

        g = self.generator
        device = next(g.parameters()).device
        x = to_signed(prepare_images(images.to(device), self.size, self.channels))
        f, _ = g.encode(x)
        pose = torch.as_tensor(pose_bins_of(self, [float(y) for y in yaws]), device=device)
        z = g.noise(len(f), torch.Generator(device=device).manual_seed(seed), device)
        return to_unit(g.decode(f, pose, z).float()).cpu()

    def sample_pairs(self, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """DR-GAN generates no NIR-VIS pairs."""
        from hfr.errors import ArgumentError

        raise ArgumentError("DR-GAN generates no NIR-VIS pairs; its protocol tasks are rotate and frontalize")


def export_generator(
    generator: Generator, path: str | os.PathLike, cfg: DRGANConfig, meta: dict[str, Any] | None = None
) -> str:
    """Write `generator` as generator.pt atomically; returns its fingerprint."""
    config = {
        "size": generator.size,
        "channels": generator.channels,
        "width": float(cfg.net.width),
        "noise_dim": generator.noise_dim,
        "multi_image": int(cfg.net.multi_image),
        "yaw_bins": [float(b) for b in cfg.data.yaw_bins],
    }
    state = generator.state_dict()
    fp = fingerprint(METHOD, f"w{cfg.net.width:g}", generator.size, generator.channels, state)
    save_generator_file(path, METHOD, config, {"generator": state}, {**(meta or {}), "fingerprint": fp})
    return fp


def load_generator(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedGenerator:
    """Load a DR-GAN generator.pt (another method's file is refused, naming what it is)."""
    payload = load_generator_file(path, METHOD)
    c = payload["config"]
    try:
        g = Generator(
            int(c["size"]),
            len(c["yaw_bins"]),
            int(c["noise_dim"]),
            int(c["channels"]),
            float(c["width"]),
            int(c["multi_image"]) >= 2,
        )
        g.load_state_dict(payload["modules"]["generator"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise GeneratorFileError(
            f"{path}: DR-GAN generator file does not fit its own config "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); it is corrupt or was edited"
        ) from None
    g.eval().to(device)
    meta = dict(payload.get("meta", {}))
    return LoadedGenerator(
        g, [float(b) for b in c["yaw_bins"]], float(c["width"]), str(meta.get("fingerprint", "")), meta
    )


def load_training_checkpoint(
    checkpoint: str | os.PathLike,
) -> tuple[DRGANConfig, Generator, Discriminator, list[str]]:
    """(config, G, D, training identities) of a `drgan` training checkpoint, G and D in eval mode."""
    ck = load_weights_only(checkpoint, "DR-GAN training checkpoint")
    cfg = from_dict(DRGANConfig, ck["config"], where=str(checkpoint))
    state = ck["task"]
    subjects = list(state["subjects"])
    g, d = cfg.build_models(len(subjects))
    g.load_state_dict(state["generator"])
    d.load_state_dict(state["discriminator"])
    return cfg, g.eval(), d.eval(), subjects


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike) -> str:
    """Write the G of a training checkpoint as generator.pt (to measure a run at several budgets)."""
    cfg, g, _, subjects = load_training_checkpoint(checkpoint)
    meta = {"method": METHOD, "checkpoint": os.fspath(checkpoint), "subjects": len(subjects)}
    return export_generator(g, path, cfg, meta=meta)
