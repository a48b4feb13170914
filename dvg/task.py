"""The `dvg` training task: DVG-Face's dual generator on paired NIR-VIS images.

One engine step on a batch of B same-subject (NIR, VIS) pairs (`NirVisPairSampler`):

1. f~ = F(x_V): the frozen recognizer's unit-norm feature of each VIS image, the identity of
   both reconstructions (as in the released code);
2. z_N = E_N(x_N), z_V = E_V(x_V) (sampled by reparameterisation in the variational form);
   x^_N = G(f~, z_N), x^_V = G(f~, z_V);
3. the generator's terms (`dvg.losses`, weighted by `loss.*`): `ort` (z_N and z_V orthogonal to
   f~), `kl` (variational form only), `pix` (L1 of the reconstructions), `pix_swap` (images
   decoded from another pair's f~ with this pair's attributes, to the real pair; "another" is a
   derangement of the batch positions drawn once per epoch as in the released code, or every step
   with `loss.swap_permutation: step`),
   `pix_sampled` and the sampled half of `ip` (images decoded from an identity f_s drawn from
   F_s, when `data.identity_sampler` is set), `ip` (pairwise identity preserving through F),
   `adv` (D_N and D_V); one Adam step on E_N, E_V, G;
4. with `loss.adv` > 0, one Adam step on D_N and D_V against the (detached) generated images.

Unpaired VIS (`data.unpaired`, e.g. the `webface` set F was trained on): the paper brings the
identities of large VIS data into the generator. Each step then also takes `data.unpaired_batch`
VIS images x_U of subjects without NIR images, drawn with a generator seeded by (seed, step) (so
a resumed run draws the same ones): f_U = F(x_U), z_U = E_V(x_U), x^_U = G(f_U, z_U) with the
VIS pixel target (`pix_unpaired`), and a NIR image G(f_U, z_N) with the attributes of the
paired batch's NIR images and no pixel target (there is no NIR image of that subject). Both
images join the `ort`, `kl`, `ip` (x^_U and the NIR image as a pair, target f_U) and `adv` terms
and D's fakes; the log shows the unpaired parts as `loss_*_unpaired`.

Subjects with only one modality are left out of paired training with a count in the log; no
paired subject is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from dvg.config import DVGConfig
from dvg.export import encode_attribute_codes, write_generator_file
from dvg.losses import angular_orthogonal, identity_preserving, kl_standard_normal, pair_l1, weighted_total
from dvg.models import DualGenerator, build_dvg
from hfr.data.datasets import ManifestDataset, NirVisPairSampler
from hfr.data.manifest import read_training_rows
from hfr.engine.seeding import derive_seed
from hfr.engine.task import TrainContext, parameter_summary
from hfr.errors import ConfigError, DataError
from hfr.nn.gan import adversarial_d, adversarial_g, l1
from hfr.recognizer.losses import random_derangement

METHOD = "dvg"
#: The stream number that separates the per-epoch swap derangement's seed from the run's other draws.
SWAP_STREAM = 0x5A9


class DVGTask:
    """DVG-Face generator training (module docstring)."""

    config_class = DVGConfig
    artifact_description = "a DVG-Face NIR-VIS pair generator"
    sample_columns = 6

    def build(self, cfg: DVGConfig, ctx: TrainContext) -> None:
        """Paired data, the frozen F (and F_s), E_N, E_V, G, D_N, D_V and their optimizers."""
        from hfr.recognizer.export import load_recognizer

        self.cfg, self.ctx = cfg, ctx
        if not cfg.data.recognizer:
            raise ConfigError(
                "data.recognizer: the frozen identity extractor F is not set; e.g. --set "
                "data.recognizer=runs/recognizer-synth-pretrain/latest/recognizer.pt"
            )
        rows = read_training_rows(
            cfg.data.train,
            cfg.data.split,
            ["nir", "vis"],
            example="data/nirvis",
            min_subjects=1,
            why="paired training needs NIR-VIS subjects",
        )
        self.recognizer = load_recognizer(cfg.data.recognizer, device=ctx.device)
        rec_dim = int(getattr(self.recognizer.model, "feature_dim", 0) or 0)
        if rec_dim and rec_dim != cfg.net.id_dim:
            raise ConfigError(
                f"data.recognizer {cfg.data.recognizer} gives {rec_dim}-d features but the generator's "
                f"identity size net.id_dim is {cfg.net.id_dim}; use a recognizer with "
                f"{cfg.net.id_dim}-d features or set net.id_dim={rec_dim}"
            )
        self.recognizer.model.requires_grad_(False)
        sampler = NirVisPairSampler(rows, cfg.batch_size, seed=ctx.seed, rank=ctx.rank, world_size=ctx.world_size)
        left_out = len(rows.subjects()) - len(sampler.subjects)
        if left_out:
            self.ctx.logger.warning(
                "%d of %d subjects have only one modality and are left out of paired training",
                left_out,
                len(rows.subjects()),
            )
        self.paired_subjects = len(sampler.subjects)
        self.pair_sampler = sampler
        dataset = ManifestDataset(rows, size=cfg.data.size, channels=3)
        self.loader = DataLoader(
            dataset, batch_sampler=sampler, num_workers=ctx.num_workers, persistent_workers=ctx.num_workers > 0
        )
        self._swap: tuple[tuple[int, int], torch.Tensor] | None = None  #: (epoch, b), its derangement
        models = build_dvg(
            cfg.data.size,
            cfg.net.width,
            cfg.net.deterministic,
            d_width=cfg.net.d_width,
            d_norm=cfg.net.d_norm,
            id_dim=cfg.net.id_dim,
        )
        self.G = models.generator
        self.D_nir, self.D_vis = models.disc_nir, models.disc_vis
        self.g_model = ctx.wrap_model(GeneratorStep(self.G))
        self.d_nir = ctx.wrap_model(self.D_nir)
        self.d_vis = ctx.wrap_model(self.D_vis)
        self.opt_g = cfg.optim.make(self.G.parameters())
        self.opt_d = cfg.optim.make([*self.D_nir.parameters(), *self.D_vis.parameters()])
        self.F_s = None
        if cfg.data.identity_sampler:
            from dvg.sampler_task import load_identity_sampler

            self.F_s, scfg = load_identity_sampler(cfg.data.identity_sampler, device=ctx.device)
            self.sampler_width = float(scfg["width"])
            if scfg.get("recognizer_fingerprint") not in (None, self.recognizer.fingerprint):
                self.ctx.logger.warning(
                    "the identity sampler was trained on another recognizer's features (%s, F is %s)",
                    scfg.get("recognizer_fingerprint"),
                    self.recognizer.fingerprint,
                )
        self.unpaired: ManifestDataset | None = None
        if cfg.data.unpaired:
            self.unpaired = self._unpaired_set(cfg)
            self.ctx.logger.info(
                "unpaired VIS: %d images of %d subjects without NIR images (%s)",
                len(self.unpaired.manifest),
                len(self.unpaired.manifest.subjects()),
                cfg.data.unpaired,
            )
        self._preview: dict[str, torch.Tensor] | None = None
        ctx.logger.info(
            "dvg: %d NIR-VIS subjects at %d px, %s attribute codes, F_s %s; parameters: %s",
            self.paired_subjects,
            cfg.data.size,
            "unit-norm" if cfg.net.deterministic else "variational",
            "on" if self.F_s is not None else "off",
            parameter_summary(
                E_N=self.G.encoder_nir,
                E_V=self.G.encoder_vis,
                decoder=self.G.decoder,
                D=nn.ModuleList([self.D_nir, self.D_vis]),
            ),
        )

    @staticmethod
    def _unpaired_set(cfg: DVGConfig) -> ManifestDataset:
        """The VIS rows of `data.unpaired` whose subjects have no NIR image there."""
        rows = read_training_rows(
            cfg.data.unpaired,
            cfg.data.unpaired_split,
            [],
            example="data/webface",
            min_subjects=1,
            why="unpaired training needs VIS images",
        )
        with_nir = {r.subject for r in rows if r.modality == "nir"}
        vis = rows.filter(lambda r: r.modality == "vis" and r.subject not in with_nir)
        if len(vis) == 0:
            raise DataError(
                f"data.unpaired {cfg.data.unpaired}: no VIS image of a subject without NIR images in "
                f"split {cfg.data.unpaired_split!r}; point it at a VIS-only set such as data/webface"
            )
        return ManifestDataset(vis, size=cfg.data.size, channels=3)

    def unpaired_batch(self, step: int) -> torch.Tensor:
        """The unpaired VIS images of one step (drawn from (seed, step), so resuming draws the same)."""
        assert self.unpaired is not None
        n = self.cfg.data.unpaired_batch or self.cfg.batch_size
        gen = torch.Generator().manual_seed(self.ctx.seed * 1_000_003 + step * 7919 + self.ctx.rank)
        idx = torch.randint(len(self.unpaired), (n,), generator=gen).tolist()
        return torch.stack([self.unpaired[i]["image"] for i in idx]).to(self.ctx.device)

    # ------------------------------------------------------------------ engine API
    def train_loader(self) -> DataLoader:
        """Batches [nir_0, vis_0, nir_1, vis_1, ...] of same-subject pairs."""
        return self.loader

    def identity(self, images: torch.Tensor) -> torch.Tensor:
        """F's unit-norm features of images in [0, 1] (differentiable in the images; F stays frozen)."""
        return F.normalize(self.recognizer.model(self.recognizer.prepare(images)).float(), dim=1)

    def swap_permutation(self, b: int, step: int) -> torch.Tensor:
        """The derangement of the b batch positions that `pix_swap` decodes with (`loss.swap_permutation`).

        "epoch" (the released code): one per epoch, drawn from (seed, epoch, b) so a resumed run draws
        the same; the epoch is step // batches per epoch. "step": a new one each step from the task's
        generator on the CPU (torch's seeded, checkpointed one on CUDA).
        """
        ctx = self.ctx
        if self.cfg.loss.swap_permutation == "step":
            return random_derangement(
                b, generator=ctx.generator if ctx.device.type == "cpu" else None, device=ctx.device
            )
        key = (step // max(1, len(self.loader)), b)
        if self._swap is None or self._swap[0] != key:
            gen = torch.Generator().manual_seed(derive_seed(ctx.seed, SWAP_STREAM, *key))
            self._swap = (key, random_derangement(b, generator=gen, device=ctx.device))
        return self._swap[1]

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Any]:
        """One generator step and one discriminator step (module docstring)."""
        ctx, w = self.ctx, self.cfg.loss
        x = batch["image"]
        x_n, x_v = x[0::2], x[1::2]
        b = len(x_v)
        self.G.train()
        with torch.no_grad():
            f = self.identity(x_v)
        f_swap = f_s = x_u = f_u = None
        if w.pix_swap > 0:
            f_swap = f[self.swap_permutation(b, step)]
        if self.F_s is not None:
            with torch.no_grad():
                f_s = self.F_s.sample(b, generator=ctx.generator, device=ctx.device)
        if self.unpaired is not None:
            x_u = self.unpaired_batch(step)
            with torch.no_grad():
                f_u = self.identity(x_u)
        with ctx.autocast():
            out = self.g_model(x_n, x_v, f, f_swap=f_swap, f_sampled=f_s, x_u=x_u, f_u=f_u, generator=ctx.generator)
        xh_n, xh_v = out["xh_n"], out["xh_v"]
        terms: dict[str, torch.Tensor] = {
            "ort": angular_orthogonal(out["z_n"], f) + angular_orthogonal(out["z_v"], f),
            "pix": pair_l1(xh_n, xh_v, x_n, x_v),
        }
        if out["logvar_n"] is not None and w.kl > 0:
            terms["kl"] = kl_standard_normal(out["mu_n"], out["logvar_n"]) + kl_standard_normal(
                out["mu_v"], out["logvar_v"]
            )
        ip = identity_preserving(self.identity(xh_n), self.identity(xh_v), f, w.ip_pair)["total"]
        if f_swap is not None:
            terms["pix_swap"] = pair_l1(out["xs_n"], out["xs_v"], x_n, x_v)
        if f_s is not None:
            sampled = (out["xf_n"], out["xf_v"])
            terms["pix_sampled"] = pair_l1(*sampled, x_n, x_v)
            ip = ip + identity_preserving(self.identity(sampled[0]), self.identity(sampled[1]), f_s, w.ip_pair)["total"]
        unpaired: dict[str, torch.Tensor] = {}
        fakes_u: tuple[torch.Tensor, torch.Tensor] | None = None
        if x_u is not None and f_u is not None:
            xu_n, xu_v = out["xu_n"], out["xu_v"]
            k = len(xu_n)
            fakes_u = (xu_n, xu_v)
            unpaired["pix_unpaired"] = l1(xu_v, x_u)
            unpaired["ort"] = angular_orthogonal(out["z_u"], f_u)
            if out["logvar_u"] is not None and w.kl > 0:
                unpaired["kl"] = kl_standard_normal(out["mu_u"], out["logvar_u"])
            unpaired["ip"] = identity_preserving(self.identity(xu_n), self.identity(xu_v[:k]), f_u[:k], w.ip_pair)[
                "total"
            ]
            if w.adv > 0:
                unpaired["adv"] = adversarial_g(self.d_nir(xu_n), w.adv_kind) + adversarial_g(
                    self.d_vis(xu_v), w.adv_kind
                )
        terms["ip"] = ip
        if w.adv > 0:
            terms["adv"] = adversarial_g(self.d_nir(xh_n), w.adv_kind) + adversarial_g(self.d_vis(xh_v), w.adv_kind)
        total_terms = dict(terms)
        for name, value in unpaired.items():
            total_terms[name] = total_terms[name] + value if name in total_terms else value
        loss_g = weighted_total(total_terms, w)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        logs: dict[str, Any] = {f"loss_{k}": v.detach() for k, v in terms.items()}
        logs.update(
            {f"loss_{k}" if k == "pix_unpaired" else f"loss_{k}_unpaired": v.detach() for k, v in unpaired.items()}
        )
        logs["loss_g"] = loss_g.detach()
        if w.adv > 0:
            loss_d = adversarial_d(self.d_nir(x_n), self.d_nir(xh_n.detach()), w.adv_kind) + adversarial_d(
                self.d_vis(x_v), self.d_vis(xh_v.detach()), w.adv_kind
            )
            if fakes_u is not None:
                loss_d = loss_d + (
                    adversarial_d(self.d_nir(x_n), self.d_nir(fakes_u[0].detach()), w.adv_kind)
                    + adversarial_d(self.d_vis(x_u), self.d_vis(fakes_u[1].detach()), w.adv_kind)
                )
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            logs["loss_d"] = loss_d.detach()
        if self._preview is None and ctx.is_main:
            self._preview = {"x_n": x_n[:4].detach().cpu(), "x_v": x_v[:4].detach().cpu(), "f": f[:4].detach().cpu()}
        return logs

    def state_dict(self) -> dict:
        """E_N, E_V, G, D_N, D_V and both optimizers."""
        return {
            "generator": self.G.state_dict(),
            "disc_nir": self.D_nir.state_dict(),
            "disc_vis": self.D_vis.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        self.G.load_state_dict(state["generator"])
        self.D_nir.load_state_dict(state["disc_nir"])
        self.D_vis.load_state_dict(state["disc_vis"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """Rows of [real NIR, real VIS, reconstructed NIR, VIS, a new identity's NIR, VIS] (first batch), in [0, 1].

        The new identity is drawn from F_s when set (else another pair's identity) and decoded
        with the row's own attribute codes (as the released gen_samples.py decodes with the codes of
        real images), so its two images are a generated pair with the real pair's pose and light.
        """
        if self._preview is None:
            return torch.zeros(1, 3, self.cfg.data.size, self.cfg.data.size)
        dev = self.ctx.device
        x_n, x_v, f = (self._preview[k].to(dev) for k in ("x_n", "x_v", "f"))
        self.G.eval()
        try:
            z_n, z_v = self.G.encode(x_n, "nir").z, self.G.encode(x_v, "vis").z
            gen = torch.Generator(device=dev).manual_seed(self.ctx.seed)
            if self.F_s is not None:
                f_new = self.F_s.sample(len(f), generator=gen, device=dev)
            else:
                f_new = f.roll(1, 0)
            rows = [
                x_n,
                x_v,
                self.G.decode(f, z_n, "nir"),
                self.G.decode(f, z_v, "vis"),
                self.G.decode(f_new, z_n, "nir"),
                self.G.decode(f_new, z_v, "vis"),
            ]
        finally:
            self.G.train()
        return torch.stack(rows, dim=1).flatten(0, 1).cpu()

    def attribute_codes(self) -> dict[str, torch.Tensor]:
        """The codes of real training pairs that generator.pt stores (`dvg.export.encode_attribute_codes`)."""
        pairs = self.pair_sampler
        return encode_attribute_codes(
            self.G, self.loader.dataset, pairs.first, pairs.second, self.ctx.seed, device=self.ctx.device
        )

    def export(self, run_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write generator.pt (E_N, E_V, G and, when used, F_s) into `run_dir`."""
        path = Path(run_dir) / "generator.pt"
        config = {
            "size": self.cfg.data.size,
            "width": float(self.cfg.net.width),
            "deterministic": bool(self.cfg.net.deterministic),
            "id_dim": int(self.cfg.net.id_dim),
            "recognizer_fingerprint": self.recognizer.fingerprint,
        }
        meta = {
            "train": str(self.cfg.data.train),
            "paired_subjects": self.paired_subjects,
            "unpaired": str(self.cfg.data.unpaired),
            **(meta or {}),
        }
        sampler_width = self.sampler_width if self.F_s is not None else None
        write_generator_file(path, self.G, config, self.attribute_codes(), self.F_s, sampler_width, meta)
        return {"generator": path}


class GeneratorStep(nn.Module):
    """Everything one training step computes with E_N, E_V and G, in one forward: what DDP wraps.

    DDP synchronises the gradients of what runs inside its module's `forward`; calling the
    generator's `encode`/`decode` directly would bypass it. Returns a dict of tensors:
    `z_*`, `mu_*`, `logvar_*` (None when deterministic) of the attribute codes of x_N (`_n`),
    x_V (`_v`) and, with unpaired VIS images, x_U (`_u`); the reconstructions x^_N = G(f~, z_N),
    x^_V = G(f~, z_V) (`xh_n`, `xh_v`); with `f_swap`, another pair's identity decoded with this
    pair's codes (`xs_n`, `xs_v`); with `f_sampled`, identities f_s from F_s decoded with them
    (`xf_n`, `xf_v`); with `x_u`/`f_u`, x^_U = G(f_U, z_U) (`xu_v`) and a NIR image of the unpaired
    identity with the first paired NIR codes (`xu_n`, min(B_U, B) of them).
    """

    def __init__(self, generator: DualGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(
        self,
        x_n: torch.Tensor,
        x_v: torch.Tensor,
        f: torch.Tensor,
        *,
        f_swap: torch.Tensor | None = None,
        f_sampled: torch.Tensor | None = None,
        x_u: torch.Tensor | None = None,
        f_u: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Any]:
        g = self.generator
        code_n = g.encode(x_n, "nir", generator=generator)
        code_v = g.encode(x_v, "vis", generator=generator)
        out: dict[str, Any] = {
            "z_n": code_n.z,
            "mu_n": code_n.mu,
            "logvar_n": code_n.logvar,
            "z_v": code_v.z,
            "mu_v": code_v.mu,
            "logvar_v": code_v.logvar,
            "xh_n": g.decode(f, code_n.z, "nir"),
            "xh_v": g.decode(f, code_v.z, "vis"),
        }
        if f_swap is not None:
            out["xs_n"], out["xs_v"] = g.decode(f_swap, code_n.z, "nir"), g.decode(f_swap, code_v.z, "vis")
        if f_sampled is not None:
            out["xf_n"], out["xf_v"] = g.decode(f_sampled, code_n.z, "nir"), g.decode(f_sampled, code_v.z, "vis")
        if x_u is not None and f_u is not None:
            code_u = g.encode(x_u, "vis", generator=generator)
            k = min(len(x_u), len(x_n))
            out.update(
                z_u=code_u.z,
                mu_u=code_u.mu,
                logvar_u=code_u.logvar,
                xu_v=g.decode(f_u, code_u.z, "vis"),
                xu_n=g.decode(f_u[:k], code_n.z[:k], "nir"),
            )
        return out
