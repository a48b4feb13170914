"""DR-GAN networks: the CASIA-Net encoder G_enc, the decoder G_dec and the discriminator D.

Layer table (Tran, Yin, Liu, CVPR 2017, Table 1; TPAMI 2018, Table 2), widths at `width=1`:

| encoder / D trunk | size  | decoder            | size  |
| ----------------- | ----- | ------------------ | ----- |
| Conv11 32         | S     | FC -> S/16 x S/16 x 320 | S/16 |
| Conv12 64         | S     | FConv52 160        | S/16  |
| Conv21 64, s2     | S/2   | FConv51 256        | S/16  |
| Conv22 64         | S/2   | FConv43 256, s2    | S/8   |
| Conv23 128        | S/2   | FConv42 128        | S/8   |
| Conv31 128, s2    | S/4   | FConv41 192        | S/8   |
| Conv32 96         | S/4   | FConv33 192, s2    | S/4   |
| Conv33 192        | S/4   | FConv32 96         | S/4   |
| Conv41 192, s2    | S/8   | FConv31 128        | S/4   |
| Conv42 128        | S/8   | FConv23 128, s2    | S/2   |
| Conv43 256        | S/8   | FConv22 64         | S/2   |
| Conv51 256, s2    | S/16  | FConv21 64         | S/2   |
| Conv52 160        | S/16  | FConv13 64, s2     | S     |
| Conv53 N_f = 320  | S/16  | FConv12 32         | S     |
| AvgPool -> f(x)   | 1     | FConv11 C, tanh    | S     |

S = 96 in the paper (S/16 = 6: the paper's 6x6x320), 64 in the CPU recipes; S must be a
multiple of 16. Every convolution is 3x3 with BatchNorm and ELU, except Conv53 (BatchNorm
only, as in the released code, so f(x) is not clipped at -1) and FConv11 (tanh). Images are
in [-1, 1].

- G_enc maps x to the identity feature f(x) in R^{N_f}; the multi-image variant adds the
  confidence omega(x) in (0, 1): in the released code a 1-channel 3x3 convolution on Conv52's
  output, BatchNorm, average pooling and a sigmoid (the paper: "one extra output channel").
- G_dec maps [f(x), c, z] (c one-hot pose code of N_p bins, z ~ U(-1, 1)^{N_z}) through a
  linear layer to S/16 x S/16 x N_f, then fractionally strided (transposed) convolutions.
- D is the same trunk with a linear head of N_d + 1 identity logits (the last class is
  "synthesized") and N_p pose logits.

`width` multiplies every channel count (N_f too) to make CPU-sized models; `width=1` is the
paper. `dropout` (default 0, the paper) is the released code's dropout on f(x) and on the
decoder's projection (it uses 0.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hfr.nn.layers import init_weights
from hfr.nn.sizing import check_choice, scaled
from hfr.nn.sizing import check_size as _check_size

#: (out channels, stride) of Conv11 .. Conv53 at width 1; the last is N_f.
ENCODER_LAYERS: tuple[tuple[int, int], ...] = (
    (32, 1),
    (64, 1),
    (64, 2),
    (64, 1),
    (128, 1),
    (128, 2),
    (96, 1),
    (192, 1),
    (192, 2),
    (128, 1),
    (256, 1),
    (256, 2),
    (160, 1),
    (320, 1),
)
#: (out channels, stride) of FConv52 .. FConv12 at width 1 (FConv11 gives the image channels).
DECODER_LAYERS: tuple[tuple[int, int], ...] = (
    (160, 1),
    (256, 1),
    (256, 2),
    (128, 1),
    (192, 1),
    (192, 2),
    (96, 1),
    (128, 1),
    (128, 2),
    (64, 1),
    (64, 1),
    (64, 2),
    (32, 1),
)
#: N_f at width 1.
FEATURE_DIM = 320
#: D's head layouts: the paper's one linear layer, or the released code's separate pose branch.
D_HEADS: tuple[str, ...] = ("shared", "separate")


def check_size(size: int) -> int:
    """`size` if it is a positive multiple of 16 (four stride-2 stages), else ConfigError."""
    return _check_size(size, "DR-GAN image size", multiple=16, minimum=16, why="four stride-2 stages")


def _conv_bn_elu(cin: int, cout: int, stride: int, elu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
    if elu:
        layers.append(nn.ELU(inplace=True))
    return nn.Sequential(*layers)


def _fconv_bn_elu(cin: int, cout: int, stride: int) -> nn.Sequential:
    if stride == 1:
        conv: nn.Module = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
    else:  # fractionally strided: doubles the size (3x3 kernel, as the released code)
        conv = nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ELU(inplace=True))


class CasiaTrunk(nn.Module):
    """Conv11 .. Conv53 and average pooling: (B, C, S, S) in [-1, 1] -> (B, N_f).

    With `confidence=True` it also returns omega in (0, 1) of shape (B,) (else None).
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, confidence: bool = False) -> None:
        super().__init__()
        widths = [(scaled(c, width), s) for c, s in ENCODER_LAYERS]
        body, cin = [], in_channels
        for cout, stride in widths[:-1]:
            body.append(_conv_bn_elu(cin, cout, stride))
            cin = cout
        self.body = nn.Sequential(*body)
        self.feature_dim = widths[-1][0]
        self.last = _conv_bn_elu(cin, self.feature_dim, 1, elu=False)  # Conv53: BN, no ELU
        self.confidence = _conv_bn_elu(cin, 1, 1, elu=False) if confidence else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(f(x) of shape (B, N_f), omega of shape (B,) or None)."""
        h = self.body(x)
        f = self.last(h).mean(dim=(2, 3))
        omega = torch.sigmoid(self.confidence(h).mean(dim=(1, 2, 3))) if self.confidence is not None else None
        return f, omega


class Encoder(nn.Module):
    """G_enc: the CASIA-Net trunk giving the identity feature f(x) (and omega when multi-image)."""

    def __init__(
        self, in_channels: int = 3, width: float = 1.0, confidence: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.trunk = CasiaTrunk(in_channels, width, confidence)
        self.feature_dim = self.trunk.feature_dim
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(f(x), omega or None); dropout on f(x) in training mode when `dropout` > 0."""
        f, omega = self.trunk(x)
        if self.dropout > 0:
            f = F.dropout(f, self.dropout, self.training)
        return f, omega


