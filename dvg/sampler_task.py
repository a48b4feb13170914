"""The `dvg-sampler` task: train DVG-Face's identity sampler F_s, a VAE over recognizer features.

F_s's encoder maps the unit-norm feature F(x) of a VIS face to a posterior N(mu, diag exp(logvar))
over a latent code; its decoder maps the code back to a unit-norm identity feature. After
training, decoding n ~ N(0, I) gives identities of new subjects, which DVG-Face's generator
turns into NIR-VIS pairs. The released code ships only a pretrained decoder (ID_net.py) and not
its training, so the objective is the standard VAE one in `dvg.losses.identity_sampler_loss`
(squared error of unit features + `kl_weight` x KL).

The recognizer F is frozen: every training image is embedded once at build time (rank by rank)
and the task trains on the features, so a step costs only the two MLPs. `evaluate` reports the
reconstruction cosine on the training features and the mean cosine between sampled identities
(diversity: near 0 for distinct identities, near 1 when the sampler has collapsed) next to the
same figure for the real features.

`hfr train-generator --config configs/dvg/synth-identity-sampler.yaml` writes
`identity_sampler.pt` (an `hfr-generator/1` file of method `dvg-sampler`: the sampler's
weights, its sizes and the recognizer's fingerprint) into the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dvg.losses import identity_sampler_loss
from dvg.models import IdentitySampler
from hfr.artifacts import save_generator_file
from hfr.data.datasets import ShuffleBatchSampler
from hfr.data.manifest import read_training_rows
from hfr.engine.task import TrainContext
from hfr.engine.trainconfig import AdamConfig, TrainConfig
from hfr.errors import ConfigError

METHOD = "dvg-sampler"


@dataclass
class SamplerData:
    """Which faces F_s learns identities from, and the recognizer F that embeds them."""

    train: str = ""  #: manifest (or folder) of a large VIS set
    split: str = "train"  #: rows of this split ("" = every row)
    modalities: list[str] = field(default_factory=lambda: ["vis"])  #: modalities used ([] = all)
    recognizer: str = ""  #: recognizer.pt (or run folder) of the frozen F


@dataclass
class SamplerNet:
    """F_s's sizes."""

    latent_dim: int = 256  #: latent code size (the released decoder: 256)
    width: float = 1.0  #: MLP width multiplier (1 = the released 256-1024-1024-512-256 decoder)


