"""DVG-Face networks: attribute encoders E_N and E_V, the shared decoder G, the identity sampler F_s, D_N and D_V.

Fu, Wu, Hu, Huang, He, "DVG-Face: Dual Variational Generation for Heterogeneous Face
Recognition", TPAMI 2021; released code BradyFU/DVG-Face (`network/G_net.py`,
`network/ID_net.py`, `train_generator.py`, `utils.py`). Widths at `width=1` (ndf = 32),
S = 128 (the paper's and the release's size); every block is conv -> instance norm ->
LeakyReLU(0.2) unless marked:

| E_N, E_V (one each)          | size  | G (shared)                          | size  |
| ---------------------------- | ----- | ----------------------------------- | ----- |
| conv 5x5 32                  | S     | FC [f, z] (512) -> 128 x 4 x 4, LReLU | 4   |
| conv 3x3 64, s2              | S/2   | deconv 2x2 s2 128, res 128          | 8     |
| conv 3x3 128, s2             | S/4   | deconv 2x2 s2 128, res 128          | 16    |
| conv 3x3 256, s2             | S/8   | deconv 2x2 s2 64, res 64            | 32    |
| conv 3x3 256, s2             | S/16  | deconv 2x2 s2 64, res 64            | 64    |
| conv 3x3 256, s2             | 4     | deconv 2x2 s2 32 AdaIN, res AdaIN   | 128   |
| FC 4096 -> 256 (z)           | 1     | conv 3x3 AdaIN, res AdaIN, conv 3x3 AdaIN | 128 |
| style MLP 256-1024-2048-P    | 1     | NIR head / VIS head: 1x1 conv, sigmoid | 128 |

Where each detail comes from:

- Paper: two domain-specific attribute encoders E_N, E_V giving distributions
  q(z_N | x_N), q(z_V | x_V) sampled by reparameterisation (z = mu + sigma * eps); a decoder
  shared by both domains fed with the identity representation and the attribute codes and
  producing a paired NIR and VIS image; an identity sampler F_s that turns noise into
  identity representations of new subjects.
- Released code (`G_net.py`), taken as is: the encoder trunk above (5x5 first conv, five
  stride-2 3x3 convs, ndf multipliers 1-2-4-8-8-8, instance norm without affine
  parameters, LeakyReLU 0.2) down to 4 x 4 and a linear layer to a 256-d code; the decoder
  (linear layer from the 512-d concatenation [f, z] to 4*ndf x 4 x 4, 2x2 stride-2
  transposed convolutions each followed by a residual block of two conv blocks, AdaIN
  only in the five blocks at full resolution); two 1x1 output convolutions, one per domain,
  with a sigmoid, so images are in [0, 1]; both heads have 3 channels in the release (its NIR
  images are read as 3-channel RGB and its LightCNN sees `rgb2gray` of every image), here
  `nir_channels` / `vis_channels` choose (3 / 3 by default, as released; 1 for gray NIR).
  AdaIN follows MUNIT as the release does: a per-domain MLP (256-1024-2048-P, LeakyReLU 0.2)
  on the attribute code gives all P = 2 * 7 * ndf AdaIN parameters, laid out per AdaIN layer
  in module order as [shift (ndf), scale (ndf)]; the scale is used as is (not 1 + scale).
- Released code, `deterministic=True`: E's code is the L2-normalised 256-d output of the
  linear layer (no mean or variance, nothing sampled; what `train_generator.py` trains).
  `deterministic=False` (default) is the paper's variational form: the linear layer gives
  [mu, log sigma^2] (2 x 256), as in the authors' conference version (BradyFU/DVG,
  `networks/generator.py`), and z is sampled in training mode, z = mu in eval mode.
- F_s (`ID_net.py`): the released decoder is an MLP 256-1024-1024-512-256 with LeakyReLU 0.2
  and an L2 normalisation, mapping N(0, I) noise to unit-norm identity features. The release
  ships only this decoder (pretrained on MS-Celeb-1M features); the encoder here is its
  mirror (256-512-1024-1024 -> [mu, log sigma^2] in 256 + 256) applied to the L2-normalised
  recognizer feature: a design choice, not from the release.
- D_N, D_V: the released code trains the generator without a discriminator (its losses are
  pixel L1, the orthogonal term and the identity terms). The discriminator here is a
  PatchGAN-style design choice (pix2pix, Isola et al. 2017), `hfr.nn.gan.PatchGAN` with the
  `FOUR_STRIDE_2` layout: 4x4 stride-2 convolutions with 64-128-256-512 channels at width 1
  (no norm on the first, instance norm without affine parameters on the others), LeakyReLU
  0.2, then a 3x3 convolution to one channel: raw scores of shape (B, 1, S/16, S/16). The
  adversarial loss form (`hfr.nn.gan.ADV_KINDS`) is the config's `loss.adv_kind`.

Sizes: S = 4 * 2^k with S >= 32 (32, 64, 128, 256): the encoder has log2(S/4) stride-2
stages and the decoder as many upsampling stages, each stage keeping the channel count that
the stage at the same distance from the full-resolution end has at S = 128 (so S = 64 drops
the first 8 x 8 stage of the decoder and one 8*ndf stage of the encoder). `width` multiplies
every channel count and every MLP hidden width (at least 4); the 256-d identity and attribute
dimensions stay fixed (the recognizer's feature is 256-d).

Parameter counts at S = 128, width 1, 3-channel heads (equal to the released modules):
each deterministic E 5,899,264 (trunk 1,570,112, linear 1,048,832, style MLP 3,280,320);
G 2,033,190; F_s decoder 1,968,896 (a width-1 deterministic E_N, E_V and G loaded with
random released weights give the released outputs to 1e-7). The variational E has
6,948,096 (its linear layer is twice as wide), F_s's encoder 2,231,296, each D 2,761,153.

Attribute names follow the released code (`conv`, `fc_enc`, `fc_style`, `fc`, `nir_output`,
`vis_output`), so a released state dict maps key for key onto these modules after removing
the `module.` prefix (less the release's unused AdaIN running-statistics buffers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hfr.errors import ArgumentError
from hfr.nn.gan import D_NORMS, FOUR_STRIDE_2, PatchGAN
from hfr.nn.layers import init_weights
from hfr.nn.sizing import check_size as _check_size
from hfr.nn.sizing import check_width, scaled

#: the two domains and the order of the decoder's heads.
DOMAINS: tuple[str, ...] = ("nir", "vis")
#: ndf of the released code (width 1).
BASE_WIDTH = 32
#: dimension of the identity representation f (LightCNN's feature) and of the attribute code z.
ID_DIM = 256
ATTR_DIM = 256
#: the released style MLP's hidden widths (width 1).
STYLE_HIDDEN: tuple[int, int] = (1024, 2048)
#: the released identity-sampler decoder's hidden widths (width 1).
SAMPLER_HIDDEN: tuple[int, int, int] = (1024, 1024, 512)
#: discriminator normalisations (`hfr.nn.gan.D_NORMS`).
DISC_NORMS: tuple[str, ...] = D_NORMS
#: lowest resolution of the encoder and the decoder.
BASE_SIZE = 4


def check_size(size: int) -> int:
    """`size` if it is 4 * 2^k with size >= 32 (e.g. 64, 128), else ConfigError."""
    return _check_size(
        size,
        "DVG-Face image size",
        minimum=32,
        power_of_two=True,
        why="the encoder halves it down to 4 x 4, e.g. 64 or 128",
    )


def check_domain(domain: str) -> str:
    """`domain` if it is "nir" or "vis", else ArgumentError."""
    if domain not in DOMAINS:
        raise ArgumentError(f"DVG-Face domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
    return domain


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps with eps ~ N(0, I): a sample of N(mu, diag(exp(logvar)))."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def _stages(size: int) -> int:
    return int(math.log2(check_size(size) // BASE_SIZE))


# ---------------------------------------------------------------- blocks


class AdaIN(nn.Module):
    """Adaptive instance norm: instance-normalise x, then scale and shift it per sample and channel.

    The (B, 2C) parameters come from outside (the attribute code's style MLP), laid out as
    [shift (C), scale (C)] like the released code.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps

    @property
    def num_params(self) -> int:
        """2 * C: the shift and the scale of every channel."""
        return 2 * self.num_features

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Normalise x (B, C, H, W) per sample and channel, then x * scale + shift from params (B, 2C)."""
        c = self.num_features
        shift, scale = params[:, :c], params[:, c : 2 * c]
        h = F.instance_norm(x, eps=self.eps)
        return h * scale[:, :, None, None].to(h.dtype) + shift[:, :, None, None].to(h.dtype)


class ConvBlock(nn.Module):
    """Convolution (or 2x2 stride-2 transposed convolution), instance norm or AdaIN, LeakyReLU(0.2)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int,
        padding: int,
        norm: str = "in",
        transposed: bool = False,
    ) -> None:
        super().__init__()
        conv_cls = nn.ConvTranspose2d if transposed else nn.Conv2d
        self.conv = conv_cls(cin, cout, kernel_size, stride, padding)
        self.norm: nn.Module = AdaIN(cout) if norm == "adain" else nn.InstanceNorm2d(cout)
        self.num_adain_params = self.norm.num_params if isinstance(self.norm, AdaIN) else 0

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the block; `params` (B, num_adain_params) are needed only when it uses AdaIN."""
        h = self.conv(x)
        h = self.norm(h, params) if isinstance(self.norm, AdaIN) else self.norm(h)
        return F.leaky_relu(h, 0.2)


class ResBlock(nn.Module):
    """Two 3x3 conv blocks and the identity shortcut (x + block2(block1(x)))."""

    def __init__(self, channels: int, norm: str = "in") -> None:
        super().__init__()
        self.conv1 = ConvBlock(channels, channels, 3, 1, 1, norm)
        self.conv2 = ConvBlock(channels, channels, 3, 1, 1, norm)
        self.num_adain_params = self.conv1.num_adain_params + self.conv2.num_adain_params

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """x plus the two blocks; AdaIN parameters are split between them in order."""
        n1 = self.conv1.num_adain_params
        p1 = params[:, :n1] if params is not None and n1 else None
        p2 = params[:, n1:] if params is not None and self.conv2.num_adain_params else None
        return x + self.conv2(self.conv1(x, p1), p2)


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers through `sizes` with LeakyReLU(0.2) between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- E_N, E_V


@dataclass
class AttributeCode:
    """What an attribute encoder returns.

    z: the code the decoder uses (B, 256): sampled by reparameterisation in training mode,
    mu in eval mode, the unit-norm code when deterministic. mu, logvar: the parameters of
    q(z | x) (logvar is None when deterministic, where mu is z).
    """

    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None


class AttributeEncoder(nn.Module):
    """E_N or E_V: image (B, C, S, S) in [0, 1] -> attribute code, and the code's AdaIN parameters.

    `deterministic=False` (the paper): q(z | x) = N(mu, diag(exp(logvar))), z sampled by
    reparameterisation in training mode. `deterministic=True` (the released code): an
    L2-normalised 256-d code. `style(z)` is the released per-domain MLP from z to the
    decoder's AdaIN parameters.
    """

    def __init__(
        self,
        size: int,
        in_channels: int = 3,
        width: float = 1.0,
        deterministic: bool = False,
        num_adain_params: int = 2 * 7 * BASE_WIDTH,
        attr_dim: int = ATTR_DIM,
    ) -> None:
        super().__init__()
        n = _stages(size)
        ndf = BASE_WIDTH
        widths = [scaled(ndf, width)] + [scaled(ndf * min(2**i, 8), width) for i in range(1, n + 1)]
        blocks = [ConvBlock(in_channels, widths[0], 5, 1, 2)]
        blocks += [ConvBlock(a, b, 3, 2, 1) for a, b in zip(widths[:-1], widths[1:])]
        self.conv = nn.Sequential(*blocks)
        self.size, self.in_channels = size, in_channels
        self.deterministic, self.attr_dim = deterministic, attr_dim
        out = attr_dim if deterministic else 2 * attr_dim
        self.fc_enc = nn.Linear(widths[-1] * BASE_SIZE**2, out)
        self.num_adain_params = num_adain_params
        self.fc_style = _mlp([attr_dim] + [scaled(h, width) for h in STYLE_HIDDEN] + [num_adain_params])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mu, logvar) of q(z | x), each (B, 256); deterministic: (unit-norm code, None)."""
        h = self.fc_enc(self.conv(x).flatten(1))
        if self.deterministic:
            return F.normalize(h, p=2, dim=1), None
        mu, logvar = h.split(self.attr_dim, dim=1)
        return mu, logvar

    def forward(
        self, x: torch.Tensor, sample: bool | None = None, generator: torch.Generator | None = None
    ) -> AttributeCode:
        """Encode x; `sample` (default: training mode) draws z ~ q(z | x), else z = mu."""
        mu, logvar = self.encode(x)
        if logvar is None:
            return AttributeCode(mu, mu, None)
        if sample is None:
            sample = self.training
        z = reparameterize(mu, logvar, generator) if sample else mu
        return AttributeCode(z, mu, logvar)

    def style(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's AdaIN parameters (B, num_adain_params) for attribute codes z (B, 256).

        z is L2-normalised first, as the released encoder's 'style' path does (network/G_net.py): the
        same for the released unit-norm codes, while a variational z (norm about sqrt(256) = 16 and
        more) would otherwise drive the style MLP far harder than the unit-norm identity drives G.
        """
        return self.fc_style(F.normalize(z, p=2, dim=1))

    def prior(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """n attribute codes from the prior: N(0, I); deterministic: uniform on the unit sphere.

        (The released sampling script instead encodes real images for the attributes.)
        """
        if device is None:
            device = self.fc_enc.weight.device
        z = torch.randn(n, self.attr_dim, generator=generator, device=device)
        return F.normalize(z, p=2, dim=1) if self.deterministic else z


# ---------------------------------------------------------------- G


class Decoder(nn.Module):
    """G: [f, z] (B, 256 + 256) and AdaIN parameters from z -> the NIR or the VIS image (B, C, S, S) in [0, 1]."""

    def __init__(
        self,
        size: int,
        width: float = 1.0,
        nir_channels: int = 3,
        vis_channels: int = 3,
        id_dim: int = ID_DIM,
        attr_dim: int = ATTR_DIM,
    ) -> None:
        super().__init__()
        n = _stages(size)
        ndf = BASE_WIDTH

        def level_width(d: int) -> int:  # channels of the stage d steps below full resolution
            return scaled(ndf * (1 if d == 0 else 2 if d <= 2 else 4), width)

        c0 = scaled(4 * ndf, width)
        self.size, self.id_dim, self.attr_dim, self.base_channels = size, id_dim, attr_dim, c0
        self.fc = nn.Sequential(nn.Linear(id_dim + attr_dim, c0 * BASE_SIZE**2), nn.LeakyReLU(0.2, inplace=True))
        blocks: list[ConvBlock | ResBlock] = []
        cin = c0
        for i in range(1, n + 1):
            d = n - i
            cout = level_width(d)
            norm = "adain" if d == 0 else "in"
            blocks += [ConvBlock(cin, cout, 2, 2, 0, norm, transposed=True), ResBlock(cout, norm)]
            cin = cout
        blocks += [ConvBlock(cin, cin, 3, 1, 1, "adain"), ResBlock(cin, "adain"), ConvBlock(cin, cin, 3, 1, 1, "adain")]
        self.conv = nn.ModuleList(blocks)
        self.nir_output = nn.Conv2d(cin, nir_channels, 1, 1, 0)
        self.vis_output = nn.Conv2d(cin, vis_channels, 1, 1, 0)
        self.channels = {"nir": nir_channels, "vis": vis_channels}
        self._adain_counts = [b.num_adain_params for b in blocks]  # AdaIN parameters of each block, in order
        self.num_adain_params = sum(self._adain_counts)

    def forward(
        self, identity: torch.Tensor, attribute: torch.Tensor, style: torch.Tensor, domain: str
    ) -> torch.Tensor:
        """Image of `domain` ("nir" / "vis") from identity f (B, 256), attribute z (B, 256), AdaIN params (B, P)."""
        check_domain(domain)
        if style.shape[1] != self.num_adain_params:
            raise ArgumentError(
                f"the decoder needs {self.num_adain_params} AdaIN parameters per image, got "
                f"{style.shape[1]}; build the encoders and the decoder with the same size and width"
            )
        h = self.fc(torch.cat([identity, attribute.to(identity.dtype)], dim=1))
        h = h.view(-1, self.base_channels, BASE_SIZE, BASE_SIZE)
        offset = 0
        for block, k in zip(self.conv, self._adain_counts):
            h = block(h, style[:, offset : offset + k] if k else None)
            offset += k
        head = self.nir_output if domain == "nir" else self.vis_output
        return torch.sigmoid(head(h))


class DualGenerator(nn.Module):
    """E_N, E_V and the shared decoder G, with the calls the DVG-Face objectives need."""

    def __init__(
        self,
        size: int = 128,
        width: float = 1.0,
        deterministic: bool = False,
        nir_channels: int = 3,
        vis_channels: int = 3,
        id_dim: int = ID_DIM,
        attr_dim: int = ATTR_DIM,
    ) -> None:
        super().__init__()
        self.size, self.deterministic = check_size(size), deterministic
        self.decoder = Decoder(size, width, nir_channels, vis_channels, id_dim, attr_dim)
        p = self.decoder.num_adain_params
        self.encoder_nir = AttributeEncoder(size, nir_channels, width, deterministic, p, attr_dim)
        self.encoder_vis = AttributeEncoder(size, vis_channels, width, deterministic, p, attr_dim)

    def encoder(self, domain: str) -> AttributeEncoder:
        """E_N for "nir", E_V for "vis"."""
        return self.encoder_nir if check_domain(domain) == "nir" else self.encoder_vis

    def encode(
        self, x: torch.Tensor, domain: str, sample: bool | None = None, generator: torch.Generator | None = None
    ) -> AttributeCode:
        """The attribute code of images x of `domain`."""
        return self.encoder(domain)(x, sample, generator)

    def decode(self, identity: torch.Tensor, z: torch.Tensor, domain: str) -> torch.Tensor:
        """Image of `domain` from identity features f and that domain's attribute codes z."""
        return self.decoder(identity, z, self.encoder(domain).style(z), domain)

    def forward(self, identity: torch.Tensor, x: torch.Tensor, domain: str) -> tuple[torch.Tensor, AttributeCode]:
        """Reconstruct: (G([f, z]) for z from E_domain(x), the attribute code)."""
        code = self.encode(x, domain)
        return self.decode(identity, code.z, domain), code


# ---------------------------------------------------------------- F_s


class SamplerEncoder(nn.Module):
    """F_s's encoder: recognizer feature f (B, 256) -> (mu, logvar) of q(z | f), each (B, latent_dim).

    f is L2-normalised first (the decoder's targets are unit-norm features).
    """

    def __init__(self, feature_dim: int = ID_DIM, latent_dim: int = ID_DIM, width: float = 1.0) -> None:
        super().__init__()
        hidden = [scaled(h, width) for h in reversed(SAMPLER_HIDDEN)]
        self.latent_dim = latent_dim
        self.fc = _mlp([feature_dim] + hidden + [2 * latent_dim])

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar)."""
        mu, logvar = self.fc(F.normalize(f, p=2, dim=1)).split(self.latent_dim, dim=1)
        return mu, logvar


class SamplerDecoder(nn.Module):
    """F_s's decoder (released `ID_net.dec`): z (B, latent_dim) -> unit-norm identity feature (B, 256)."""

    def __init__(self, feature_dim: int = ID_DIM, latent_dim: int = ID_DIM, width: float = 1.0) -> None:
        super().__init__()
        self.fc = _mlp([latent_dim] + [scaled(h, width) for h in SAMPLER_HIDDEN] + [feature_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The L2-normalised feature."""
        return F.normalize(self.fc(z), p=2, dim=1)


class IdentitySampler(nn.Module):
    """F_s: a VAE over recognizer features whose decoder maps N(0, I) to unit-norm identity features."""

    def __init__(self, feature_dim: int = ID_DIM, latent_dim: int = ID_DIM, width: float = 1.0) -> None:
        super().__init__()
        self.feature_dim, self.latent_dim = feature_dim, latent_dim
        self.encoder = SamplerEncoder(feature_dim, latent_dim, width)
        self.decoder = SamplerDecoder(feature_dim, latent_dim, width)

    def encode(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | f)."""
        return self.encoder(f)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unit-norm identity features for latent codes z."""
        return self.decoder(z)

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """n new identities: decode(z) for z ~ N(0, I), shape (n, feature_dim), unit norm."""
        if device is None:
            device = next(self.decoder.parameters()).device
        return self.decode(torch.randn(n, self.latent_dim, generator=generator, device=device))

    def forward(
        self, f: torch.Tensor, sample: bool | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstructed unit-norm feature, mu, logvar); z sampled in training mode (or when `sample`)."""
        mu, logvar = self.encode(f)
        if sample is None:
            sample = self.training
        z = reparameterize(mu, logvar, generator) if sample else mu
        return self.decode(z), mu, logvar


# ---------------------------------------------------------------- D_N, D_V


class Discriminator(PatchGAN):
    """D_N or D_V: image (B, C, S, S) -> raw patch scores (B, 1, S/16, S/16); the loss picks their use.

    `hfr.nn.gan.PatchGAN` with the `FOUR_STRIDE_2` layout (module docstring). `norm`:
    "instance" (instance norm after every conv but the first), "spectral" (spectral
    normalisation of every conv, no norm layer) or "none". `init`: None (PyTorch's default)
    or an `hfr.nn.init_weights` kind, applied to each conv before spectral normalisation.
    """

    def __init__(
        self, size: int, in_channels: int = 3, width: float = 1.0, norm: str = "instance", init: str | None = None
    ) -> None:
        size = check_size(size)
        super().__init__(in_channels, FOUR_STRIDE_2, width, norm, init=init)
        self.size = size


# ---------------------------------------------------------------- all of them


@dataclass
class DVGModels:
    """Every DVG-Face network: the generator (E_N, E_V, G), the identity sampler F_s, D_N and D_V."""

    generator: DualGenerator
    sampler: IdentitySampler
    disc_nir: Discriminator
    disc_vis: Discriminator

    def discriminator(self, domain: str) -> Discriminator:
        """D_N for "nir", D_V for "vis"."""
        return self.disc_nir if check_domain(domain) == "nir" else self.disc_vis

    def to(self, device: torch.device | str) -> DVGModels:
        """Move every network to `device`; return self."""
        for m in (self.generator, self.sampler, self.disc_nir, self.disc_vis):
            m.to(device)
        return self


def build_dvg(
    size: int = 128,
    width: float = 1.0,
    deterministic: bool = False,
    nir_channels: int = 3,
    vis_channels: int = 3,
    d_width: float | None = None,
    d_norm: str = "instance",
    init: str | None = None,
    id_dim: int = ID_DIM,
    attr_dim: int = ATTR_DIM,
    sampler_latent: int = ID_DIM,
) -> DVGModels:
    """Build E_N, E_V, G, F_s, D_N, D_V.

    size: 4 * 2^k >= 32 (128 = the paper and the release). width: channel multiplier
    (1 = released). deterministic: the released unit-norm attribute code instead of the
    paper's variational one. d_width: the discriminators' multiplier (default `width`).
    init: None keeps PyTorch's default initialisation (as the release), else a kind of
    `hfr.nn.init_weights` ("xavier", "kaiming", "normal002").
    """
    check_size(size)
    check_width(width, "DVG-Face width (net.width)")
    dw = width if d_width is None else check_width(d_width, "DVG-Face discriminator width (net.d_width)")
    models = DVGModels(
        generator=DualGenerator(size, width, deterministic, nir_channels, vis_channels, id_dim, attr_dim),
        sampler=IdentitySampler(id_dim, sampler_latent, width),
        disc_nir=Discriminator(size, nir_channels, dw, d_norm, init),
        disc_vis=Discriminator(size, vis_channels, dw, d_norm, init),
    )
    if init is not None:
        for m in (models.generator, models.sampler):
            init_weights(m, init)
    return models
