"""`set_epoch(epoch, start=n)`: the samplers skip a rank's first n batches (for exact resume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hfr.data.datasets import IdentityBalancedSampler, NirVisPairSampler, SubjectGroupSampler
from hfr.data.imageio import write_png
from hfr.data.manifest import Manifest, make_record
from hfr.errors import ArgumentError


@pytest.fixture
def people(tmp_path: Path) -> Manifest:
    """6 subjects x (2 nir + 3 vis) tiny images."""
    root = tmp_path / "people"
    recs = []
    for s in range(6):
        for i, modality in enumerate(["nir", "nir", "vis", "vis", "vis"]):
            name = f"s{s}/{modality}{i}.png"
            write_png(root / name, np.full((4, 4), 10 * s + i, np.uint8))
            recs.append(make_record(name, f"s{s}", modality, 0.0, "train"))
    Manifest(recs, root).write(root)
    return Manifest.read(root)


MAKERS = {
    "identity": lambda m, **kw: IdentityBalancedSampler(m, p=2, k=2, num_batches=6, **kw),
    "pairs": lambda m, **kw: NirVisPairSampler(m, batch_pairs=2, num_batches=6, **kw),
    "groups": lambda m, **kw: SubjectGroupSampler(m, n=2, groups_per_batch=2, num_batches=6, **kw),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
@pytest.mark.parametrize("world_size", [1, 2])
def test_start_yields_the_tail_of_the_epoch(people, name, world_size):
    for rank in range(world_size):
        sampler = MAKERS[name](people, seed=5, rank=rank, world_size=world_size)
        sampler.set_epoch(3)
        full = list(sampler)
        assert len(full) == len(sampler) == 6 // world_size
        for start in range(len(sampler) + 1):
            sampler.set_epoch(3, start=start)
            assert list(sampler) == full[start:]
            assert len(sampler) == len(full)  # len stays the full per-rank count
        sampler.set_epoch(3)  # a later set_epoch without start starts at the beginning again
        assert list(sampler) == full


def test_start_out_of_range_is_an_option_error(people):
    sampler = MAKERS["identity"](people, seed=0)
    for bad in (-1, 7, 1.5, True):
        with pytest.raises(ArgumentError, match=r"start must be an integer in \[0, 6\]"):
            sampler.set_epoch(0, start=bad)  # type: ignore[arg-type]
