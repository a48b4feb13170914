"""DR-GAN frontalization: faces decoded at the 0-degree pose bin with one fixed noise vector.

Used where a recognizer is given frontalized probes (the cross-pose and occlusion benchmarks):
every image goes through G_enc, then G_dec at the frontal bin with the same z (drawn from a
seed), so the output depends on the input face alone.
"""

from __future__ import annotations

import torch

from drgan.export import LoadedGenerator
from hfr.nn.ranges import to_channels, to_signed, to_unit


@torch.no_grad()
def frontalize(gen: LoadedGenerator, images: torch.Tensor, seed: int, chunk: int = 128) -> torch.Tensor:
    """Images (N, 3, S, S) in [0, 1] decoded by DR-GAN at the 0-degree pose bin with one fixed z (drawn
    from `seed`), in [0, 1] with 3 channels; `chunk` images per forward pass. A grayscale generator gets
    the ITU-R 601 luma of the images."""
    g = gen.generator
    z1 = g.noise(1, torch.Generator().manual_seed(seed), images.device)
    outs = []
    for k in range(0, len(images), chunk):
        x = images[k : k + chunk]
        f, _ = g.encode(to_signed(to_channels(x, gen.channels, "the generator's")))
        pose = torch.full((len(f),), gen.bin_of(0.0), dtype=torch.long)
        outs.append(to_channels(to_unit(g.decode(f, pose, z1.expand(len(f), -1)).float()), 3))
    return torch.cat(outs) if outs else images[:0]