class Decoder(nn.Module):
    """G_dec: [f, c, z] -> image in [-1, 1] of shape (B, C, S, S)."""

    def __init__(
        self,
        feature_dim: int,
        num_poses: int,
        noise_dim: int,
        size: int,
        out_channels: int = 3,
        width: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.size = check_size(size)
        self.base = size // 16
        self.num_poses, self.noise_dim, self.feature_dim = num_poses, noise_dim, feature_dim
        self.project = nn.Linear(feature_dim + num_poses + noise_dim, feature_dim * self.base**2, bias=False)
        self.project_norm = nn.Sequential(nn.BatchNorm2d(feature_dim), nn.ELU(inplace=True))
        self.dropout = dropout
        layers, cin = [], feature_dim
        for cout, stride in DECODER_LAYERS:
            cout = scaled(cout, width)
            layers.append(_fconv_bn_elu(cin, cout, stride))
            cin = cout
        self.body = nn.Sequential(*layers)
        self.to_image = nn.Conv2d(cin, out_channels, 3, 1, 1)  # FConv11

    def forward(self, f: torch.Tensor, pose_code: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Decode identity features `f` (B, N_f) at pose codes (B, N_p) with noise `z` (B, N_z)."""
        h = self.project(torch.cat([f, pose_code.to(f.dtype), z.to(f.dtype)], dim=1))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        h = self.project_norm(h.view(-1, self.feature_dim, self.base, self.base))
        return torch.tanh(self.to_image(self.body(h)))


class Generator(nn.Module):
    """G = (G_enc, G_dec) with the pose bins it was trained on."""

    def __init__(
        self,
        size: int,
        num_poses: int,
        noise_dim: int = 50,
        channels: int = 3,
        width: float = 1.0,
        multi_image: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_size(size)
        self.size, self.channels, self.num_poses, self.noise_dim = size, channels, num_poses, noise_dim
        self.encoder = Encoder(channels, width, confidence=multi_image, dropout=dropout)
        self.decoder = Decoder(self.encoder.feature_dim, num_poses, noise_dim, size, channels, width, dropout)

    @property
    def feature_dim(self) -> int:
        """N_f."""
        return self.encoder.feature_dim

    def pose_code(self, pose: torch.Tensor) -> torch.Tensor:
        """One-hot pose codes c (B, N_p) of pose-bin indices (B,)."""
        return F.one_hot(pose.long(), self.num_poses).float()

    def noise(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> torch.Tensor:
        """z ~ U(-1, 1)^{N_z}, shape (n, N_z)."""
        device = device or next(self.parameters()).device
        return torch.rand(n, self.noise_dim, generator=generator, device=device) * 2 - 1

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(f(x), omega or None) of images in [-1, 1]."""
        return self.encoder(x)

    def decode(
        self,
        f: torch.Tensor,
        pose: torch.Tensor,
        z: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Images at pose-bin indices `pose` (B,) from features `f` (z drawn when not given)."""
        if z is None:
            z = self.noise(len(f), generator, f.device)
        return self.decoder(f, self.pose_code(pose), z)

    def forward(self, x: torch.Tensor, pose: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Rotate x to the pose bins `pose`: G_dec(G_enc(x), c, z)."""
        f, _ = self.encode(x)
        return self.decode(f, pose, z)


class Discriminator(nn.Module):
    """D: CASIA-Net trunk, then N_d + 1 identity logits (class N_d = synthesized) and N_p pose logits.

    `heads="shared"` (the paper): one trunk, one linear layer giving all N_d + 1 + N_p logits.
    `heads="separate"` (the released code): Conv11..Conv51 shared, then the identity and the pose
    logits each get their own Conv52, Conv53 and pooling, so pose does not crowd the identity
    feature out of the last layers.
    """

    def __init__(
        self,
        num_identities: int,
        num_poses: int,
        channels: int = 3,
        width: float = 1.0,
        dropout: float = 0.0,
        heads: str = "shared",
    ) -> None:
        super().__init__()
        check_choice(heads, D_HEADS, "net.d_heads")
        self.num_identities, self.num_poses, self.heads = num_identities, num_poses, heads
        self.trunk = CasiaTrunk(channels, width, confidence=False)
        self.dropout = dropout
        if heads == "shared":
            self.head = nn.Linear(self.trunk.feature_dim, num_identities + 1 + num_poses)
            self.pose_branch = None
        else:
            self.head = nn.Linear(self.trunk.feature_dim, num_identities + 1)
            c51 = scaled(ENCODER_LAYERS[-3][0], width)
            self.pose_branch = nn.Sequential(
                _conv_bn_elu(c51, scaled(ENCODER_LAYERS[-2][0], width), 1),
                _conv_bn_elu(scaled(ENCODER_LAYERS[-2][0], width), self.trunk.feature_dim, 1, elu=False),
            )
            self.pose_head = nn.Linear(self.trunk.feature_dim, num_poses)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(identity logits (B, N_d + 1), pose logits (B, N_p))."""
        if self.pose_branch is None:
            h, _ = self.trunk(x)
            if self.dropout > 0:
                h = F.dropout(h, self.dropout, self.training)
            logits = self.head(h)
            return logits[:, : self.num_identities + 1], logits[:, self.num_identities + 1 :]
        shared = self.trunk.body[:-1](x)
        h_id = self.trunk.last(self.trunk.body[-1](shared)).mean(dim=(2, 3))
        h_pose = self.pose_branch(shared).mean(dim=(2, 3))
        if self.dropout > 0:
            h_id = F.dropout(h_id, self.dropout, self.training)
            h_pose = F.dropout(h_pose, self.dropout, self.training)
        return self.head(h_id), self.pose_head(h_pose)


def build_models(
    size: int,
    num_identities: int,
    num_poses: int,
    noise_dim: int = 50,
    channels: int = 3,
    width: float = 1.0,
    multi_image: bool = False,
    dropout: float = 0.0,
    init: str = "normal002",
    d_heads: str = "shared",
) -> tuple[Generator, Discriminator]:
    """G and D initialised with `init` (the paper: N(0, 0.02), see `hfr.nn.init_weights`)."""
    g = Generator(size, num_poses, noise_dim, channels, width, multi_image, dropout)
    d = Discriminator(num_identities, num_poses, channels, width, dropout, d_heads)
    init_weights(g, init)
    init_weights(d, init)
    return g, d


def copy_trunk(src: CasiaTrunk, dst: CasiaTrunk) -> None:
    """Copy D's trunk weights into G_enc's (TPAMI's model switching); omega's head is kept."""
    own = dst.state_dict()
    own.update({k: v for k, v in src.state_dict().items() if k in own and own[k].shape == v.shape})
    dst.load_state_dict(own)


def fuse_features(f: torch.Tensor, omega: torch.Tensor, n: int, eps: float = 1e-6) -> torch.Tensor:
    """Multi-image fusion: f_bar = sum_i omega_i f(x_i) / sum_i omega_i over runs of `n` rows.

    `f` is (G * n, N_f) with each subject's n images consecutive, `omega` (G * n,); returns
    (G, N_f). `eps` guards the division (the released code adds 1e-6).
    """
    if f.shape[0] % n:
        raise ValueError(f"fuse_features: {f.shape[0]} features are not groups of n={n}")
    fg = f.view(-1, n, f.shape[1])
    wg = omega.view(-1, n, 1).to(f.dtype)
    return (wg * fg).sum(1) / (wg.sum(1) + eps)
