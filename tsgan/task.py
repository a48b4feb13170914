"""The `tsgan` training task: two-stage de-occlusion then frontalization on the engine.

One engine step on a batch of B occluded faces (`data.per_subject` images of each of
B / per_subject subjects, `IdentityBalancedSampler`), images in [-1, 1]:

1. x_d = G_d(x_occ, M) (de-occluded), x_f = G_f(x_d, M) (frontalized; G_f gets the mask only
   as its MAMs' prior, `net.f_mask`). With `net.end_to_end` (default) the stage-2 losses reach
   G_d through x_d; otherwise x_d is detached before G_f.
2. The generators' terms (`tsgan.losses`, weighted by `loss.*` = λ1..λ6): `pixel_d` = L1(x_d,
   x_clean), `pixel_f` = L1(x_f, x_frontal); `symmetry` of x_f; `tv` of x_d plus x_f; through
   the frozen recognizer F (`data.recognizer`; images mapped to [0, 1] and `recognizer.prepare`d):
   `identity_d` / `identity_f` between F(x_d) and F(x_clean), F(x_f) and F(x_frontal), and the
   dual triplet loss `triplet_d` / `triplet_f` with the subject labels (positives and negatives
   from the real targets' features); `adversarial_d` / `adversarial_f` from D_d(x_d), D_f(x_f).
   One Adam step on G_d and G_f together.
3. With `loss.adversarial` > 0, one Adam step on D_d and D_f: D_d tells x_clean from x_d, D_f
   x_frontal from x_f (conditional on [x_occ, M] and on G_f's input with `net.d_conditional`,
   so real and generated pairs share the condition, as in pix2pix).

Without `data.recognizer` the identity and triplet terms are off (a log line says so). The
mask-attention modules mix samples of one batch, so the sample grid runs G on the whole first
batch; `hfr deocclude` runs inputs in batches of the training batch size for the same reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from hfr.data.datasets import IdentityBalancedSampler
from hfr.engine.task import TrainContext, parameter_summary
from hfr.nn.gan import adversarial_d, adversarial_g, l1
from hfr.nn.ranges import to_signed, to_unit
from tsgan.config import TSGANConfig
from tsgan.data import TSGANDataset, training_rows
from tsgan.losses import dual_triplet_loss, identity_loss, symmetry_loss, total_variation, weighted_total
from tsgan.models import TSGANModels, build_tsgan

METHOD = "tsgan"


def build_models_from(cfg: TSGANConfig) -> TSGANModels:
    """`build_tsgan` with the recipe's `data` and `net` settings."""
    n = cfg.net
    return build_tsgan(
        cfg.data.size,
        n.width,
        cfg.data.channels,
        n.mam,
        n.prior,
        n.f_prior,
        n.norm,
        n.dropout,
        n.attention_kernel,
        n.composite,
        n.d_width,
        n.d_norm,
        n.d_conditional,
    )


