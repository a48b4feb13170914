"""DVG-Face objectives (Fu et al., "DVG-Face: Dual Variational Generation for Heterogeneous Face
Recognition", TPAMI 2021) as pure functions on tensors.

Symbols: x_N, x_V a paired NIR and VIS image; E_N, E_V the attribute encoders with codes z_N, z_V
(posteriors q(z_N|x_N), q(z_V|x_V) = N(mu, diag exp(logvar)) in the paper's variational form);
F the frozen recognizer and f~ = F(x_V) the identity representation; G the decoder, x^_N = G(f~, z_N),
x^_V = G(f~, z_V); F_s the identity sampler (decoder of a VAE over recognizer features) giving a new
identity f_s = F_s(n), n ~ N(0, I); D_N, D_V the discriminators.

| function                | paper term (Sec. 3)              | released code                  | weight field           |
| ----------------------- | -------------------------------- | ------------------------------ | ---------------------- |
| `angular_orthogonal`    | L_ort: z_N, z_V orthogonal to f~ | 50 (ort(z_N,f~) + ort(z_V,f~)) | ort = 50               |
| `kl_standard_normal`    | L_kl: KL(q ‖ N(0, I)), z_N, z_V  | absent (unit-norm codes)       | kl = 0.01 (ours)       |
| `pair_l1`               | L_rec: L1 of x^_N and x^_V       | 100 (L1_N + L1_V)              | pix = 100              |
| `pair_l1`, swapped f~   | not in the paper                 | 100 * 0.1 (L1_N + L1_V)        | pix_swap = 10          |
| `pair_l1`, sampled f_s  | not in the paper                 | 100 * 0.1 (L1_N + L1_V)        | pix_sampled = 10       |
| `l1`, unpaired VIS x^_V | L_rec of the unpaired VIS data   | absent (paired data only)      | pix_unpaired = 100     |
| `identity_preserving`   | L_ip: pairwise identity          | -0.1 (rec + 0.05 pair) f~, f_s | ip 0.1, ip_pair 0.05   |
| `adversarial_d`, `_g`   | L_adv with D_N, D_V              | absent (no D at all)           | adv 1 (ours), adv_kind |
| `identity_sampler_loss` | F_s: a VAE over F's features     | not released (F_s weights)     | sampler_kl 0.01 (ours) |

Where the released code (BradyFU/DVG-Face, train_generator.py and utils.py) differs from the paper:

- Deterministic attributes: E_N, E_V output an L2-normalised 256-d code, not (mu, logvar); there is
  no KL term, and gen_samples.py encodes the attributes of real images (it never samples them).
- L_ort is `|z . f~|` averaged over the batch on unit-norm z and f~ (absolute cosine, not squared);
  here the cosine is taken explicitly, so sampled (non-unit) codes work too.
- f~ = F(x_V) is the identity of both reconstructions (the VIS image's feature, also for x^_N).
- Pixel loss has two extra terms: x^_N, x^_V decoded from another pair's f~ (a derangement of the
  batch, drawn once per epoch; `hfr.recognizer.losses.random_derangement` draws one) with the pair's own
  attributes, and decoded from a sampled f_s, each as L1 to the real x_N, x_V at 0.1 of the
  reconstruction weight. Only the sampled-identity images get an identity loss; the swapped ones don't.
- The identity loss is `-cos` (a dot product of unit features); here `1 - cos`, the same gradients,
  0 at best. It is applied to the reconstructions (target f~) and to the sampled-identity images
  (target f_s), each with its pairwise term at 0.05.
- No discriminator and no adversarial loss (BradyFU/DVG-Face issue #6; for the conference DVG the
  authors reply that the adversarial loss "has little impact on the recognition performance",
  BradyFU/DVG issue #15). Its form and weight here are our choice.
- The identity sampler's training is not released (BradyFU/DVG-Face issue #5): ID_net.py holds only
  its decoder (256 -> 1024 -> 1024 -> 512 -> 256, L2-normalised output); `identity_sampler_loss` is
  a standard VAE objective on unit-norm features.

`adversarial_d`, `adversarial_g` (kinds lsgan, bce, hinge: the `adv_kind` field) and the pixel
`l1` are shared with the other methods and live in `hfr.nn.gan`.

Every function averages over the batch (and over pixels / score-map elements where there are
any) and computes in float32, so bf16 autocast inputs are safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hfr.errors import ConfigError
from hfr.nn.gan import check_adv_kind, check_feature_pair, l1
from hfr.nn.sizing import check_choice

#: When the swapped-identity derangement is drawn (`DVGLossWeights.swap_permutation`).
SWAP_PERMUTATIONS = ("epoch", "step")


@dataclass
class DVGLossWeights:
    """Weights of the DVG-Face generator objective (the config's `loss:` section).

    The total is `sum(weight * term)` over the terms of `weighted_total`; `ip_pair` is a weight
    inside the identity term (`identity_preserving(..., pair_weight=ip_pair)`).
    """

    ort: float = 50.0  #: L_ort on z_N and z_V (released: 50 * (ort(z_N, f~) + ort(z_V, f~)))
    kl: float = 0.01  #: L_kl per domain (ours: the released code has none; unused with deterministic codes)
    pix: float = 100.0  #: L1 of the reconstructions x^_N, x^_V (released: 100)
    pix_swap: float = 10.0  #: L1 of images decoded with another pair's f~ (released: 100 * 0.1)
    pix_sampled: float = 10.0  #: L1 of images decoded with a sampled f_s, to the real pair (released: 100 * 0.1)
    ip: float = 0.1  #: identity preserving, real f~ and sampled f_s each (released: 0.1)
    ip_pair: float = 0.05  #: the pairwise part inside `ip` (released: 0.05, so 0.005 in all)
    pix_unpaired: float = 100.0  #: L1 of the VIS reconstruction of unpaired VIS images (ours: pix's weight, one domain)
    adv: float = 1.0  #: adversarial loss of G per domain (ours: the paper has one, the released code none)
    adv_kind: str = "lsgan"  #: lsgan | bce | hinge (ours; the paper's form is not in the released code)
    sampler_kl: float = 0.01  #: KL weight of the identity-sampler VAE (ours: training not released)
    #: when `pix_swap`'s derangement of the batch positions is drawn: "epoch" (the released
    #: train_generator.py draws one per epoch, so all of an epoch's batches swap position i with idx[i])
    #: or "step" (a new one every step, as hfr did before this option)
    swap_permutation: str = "epoch"

    def validate(self) -> None:
        """Raise ConfigError naming the `loss.` key of a negative weight or an unknown adversarial form."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in ("adv_kind", "swap_permutation") and not value >= 0:
                raise ConfigError(f"loss.{f.name} must be >= 0 (0 turns the term off), got {value}")
        check_adv_kind(self.adv_kind, "loss.adv_kind")
        check_choice(self.swap_permutation, SWAP_PERMUTATIONS, "loss.swap_permutation")


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.float(), b.float(), dim=1, eps=1e-8)