@dataclass
class IdentitySamplerConfig:
    """A `dvg-sampler` recipe."""

    model: str = "dvg-sampler"
    batch_size: int = 256
    kl_weight: float = 0.01  #: weight of the KL term (see dvg.losses.identity_sampler_loss)
    eval_samples: int = 1000  #: identities sampled to measure diversity
    data: SamplerData = field(default_factory=SamplerData)
    net: SamplerNet = field(default_factory=SamplerNet)
    #: Adam (our choice: the training of F_s is not released)
    optim: AdamConfig = field(default_factory=lambda: AdamConfig(lr=1e-3, beta1=0.9))
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Raise ConfigError naming the key of an impossible value."""
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2, got {self.batch_size}")
        if self.kl_weight < 0 or self.optim.lr <= 0:
            raise ConfigError("kl_weight must be >= 0 and optim.lr > 0")
        if self.net.latent_dim < 1 or self.net.width <= 0:
            raise ConfigError("net.latent_dim must be >= 1 and net.width > 0")
        if self.eval_samples < 2:
            raise ConfigError(f"eval_samples must be >= 2, got {self.eval_samples}")


def mean_pairwise_cosine(features: torch.Tensor) -> float:
    """Mean cosine between different rows of `features` (unit-normalised here)."""
    f = F.normalize(features.float(), dim=1)
    n = len(f)
    gram = f @ f.T
    return float((gram.sum() - gram.diagonal().sum()) / (n * (n - 1)))


class IdentitySamplerTask:
    """Trains F_s on the frozen recognizer's features (module docstring)."""

    config_class = IdentitySamplerConfig
    artifact_description = "a DVG-Face identity sampler (F_s)"

    def build(self, cfg: IdentitySamplerConfig, ctx: TrainContext) -> None:
        """Embed the training faces with F once; build F_s and Adam."""
        from hfr.embed import embed_manifest
        from hfr.recognizer.export import load_recognizer

        self.cfg, self.ctx = cfg, ctx
        if not cfg.data.recognizer:
            raise ConfigError(
                "data.recognizer: the frozen recognizer F is not set; e.g. --set "
                "data.recognizer=runs/recognizer-synth-pretrain/latest/recognizer.pt"
            )
        rows = read_training_rows(
            cfg.data.train,
            cfg.data.split,
            cfg.data.modalities,
            example="data/webface",
            why="F_s learns a distribution of identities and needs at least 2",
        )
        recognizer = load_recognizer(cfg.data.recognizer, device=ctx.device)
        self.recognizer_fingerprint = recognizer.fingerprint
        feats = torch.from_numpy(embed_manifest(recognizer, rows, batch_size=256, num_workers=ctx.num_workers))
        self.features = feats.to(ctx.device)
        self.ctx.logger.info(
            "identity sampler: %d features (%d-d) of %d subjects from %s",
            len(feats),
            feats.shape[1],
            len(rows.subjects()),
            rows.source,
        )
        self.sampler = IdentitySampler(feature_dim=feats.shape[1], latent_dim=cfg.net.latent_dim, width=cfg.net.width)
        self.model = ctx.wrap_model(self.sampler)
        self.optimizer = cfg.optim.make(self.sampler.parameters())
        batch_sampler = ShuffleBatchSampler(
            len(feats), min(cfg.batch_size, len(feats)), seed=ctx.seed, rank=ctx.rank, world_size=ctx.world_size
        )
        self.loader = DataLoader(TensorDataset(torch.arange(len(feats))), batch_sampler=batch_sampler)

    def train_loader(self) -> DataLoader:
        """Indices of training features, reshuffled every epoch."""
        return self.loader

    def train_step(self, batch: list[torch.Tensor], step: int) -> dict[str, Any]:
        """One Adam step on the VAE objective."""
        f = self.features[batch[0]]
        self.sampler.train()
        f_hat, mu, logvar = self.model(f, generator=self.ctx.generator)
        parts = identity_sampler_loss(f, f_hat, mu, logvar, kl_weight=self.cfg.kl_weight)
        self.optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        self.optimizer.step()
        return {"loss": parts["total"].detach(), "loss_rec": parts["rec"].detach(), "loss_kl": parts["kl"].detach()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Reconstruction cosine (posterior means) and diversity of sampled identities vs real ones."""
        self.sampler.eval()
        try:
            f = self.features[: min(len(self.features), 4096)]
            recon = self.sampler(f, sample=False)[0]
            gen = torch.Generator(device=self.features.device).manual_seed(self.ctx.seed)
            samples = self.sampler.sample(self.cfg.eval_samples, generator=gen, device=self.features.device)
        finally:
            self.sampler.train()
        return {
            "recon_cos": float(F.cosine_similarity(recon, F.normalize(f, dim=1)).mean()),
            "sample_mean_cos": mean_pairwise_cosine(samples),
            "real_mean_cos": mean_pairwise_cosine(f[: self.cfg.eval_samples]),
        }

    def eval_metrics(self) -> set[str]:
        """The names `evaluate` returns."""
        return {"recon_cos", "sample_mean_cos", "real_mean_cos"}

    def state_dict(self) -> dict:
        """F_s and Adam."""
        return {"sampler": self.sampler.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        self.sampler.load_state_dict(state["sampler"])
        self.optimizer.load_state_dict(state["optimizer"])

    def export(self, run_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write identity_sampler.pt into `run_dir`."""
        path = Path(run_dir) / "identity_sampler.pt"
        config = {
            "feature_dim": self.sampler.feature_dim,
            "latent_dim": self.sampler.latent_dim,
            "width": float(self.cfg.net.width),
            "recognizer_fingerprint": self.recognizer_fingerprint,
        }
        save_generator_file(
            path,
            METHOD,
            config,
            {"sampler": self.sampler.state_dict()},
            {"train": str(self.cfg.data.train), **(meta or {})},
        )
        return {"identity_sampler": path}


def load_identity_sampler(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[IdentitySampler, dict]:
    """(F_s in eval mode, its config) from an identity_sampler.pt; another file is an error naming it."""
    from hfr.artifacts import GeneratorFileError, load_generator_file

    p = Path(path)
    payload = load_generator_file(p / "identity_sampler.pt" if p.is_dir() else p, METHOD)
    c = payload["config"]
    try:
        sampler = IdentitySampler(int(c["feature_dim"]), int(c["latent_dim"]), float(c["width"]))
        sampler.load_state_dict(payload["modules"]["sampler"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise GeneratorFileError(
            f"{path}: identity sampler file does not fit its own config "
            f"({type(exc).__name__}); it is corrupt or was edited"
        ) from None
    return sampler.eval().to(device), dict(c)