class TSGANTask:
    """TSGAN training (module docstring)."""

    config_class = TSGANConfig
    artifact_description = "a TSGAN de-occlusion/frontalization generator"
    sample_columns = 6

    def build(self, cfg: TSGANConfig, ctx: TrainContext) -> None:
        """Occluded data, the frozen F (when set), G_d, G_f, D_d, D_f and their optimizers."""
        self.cfg, self.ctx = cfg, ctx
        rows = training_rows(cfg.data.train, cfg.data.split)
        self.dataset = TSGANDataset(
            rows,
            cfg.data.size,
            cfg.data.channels,
            synthesize_masks=cfg.data.synthesize_masks,
            mask_threshold=cfg.data.mask_threshold,
        )
        self.subjects = len(rows.subjects())
        sampler = IdentityBalancedSampler(
            rows,
            cfg.batch_size // cfg.data.per_subject,
            cfg.data.per_subject,
            seed=ctx.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
        self.loader = DataLoader(
            self.dataset, batch_sampler=sampler, num_workers=ctx.num_workers, persistent_workers=ctx.num_workers > 0
        )
        self.recognizer = None
        w = cfg.loss
        if cfg.data.recognizer:
            from hfr.recognizer.export import load_recognizer

            self.recognizer = load_recognizer(cfg.data.recognizer, device=ctx.device)
            self.recognizer.model.requires_grad_(False)
        elif w.identity > 0 or w.triplet > 0:
            self.ctx.logger.info(
                "data.recognizer is empty: the identity and dual triplet terms are off; set it to a "
                "recognizer.pt (e.g. runs/recognizer-synth-pretrain/latest/recognizer.pt) to use them"
            )
        models = build_models_from(cfg)
        self.G_d, self.G_f, self.D_d, self.D_f = models.g_d, models.g_f, models.d_d, models.d_f
        self.g_d, self.g_f = ctx.wrap_model(self.G_d), ctx.wrap_model(self.G_f)
        self.d_d, self.d_f = ctx.wrap_model(self.D_d), ctx.wrap_model(self.D_f)
        self.opt_g = cfg.optim.make([*self.G_d.parameters(), *self.G_f.parameters()])
        self.opt_d = cfg.optim.make([*self.D_d.parameters(), *self.D_f.parameters()])
        self._preview: dict[str, torch.Tensor] | None = None
        ctx.logger.info(
            "tsgan: %d occluded images of %d subjects at %d px; parameters: %s",
            len(self.dataset),
            self.subjects,
            cfg.data.size,
            parameter_summary(G_d=self.G_d, G_f=self.G_f, D_d=self.D_d, D_f=self.D_f),
        )

    # ------------------------------------------------------------------ engine API
    def train_loader(self) -> DataLoader:
        """Batches of `data.per_subject` occluded faces of each of batch_size / per_subject subjects."""
        return self.loader

    def images_per_step(self) -> int:
        """Occluded images per step."""
        return self.cfg.batch_size

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """F's features (B, D) of images in [-1, 1] (differentiable in the images; F stays frozen)."""
        assert self.recognizer is not None
        x = to_unit(images.float())
        return self.recognizer.model(self.recognizer.prepare(x)).float()

    def _d_cond(
        self, x_occ: torch.Tensor, mask: torch.Tensor, f_input: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if not self.cfg.net.d_conditional:
            return None, None
        return torch.cat([x_occ, mask.to(x_occ.dtype)], dim=1), f_input.detach()

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Any]:
        """One generator step on G_d + G_f, then one discriminator step on D_d + D_f (module docstring)."""
        ctx, cfg, w = self.ctx, self.cfg, self.cfg.loss
        x, mask, clean, frontal = batch["image"], batch["mask"], batch["clean"], batch["frontal"]
        labels = batch["label"]
        self.G_d.train()
        self.G_f.train()
        with ctx.autocast():
            x_d = self.g_d(x, mask)
            f_in = x_d if cfg.net.end_to_end else x_d.detach()
            x_f = self.g_f(f_in, mask if cfg.net.f_mask else None)
        parts: dict[str, torch.Tensor] = {"pixel_d": l1(x_d, clean), "pixel_f": l1(x_f, frontal)}
        if w.symmetry > 0:
            parts["symmetry"] = symmetry_loss(x_f)
        if w.tv > 0:
            parts["tv"] = total_variation(x_d, w.tv_kind) + total_variation(x_f, w.tv_kind)
        if self.recognizer is not None and (w.identity > 0 or w.triplet > 0):
            with torch.no_grad():
                r_c, r_g = self.features(clean), self.features(frontal)
            f_d, f_f = self.features(x_d), self.features(x_f)
            if w.identity > 0:
                parts["identity_d"] = identity_loss(f_d, r_c, w.identity_kind)
                parts["identity_f"] = identity_loss(f_f, r_g, w.identity_kind)
            if w.triplet > 0:
                dual = dual_triplet_loss(f_d, f_f, labels, r_c, r_g, labels, w.triplet_mining)
                parts["triplet_d"], parts["triplet_f"] = dual["d"], dual["f"]
        cond_d, cond_f = self._d_cond(x, mask, f_in)
        if w.adversarial > 0:
            with ctx.autocast():
                parts["adversarial_d"] = adversarial_g(self.d_d(x_d, cond_d), w.adv_kind)
                parts["adversarial_f"] = adversarial_g(self.d_f(x_f, cond_f), w.adv_kind)
        loss_g = weighted_total(parts, w)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        logs: dict[str, Any] = {f"loss_{k}": v.detach() for k, v in parts.items()}
        logs["loss_g"] = loss_g.detach()
        if w.adversarial > 0:
            with ctx.autocast():
                loss_d = adversarial_d(
                    self.d_d(clean, cond_d), self.d_d(x_d.detach(), cond_d), w.adv_kind
                ) + adversarial_d(self.d_f(frontal, cond_f), self.d_f(x_f.detach(), cond_f), w.adv_kind)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            logs["loss_d"] = loss_d.detach()
        if self._preview is None and ctx.is_main:
            self._preview = {k: batch[k].detach().cpu() for k in ("image", "mask", "clean", "frontal")}
        return logs

    def state_dict(self) -> dict:
        """G_d, G_f, D_d, D_f and both optimizers."""
        return {
            "g_d": self.G_d.state_dict(),
            "g_f": self.G_f.state_dict(),
            "d_d": self.D_d.state_dict(),
            "d_f": self.D_f.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        self.G_d.load_state_dict(state["g_d"])
        self.G_f.load_state_dict(state["g_f"])
        self.D_d.load_state_dict(state["d_d"])
        self.D_f.load_state_dict(state["d_f"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """Rows of [input, mask, de-occluded, frontalized, clean target, frontal target] in [0, 1].

        G_d and G_f run in eval mode on the whole first training batch (the MAMs mix across the
        batch); the first (up to) 4 faces are shown.
        """
        c, s = self.cfg.data.channels, self.cfg.data.size
        if self._preview is None:
            return torch.zeros(1, c, s, s)
        dev = self.ctx.device
        x, mask, clean, frontal = (self._preview[k].to(dev) for k in ("image", "mask", "clean", "frontal"))
        self.G_d.eval()
        self.G_f.eval()
        try:
            x_d = self.G_d(x, mask)
            x_f = self.G_f(x_d, mask if self.cfg.net.f_mask else None)
        finally:
            self.G_d.train()
            self.G_f.train()
        k = min(4, len(x))
        m = to_signed(mask).expand(-1, c, -1, -1)
        rows = [t[:k].float() for t in (x, m, x_d, x_f, clean, frontal)]
        return to_unit(torch.stack(rows, dim=1).flatten(0, 1).cpu())

    def export(self, run_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write generator.pt (G_d and G_f, with what `tsgan.export.load_tsgan` needs) into `run_dir`."""
        from tsgan.export import export_tsgan

        path = Path(run_dir) / "generator.pt"
        info = {
            "train": str(self.cfg.data.train),
            "subjects": self.subjects,
            "recognizer_fingerprint": self.recognizer.fingerprint if self.recognizer is not None else "",
            **(meta or {}),
        }
        export_tsgan(self.G_d, self.G_f, path, self.cfg, info)
        return {"generator": path}