def angular_orthogonal(z: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """L_ort, the angular orthogonal loss: mean over the batch of |cos(z_i, f~_i)|.

    z: (B, D) attribute codes z_N or z_V (deterministic or sampled); f: (B, D) identity
    representations f~ = F(x_V). 0 when every code is orthogonal to its identity, 1 when parallel
    (or anti-parallel). The released code takes |z . f~| on unit-norm vectors: the same value.
    Call it once per domain; the released total is `ort * (L(z_N, f~) + L(z_V, f~))`.
    """
    check_feature_pair(z, f, "angular_orthogonal")
    return _cos(z, f).abs().mean()


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """L_kl, the distribution loss: KL(N(mu, diag exp(logvar)) ‖ N(0, I)).

    mu, logvar: (B, D) parameters of q(z_N|x_N) or q(z_V|x_V). The KL is summed over the D
    dimensions and averaged over the batch: mean_b -1/2 sum_d (1 + logvar - mu^2 - exp(logvar)).
    0 at mu = 0, logvar = 0; it grows with |mu| and with |logvar|.
    """
    check_feature_pair(mu, logvar, "kl_standard_normal")
    mu, logvar = mu.float(), logvar.float()
    return (-0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def pair_l1(x_hat_nir: torch.Tensor, x_hat_vis: torch.Tensor, x_nir: torch.Tensor, x_vis: torch.Tensor) -> torch.Tensor:
    """L_rec, the reconstruction loss of a NIR-VIS pair: l1(x^_N, x_N) + l1(x^_V, x_V).

    With the reconstructions it is the paper's L_rec (weight `pix`). The released code also
    applies it to images decoded with another pair's identity f~ (weight `pix_swap`) and with a
    sampled identity f_s (weight `pix_sampled`), always against the real x_N, x_V, so the
    attributes (pose, light, modality) of the input pair are kept whatever the identity.
    """
    return l1(x_hat_nir, x_nir) + l1(x_hat_vis, x_vis)


def identity_preserving(
    f_nir: torch.Tensor, f_vis: torch.Tensor, f_id: torch.Tensor, pair_weight: float = 0.05
) -> dict[str, torch.Tensor]:
    """L_ip, the pairwise identity preserving loss, and its parts.

    f_nir = F(x^_N), f_vis = F(x^_V): (B, D) recognizer features of the generated pair; f_id: the
    identity they were decoded from (f~ for reconstructions, f_s for sampled identities). Parts:
    `rec` = mean_b [(1 - cos(f_nir, f_id)) + (1 - cos(f_vis, f_id))] (each image keeps its source
    identity), `pair` = mean_b (1 - cos(f_nir, f_vis)) (the NIR and VIS image agree with each
    other), `total` = rec + pair_weight * pair. 0 (the best) when all three features point the same
    way. Features are L2-normalised here (hfr's LightCNN returns raw features; the released one
    normalises), so the released `-cos` terms are these minus a constant.
    """
    check_feature_pair(f_nir, f_id, "identity_preserving")
    check_feature_pair(f_vis, f_id, "identity_preserving")
    rec = ((1.0 - _cos(f_nir, f_id)) + (1.0 - _cos(f_vis, f_id))).mean()
    pair = (1.0 - _cos(f_nir, f_vis)).mean()
    return {"rec": rec, "pair": pair, "total": rec + pair_weight * pair}


def identity_sampler_loss(
    f: torch.Tensor, f_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, kl_weight: float = 0.01
) -> dict[str, torch.Tensor]:
    """The identity sampler F_s's VAE objective on recognizer features, and its parts.

    f: (B, D) features F(x) of real faces (normalised here to unit length, as F_s is trained to
    produce unit-norm identities); f_hat: F_s's decoded features (unit norm in ID_net.py's
    decoder; normalised again here); mu, logvar: F_s's encoder posterior. Parts: `rec` =
    mean_b ‖f_hat - f‖^2 (= 2 - 2 cos for unit vectors), `kl` = `kl_standard_normal(mu, logvar)`,
    `total` = rec + kl_weight * kl. On a toy set of 4,000 clustered 256-d unit features, kl_weight 1
    collapsed the posterior (KL 0, prior samples with mean pairwise cos 0.74), 0.1 and 0.01 kept
    samples as diverse as the data (0.02 and 0.006); 0.01 reconstructed better (rec 0.22 vs 1.12).
    """
    check_feature_pair(f, f_hat, "identity_sampler_loss")
    rec = (F.normalize(f_hat.float(), dim=1) - F.normalize(f.float(), dim=1)).pow(2).sum(dim=1).mean()
    kl = kl_standard_normal(mu, logvar)
    return {"rec": rec, "kl": kl, "total": rec + kl_weight * kl}


#: Terms that `weighted_total` accepts, each scaled by the `DVGLossWeights` field of that name.
WEIGHTED_TERMS = ("ort", "kl", "pix", "pix_swap", "pix_sampled", "pix_unpaired", "ip", "adv")


def weighted_total(terms: Mapping[str, torch.Tensor], weights: DVGLossWeights) -> torch.Tensor:
    """The generator's total: sum over `terms` of weight * term (weights from `DVGLossWeights`).

    `terms` maps names in `WEIGHTED_TERMS` to scalar losses already summed over the domains (and,
    for `ip`, over the real and sampled identities with `identity_preserving(...)["total"]`); a
    term left out counts 0. The released objective is
    `weighted_total({"ort": ..., "pix": ..., "pix_swap": ..., "pix_sampled": ..., "ip": ...})`.
    """
    unknown = sorted(set(terms) - set(WEIGHTED_TERMS))
    if unknown:
        raise ValueError(f"unknown loss terms {unknown}: use names from {', '.join(WEIGHTED_TERMS)}")
    if not terms:
        raise ValueError("weighted_total needs at least one term")
    return sum(getattr(weights, name) * value for name, value in terms.items())
