"""ManifestDataset items and the three batch samplers' invariants, determinism and sharding."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hfr.data.datasets import (
    IdentityBalancedSampler,
    ManifestDataset,
    NirVisPairSampler,
    SubjectGroupSampler,
    resolve_rank,
)
from hfr.data.imageio import write_png
from hfr.data.manifest import Manifest, make_record
from hfr.errors import ArgumentError, DataError, HFRError, ImageError


def _gray(value: int, h: int = 12, w: int = 10) -> np.ndarray:
    return np.full((h, w), value, np.uint8)


@pytest.fixture
def small(tmp_path: Path) -> Manifest:
    """s0: 2 vis (one with unknown yaw) + 1 nir; s1: 1 vis (RGB) + 2 nir; s2: 1 vis only."""
    root = tmp_path / "ds"
    rows = [
        ("s0/v0.png", "s0", "vis", -30.0, _gray(10)),
        ("s0/v1.png", "s0", "vis", None, _gray(20)),
        ("s0/n0.png", "s0", "nir", 0.0, _gray(30)),
        ("s1/v0.png", "s1", "vis", 15.0, np.dstack([_gray(255), _gray(0), _gray(51)])),
        ("s1/n0.png", "s1", "nir", 0.0, _gray(50)),
        ("s1/n1.png", "s1", "nir", 0.0, _gray(60)),
        ("s2/v0.png", "s2", "vis", 45.0, _gray(70)),
    ]
    recs = []
    for path, subject, modality, yaw, img in rows:
        write_png(root / path, img)
        recs.append(make_record(path, subject, modality, yaw, "train"))
    Manifest(recs, root).write(root)
    return Manifest.read(root)


# ------------------------------------------------------------------------------ dataset
def test_dataset_grayscale_items(small):
    ds = ManifestDataset(small)
    assert len(ds) == 7
    item = ds[1]
    assert item["image"].shape == (1, 12, 10) and item["image"].dtype == torch.float32
    assert torch.allclose(item["image"], torch.full((1, 12, 10), 20 / 255))
    assert item["label"] == 0 and item["index"] == 1 and item["subject"] == "s0"
    assert math.isnan(item["yaw"]) and ds[0]["yaw"] == -30.0
    assert ds[4]["label"] == 1 and ds[4]["modality"] == "nir" and ds[6]["label"] == 2


def test_dataset_rgb_resize_and_nir_replicated(small):
    ds = ManifestDataset(small, size=8, channels=3)
    rgb = ds[3]["image"]
    assert rgb.shape == (3, 8, 8)
    assert torch.allclose(rgb[:, 4, 4], torch.tensor([1.0, 0.0, 0.2]), atol=1e-6)
    nir = ds[4]["image"]
    assert nir.shape == (3, 8, 8)
    assert torch.equal(nir[0], nir[1]) and torch.equal(nir[1], nir[2])
    assert 0.0 <= float(rgb.min()) and float(rgb.max()) <= 1.0


def test_dataset_label_mapping(small):
    ds = ManifestDataset(small, labels={"s0": 7, "s1": 3, "s2": 0})
    assert [ds[i]["label"] for i in (0, 3, 6)] == [7, 3, 0]
    with pytest.raises(DataError, match="'s2'"):
        ManifestDataset(small, labels={"s0": 0, "s1": 1})
    with pytest.raises(ArgumentError):
        ManifestDataset(small, channels=2)


def test_dataset_targets(tmp_path):
    root = tmp_path / "occ"
    recs = []
    for i in range(2):
        img = np.full((8, 8), 100 + i, np.uint8)
        mask = np.zeros((8, 8), np.uint8)
        mask[:4] = 255
        write_png(root / f"img{i}.png", img)
        write_png(root / f"mask{i}.png", mask)
        write_png(root / f"clean{i}.png", np.full((16, 16), 200, np.uint8))  # stored larger: resized
        recs.append(
            make_record(
                f"img{i}.png", f"s{i}", "vis", 0.0, "train", mask_path=f"mask{i}.png", clean_path=f"clean{i}.png"
            )
        )
    Manifest(recs, root).write(root)
    m = Manifest.read(root)
    plain = ManifestDataset(m)[0]
    assert "mask" not in plain and "clean" not in plain
    item = ManifestDataset(m, load_targets=True)[1]
    assert item["mask"].shape == (1, 8, 8)
    assert torch.all(item["mask"][:, :4] == 1.0) and torch.all(item["mask"][:, 4:] == 0.0)
    assert item["clean"].shape == (1, 8, 8)
    assert torch.allclose(item["clean"], torch.full((1, 8, 8), 200 / 255))
    assert torch.allclose(item["image"], torch.full((1, 8, 8), 101 / 255))


def test_dataset_decode_failure_names_row(small):
    (small.root / "s1/n0.png").write_bytes(b"not a png at all")
    ds = ManifestDataset(small)
    with pytest.raises(ImageError, match=r"manifest\.csv row 6: .*n0\.png"):
        ds[4]


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_with_batch_sampler(small, workers):
    ds = ManifestDataset(small, size=6)
    sampler = IdentityBalancedSampler(small, p=2, k=2, seed=1, num_batches=2)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers)
    batches = list(loader)
    assert len(batches) == 2
    for b in batches:
        assert b["image"].shape == (4, 1, 6, 6)
        assert b["label"].dtype == torch.int64 and b["yaw"].dtype == torch.float64
        assert len(b["modality"]) == 4
        assert b["label"].tolist() == [ds.labels[small[i].subject] for i in b["index"].tolist()]


# ------------------------------------------------------------------------------ samplers
def _records(counts: dict[str, dict[str, int]]) -> Manifest:
    """A file-less manifest: counts[subject][modality] images each (samplers read only labels)."""
    recs = [
        make_record(f"{s}/{mod}{i}.png", s, mod, 0.0, "train")
        for s, mods in counts.items()
        for mod, n in mods.items()
        for i in range(n)
    ]
    return Manifest(recs, "/nonexistent")


@pytest.fixture
def crowd() -> Manifest:
    counts = {f"s{i}": {"vis": 1 + i % 5, "nir": i % 3} for i in range(12)}
    return _records(counts)


def test_identity_balanced_invariants(crowd):
    sampler = IdentityBalancedSampler(crowd, p=4, k=3, seed=5)
    assert len(sampler) == len(crowd) // 12
    batches = list(sampler)
    assert len(batches) == len(sampler)
    seen: Counter[str] = Counter()
    for batch in batches:
        assert len(batch) == 12
        subjects = [crowd[i].subject for i in batch]
        blocks = [subjects[j : j + 3] for j in range(0, 12, 3)]
        assert all(len(set(b)) == 1 for b in blocks)  # K consecutive images of one subject
        assert len({b[0] for b in blocks}) == 4  # P distinct subjects
        for j in range(0, 12, 3):
            block = batch[j : j + 3]
            pool = sum(1 for r in crowd if r.subject == subjects[j])
            if pool >= 3:
                assert len(set(block)) == 3  # without replacement when possible
        seen.update(b[0] for b in blocks)
    assert len(seen) == 12 and max(seen.values()) - min(seen.values()) <= 1  # balanced over subjects


def test_identity_balanced_too_few_subjects(crowd):
    with pytest.raises(DataError, match="at least p=20 subjects"):
        IdentityBalancedSampler(crowd, p=20, k=2)
    with pytest.raises(ArgumentError):
        IdentityBalancedSampler(crowd, p=0, k=2)


@pytest.mark.parametrize(
    "make",
    [
        lambda m, **kw: IdentityBalancedSampler(m, p=3, k=2, **kw),
        lambda m, **kw: NirVisPairSampler(m, batch_pairs=3, **kw),
        lambda m, **kw: SubjectGroupSampler(m, n=3, groups_per_batch=2, **kw),
    ],
    ids=["identity", "pairs", "groups"],
)
def test_sampler_determinism_epochs_and_sharding(crowd, make):
    a, b = make(crowd, seed=3), make(crowd, seed=3)
    assert list(a) == list(b)  # same seed, same epoch
    assert list(a) == list(a)  # re-iterating without set_epoch repeats the epoch
    e0 = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) != e0 and list(a) == list(b)
    assert list(make(crowd, seed=4)) != e0

    full = make(crowd, seed=3, num_batches=5, rank=0, world_size=1)
    shards = [make(crowd, seed=3, num_batches=5, rank=r, world_size=2) for r in range(2)]
    for s in shards:
        s.set_epoch(2)
    full.set_epoch(2)
    got = [list(s) for s in shards]
    assert [len(g) for g in got] == [len(s) for s in shards] == [2, 2]
    everything = list(full)
    assert got[0] == everything[0:4:2] and got[1] == everything[1:4:2]  # disjoint, covering
    assert not {tuple(x) for x in got[0]} & {tuple(x) for x in got[1]}


def test_nir_vis_pairs(crowd):
    sampler = NirVisPairSampler(crowd, batch_pairs=4, seed=0)
    eligible = {r.subject for r in crowd if r.modality == "nir"} & {r.subject for r in crowd if r.modality == "vis"}
    n_nir = sum(1 for r in crowd if r.modality == "nir" and r.subject in eligible)
    assert len(sampler) == n_nir // 4
    nir_seen = []
    for batch in sampler:
        assert len(batch) == 8
        for nir, vis in zip(batch[0::2], batch[1::2]):
            assert crowd[nir].modality == "nir" and crowd[vis].modality == "vis"
            assert crowd[nir].subject == crowd[vis].subject
        nir_seen.extend(batch[0::2])
    assert len(set(nir_seen)) == len(nir_seen)  # each NIR image at most once per epoch


def test_nir_vis_pairs_need_both_modalities():
    with pytest.raises(DataError, match="no subject has both"):
        NirVisPairSampler(_records({"a": {"vis": 2}, "b": {"nir": 2}}), batch_pairs=2)
    tiny = NirVisPairSampler(_records({"a": {"vis": 1, "nir": 1}, "b": {"nir": 3}}), batch_pairs=4)
    (batch,) = list(tiny)  # fewer pairs than a batch: reused to fill one
    assert len(batch) == 8 and {i for i in batch} == {0, 1}


def test_subject_groups(crowd):
    sampler = SubjectGroupSampler(crowd, n=3, groups_per_batch=2, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        assert len(batch) == 6
        for j in (0, 3):
            assert len({crowd[i].subject for i in batch[j : j + 3]}) == 1
            group = batch[j : j + 3]
            if sum(1 for r in crowd if r.subject == crowd[group[0]].subject) >= 3:
                assert len(set(group)) == 3


def test_rank_resolution():
    assert resolve_rank(None, None) == (0, 1)
    assert resolve_rank(1, 3) == (1, 3)
    with pytest.raises(ArgumentError):
        resolve_rank(2, 2)
    with pytest.raises(HFRError, match="fewer than the 4 ranks"):
        IdentityBalancedSampler(
            _records({"a": {"vis": 2}, "b": {"vis": 2}}), p=2, k=2, num_batches=2, rank=0, world_size=4
        )


def test_shuffle_batch_sampler_covers_each_index_once_per_epoch():
    from hfr.data.datasets import ShuffleBatchSampler

    s = ShuffleBatchSampler(10, 3, seed=1)
    s.set_epoch(0)
    first = list(s)
    assert len(first) == len(s) == 3 and all(len(b) == 3 for b in first)
    flat = [i for b in first for i in b]
    assert len(set(flat)) == 9 and set(flat) <= set(range(10))
    s.set_epoch(1)
    assert list(s) != first
    s.set_epoch(0, start=1)
    assert list(s) == first[1:]
    shards = [ShuffleBatchSampler(10, 2, seed=1, rank=r, world_size=2) for r in (0, 1)]
    got = [list(x) for x in shards]
    assert len(got[0]) == len(got[1]) == 2
    assert not set(map(tuple, got[0])) & set(map(tuple, got[1]))
    with pytest.raises(DataError, match="fewer than one batch"):
        ShuffleBatchSampler(2, 3)
