"""Torch Datasets over manifests, and the batch samplers that training recipes need.

`ManifestDataset` turns a `Manifest` into float image tensors with integer identity labels.
Three batch samplers (each yields whole batches as lists of dataset indices, so pass one to
`DataLoader(dataset, batch_sampler=...)`) arrange those indices for the training objectives:

- `IdentityBalancedSampler`: P subjects x K images per batch (metric / triplet losses).
- `NirVisPairSampler`: same-subject (NIR, VIS) pairs (cross-modal contrastive training).
- `SubjectGroupSampler`: groups of n images of one subject (DR-GAN multi-image mode).

Every sampler is deterministic given its `seed` and the epoch set with `set_epoch(e)` (as with
`torch.utils.data.DistributedSampler`; without `set_epoch` every pass repeats epoch 0) and
shards whole batches across distributed ranks: rank r of W takes batches r, r + W, r + 2W, ...
of the epoch's global batch list, so ranks see disjoint batches and the same batch count.
`set_epoch(e, start=n)` skips a rank's first n batches of the epoch without loading them
(how the training engine resumes exactly mid-epoch).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from hfr.data.imageio import read_image
from hfr.data.manifest import Manifest
from hfr.errors import ArgumentError, DataError, ImageError

__all__ = [
    "ManifestDataset",
    "IdentityBalancedSampler",
    "NirVisPairSampler",
    "SubjectGroupSampler",
    "ShuffleBatchSampler",
    "resolve_rank",
]


def _row_name(manifest: Manifest, index: int) -> str:
    """`<manifest file> row N` for record `index` (the header is row 1, as in ManifestError)."""
    return manifest.where(index)


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """A uint8 (H, W) or (H, W, C) array as a float32 (C, H, W) tensor in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    if t.ndim == 2:
        t = t.unsqueeze(-1)
    return t.permute(2, 0, 1).contiguous().to(torch.float32).div_(255.0)


def _resize(image: torch.Tensor, size: int | None, mode: str) -> torch.Tensor:
    """Resize a (C, H, W) tensor to (C, size, size); None or an equal size returns it unchanged."""
    if size is None or (image.shape[-2] == size and image.shape[-1] == size):
        return image
    if mode == "nearest":
        out = F.interpolate(image.unsqueeze(0), size=(size, size), mode="nearest-exact")
    else:
        out = F.interpolate(image.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.squeeze(0).clamp_(0.0, 1.0)


class ManifestDataset(Dataset):
    """A map-style Dataset over a manifest: one dict of tensors and labels per row.

    Each item is a dict with
    - `image`: float32 (C, H, W) in [0, 1]; C = `channels` (1 grayscale, 3 RGB; a one-channel
      image such as NIR is replicated to 3 channels when RGB is asked), H = W = `size` when
      `size` is given (antialiased bilinear resize), else the file's own size;
    - `label`: int, the dense identity label from `labels` (default `manifest.subject_index()`);
    - `index`: int, the manifest row index; `yaw`: float degrees (nan when unknown);
    - `modality`: str, `subject`: str;
    - with `load_targets=True`, `mask` (float32 (1, H, W), nearest resize) when the manifest
      has a `mask_path` column and `clean` (like `image`) when it has `clean_path`; every row
      must then name its target files (a row with an empty target path is a DataError).

    Works with the default collate function and any `num_workers`. A file that cannot be
    decoded raises ImageError naming the manifest row.
    """

    def __init__(
        self,
        manifest: Manifest,
        size: int | None = None,
        channels: int = 1,
        labels: Mapping[str, int] | None = None,
        load_targets: bool = False,
    ) -> None:
        if channels not in (1, 3):
            raise ArgumentError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels!r}")
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise ArgumentError(f"size must be a positive integer or None, not {size!r}")
        self.manifest = manifest
        self.size = size
        self.channels = channels
        self.labels: dict[str, int] = dict(labels) if labels is not None else manifest.subject_index()
        missing = sorted({r.subject for r in manifest if r.subject not in self.labels})
        if missing:
            shown = ", ".join(repr(s) for s in missing[:5])
            raise DataError(
                f"subject(s) {shown}{' ...' if len(missing) > 5 else ''} of the manifest "
                f"have no label in the given label mapping; build the mapping from a "
                f"manifest that holds every subject"
            )
        self.load_targets = load_targets
        self.target_columns: list[str] = []
        if load_targets:
            self.target_columns = [c for c in ("mask_path", "clean_path") if c in manifest.columns]
            for i, rec in enumerate(manifest):
                for col in self.target_columns:
                    if not rec.get(col):
                        raise DataError(
                            f"{_row_name(manifest, i)}: empty {col} for {rec.path!r} but "
                            f"load_targets=True needs it on every row; fill it or "
                            f"filter the manifest"
                        )

    def __len__(self) -> int:
        return len(self.manifest)

    def _load(self, index: int, path: str, mode: str) -> np.ndarray:
        try:
            return read_image(self.manifest.resolve(path), mode)
        except ImageError as exc:
            raise ImageError(f"{_row_name(self.manifest, index)}: {exc}") from None

    def __getitem__(self, index: int) -> dict:
        rec = self.manifest[index]
        mode = "L" if self.channels == 1 else "RGB"
        image = _resize(_to_tensor(self._load(index, rec.path, mode)), self.size, "bilinear")
        item: dict = {
            "image": image,
            "label": self.labels[rec.subject],
            "index": index,
            "yaw": float(rec.yaw) if rec.yaw is not None else math.nan,
            "modality": rec.modality,
            "subject": rec.subject,
        }
        h, w = image.shape[-2:]
        if "mask_path" in self.target_columns:
            mask = _to_tensor(self._load(index, rec.get("mask_path"), "L"))
            item["mask"] = _resize_to(mask, h, w, "nearest")
        if "clean_path" in self.target_columns:
            clean = _to_tensor(self._load(index, rec.get("clean_path"), mode))
            item["clean"] = _resize_to(clean, h, w, "bilinear")
        return item


def _resize_to(image: torch.Tensor, h: int, w: int, mode: str) -> torch.Tensor:
    """Resize a (C, H', W') target to the image's (h, w) (targets may be stored at another size)."""
    if image.shape[-2:] == (h, w):
        return image
    if mode == "nearest":
        return F.interpolate(image.unsqueeze(0), size=(h, w), mode="nearest-exact").squeeze(0)
    return (
        F.interpolate(image.unsqueeze(0), size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        .squeeze(0)
        .clamp_(0.0, 1.0)
    )


# ---------------------------------------------------------------------------- samplers
def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world_size): the given values, else torch.distributed's when initialised, else (0, 1)."""
    dist_on = torch.distributed.is_available() and torch.distributed.is_initialized()
    if world_size is None:
        world_size = torch.distributed.get_world_size() if dist_on else 1
    if rank is None:
        rank = torch.distributed.get_rank() if dist_on else 0
    if world_size < 1:
        raise ArgumentError(f"world_size must be >= 1, not {world_size}")
    if not 0 <= rank < world_size:
        raise ArgumentError(f"rank must be in [0, {world_size - 1}] for world_size {world_size}, not {rank}")
    return rank, world_size


def _positive(name: str, value: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ArgumentError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _by_subject(manifest: Manifest, indices: Sequence[int] | None = None) -> dict[str, list[int]]:
    """Row indices grouped by subject, subjects in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i in range(len(manifest)) if indices is None else indices:
        groups.setdefault(manifest[i].subject, []).append(i)
    return groups


class _ShardedBatchSampler(Sampler, abc.ABC):
    """Common machinery: seed/epoch RNG, set_epoch, sharding of the global batch list."""

    def __init__(self, seed: int, num_batches: int, rank: int | None, world_size: int | None) -> None:
        self.seed = int(seed)
        self.epoch = 0
        self.start = 0
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.num_batches = num_batches
        if num_batches < self.world_size:
            raise DataError(
                f"{type(self).__name__}: an epoch has {num_batches} batch(es), fewer than the "
                f"{self.world_size} ranks; use smaller batches, more data or fewer ranks"
            )

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Choose the epoch whose batches the next iteration yields (call once per epoch).

        `start` skips this rank's first `start` batches of the epoch without touching the
        dataset (the batch lists are index lists), so a resumed run continues mid-epoch
        exactly; it holds for every pass until the next `set_epoch`. `len()` stays the full
        per-rank count; a pass yields `len(self) - start` batches.
        """
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start <= len(self):
            raise ArgumentError(
                f"{type(self).__name__}.set_epoch: start must be an integer in "
                f"[0, {len(self)}] (batches per epoch on this rank), not {start!r}"
            )
        self.epoch = int(epoch)
        self.start = int(start)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch]))

    @abc.abstractmethod
    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        """Every batch of the epoch, across all ranks, drawn from `rng`."""

    def __len__(self) -> int:
        return self.num_batches // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._global_batches(self._rng())
        per_rank = len(self)
        # drop the remainder so that every rank yields the same number of batches
        first = self.rank + self.start * self.world_size
        yield from batches[first : per_rank * self.world_size : self.world_size]


class ShuffleBatchSampler(_ShardedBatchSampler):
    """Plain shuffled batches of `batch_size` indices from range(n) (cross-entropy training).

    Each epoch is a fresh permutation (seeded by seed and epoch); the last incomplete batch
    is dropped, so an epoch holds n // batch_size batches across all ranks.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int = 0, rank: int | None = None, world_size: int | None = None
    ) -> None:
        self.n = _positive("n (dataset size)", n)
        self.batch_size = _positive("batch_size", batch_size)
        if self.n < self.batch_size:
            raise DataError(
                f"ShuffleBatchSampler: {self.n} images are fewer than one batch of "
                f"{self.batch_size}; lower the batch size or use more data"
            )
        super().__init__(seed, self.n // self.batch_size, rank, world_size)

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        order = rng.permutation(self.n)
        b = self.batch_size
        return [order[i * b : (i + 1) * b].tolist() for i in range(self.num_batches)]


def _take(pool: list[int], k: int, rng: np.random.Generator) -> list[int]:
    """k items of `pool`: without replacement when it holds k or more, else with replacement."""
    if len(pool) >= k:
        return [pool[j] for j in rng.choice(len(pool), size=k, replace=False)]
    return [pool[j] for j in rng.integers(0, len(pool), size=k)]


class IdentityBalancedSampler(_ShardedBatchSampler):
    """Batches of P distinct subjects x K images of each (P*K indices, subject-major).

    A batch is [s0_img0 .. s0_img(K-1), s1_img0, ...]. Subjects are drawn from a shuffled order
    of all subjects, so over an epoch every subject comes up about equally often; a subject
    with fewer than K images is sampled with replacement, otherwise without. An epoch holds
    `num_batches` batches across all ranks (default: len(manifest) // (P*K), at least
    `world_size`). Raises DataError when the manifest has fewer than P subjects.
    """

    def __init__(
        self,
        manifest: Manifest,
        p: int,
        k: int,
        seed: int = 0,
        num_batches: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.p = _positive("p (subjects per batch)", p)
        self.k = _positive("k (images per subject)", k)
        self.groups = list(_by_subject(manifest).values())
        if len(self.groups) < self.p:
            raise DataError(
                f"IdentityBalancedSampler needs at least p={self.p} subjects but the manifest "
                f"has {len(self.groups)}; lower p or use a dataset with more identities"
            )
        _, ws = resolve_rank(rank, world_size)
        if num_batches is None:
            num_batches = max(ws, len(manifest) // (self.p * self.k))
        super().__init__(seed, _positive("num_batches", num_batches), rank, world_size)

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        batches: list[list[int]] = []
        order: list[int] = []
        for _ in range(self.num_batches):
            if len(order) < self.p:
                # refill with a fresh permutation that avoids repeating a subject inside one batch
                rest = set(order)
                fresh = [int(s) for s in rng.permutation(len(self.groups)) if int(s) not in rest]
                order = order + fresh
            chosen, order = order[: self.p], order[self.p :]
            batch: list[int] = []
            for s in chosen:
                batch.extend(_take(self.groups[s], self.k, rng))
            batches.append(batch)
        return batches


class NirVisPairSampler(_ShardedBatchSampler):
    """Batches of same-subject (NIR, VIS) pairs, flattened as [nir_0, vis_0, nir_1, vis_1, ...].

    Only subjects with images in both modalities take part. An epoch visits every NIR image
    of those subjects once in a shuffled order, pairing each with a random VIS image of the
    same subject, and cuts the pairs into batches of `batch_pairs` (a last partial batch is
    dropped; when there are fewer pairs than one batch per rank, pairs are reused to fill).
    So `batch[0::2]` are NIR indices and `batch[1::2]` their VIS partners. The modality
    names are `nir` and `vis` unless `modalities=(a, b)` is given. Raises DataError when no
    subject has both modalities.
    """

    def __init__(
        self,
        manifest: Manifest,
        batch_pairs: int,
        seed: int = 0,
        modalities: tuple[str, str] = ("nir", "vis"),
        num_batches: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.batch_pairs = _positive("batch_pairs", batch_pairs)
        a, b = modalities
        if a == b:
            raise ArgumentError(f"modalities must be two different names, got {modalities!r}")
        self.modalities = (a, b)
        first = _by_subject(manifest, [i for i, r in enumerate(manifest) if r.modality == a])
        second = _by_subject(manifest, [i for i, r in enumerate(manifest) if r.modality == b])
        self.subjects = [s for s in first if s in second]
        if not self.subjects:
            raise DataError(
                f"NirVisPairSampler: no subject has both {a!r} and {b!r} images "
                f"(the manifest has {dict(manifest.modalities())}); use a "
                f"cross-modal dataset or filter it to subjects with both"
            )
        self.first = [first[s] for s in self.subjects]
        self.second = [second[s] for s in self.subjects]
        self.anchors = [(j, i) for j, idx in enumerate(self.first) for i in idx]
        _, ws = resolve_rank(rank, world_size)
        if num_batches is None:
            num_batches = max(ws, len(self.anchors) // self.batch_pairs)
        super().__init__(seed, _positive("num_batches", num_batches), rank, world_size)

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        need = self.num_batches * self.batch_pairs
        order: list[int] = []
        while len(order) < need:
            order.extend(int(j) for j in rng.permutation(len(self.anchors)))
        flat: list[int] = []
        for j in order[:need]:
            s, nir = self.anchors[j]
            partners = self.second[s]
            flat.append(nir)
            flat.append(partners[int(rng.integers(0, len(partners)))])
        step = 2 * self.batch_pairs
        return [flat[i : i + step] for i in range(0, len(flat), step)]


class SubjectGroupSampler(_ShardedBatchSampler):
    """Batches of `groups_per_batch` groups of `n` images of one subject, each group consecutive.

    A batch is [g0_0 .. g0_(n-1), g1_0 .. g1_(n-1), ...] with g_i all from one subject (DR-GAN's
    multi-image mode fuses each run of n). An epoch shuffles every subject's images and cuts
    them into groups of n (a subject's last short group is topped up from its other images,
    with replacement when it has fewer than n), shuffles the groups and cuts them into batches
    (a last partial batch is dropped; groups are reused when there are fewer than one batch
    per rank). Different groups in a batch may share a subject.
    """

    def __init__(
        self,
        manifest: Manifest,
        n: int,
        groups_per_batch: int,
        seed: int = 0,
        num_batches: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.n = _positive("n (images per group)", n)
        self.groups_per_batch = _positive("groups_per_batch", groups_per_batch)
        self.subject_rows = list(_by_subject(manifest).values())
        if not self.subject_rows:
            raise DataError("SubjectGroupSampler: the manifest is empty; give it a dataset with images")
        groups_per_epoch = sum(math.ceil(len(rows) / self.n) for rows in self.subject_rows)
        _, ws = resolve_rank(rank, world_size)
        if num_batches is None:
            num_batches = max(ws, groups_per_epoch // self.groups_per_batch)
        super().__init__(seed, _positive("num_batches", num_batches), rank, world_size)

    def _epoch_groups(self, rng: np.random.Generator) -> list[list[int]]:
        groups: list[list[int]] = []
        for rows in self.subject_rows:
            shuffled = [rows[j] for j in rng.permutation(len(rows))]
            for start in range(0, len(shuffled), self.n):
                group = shuffled[start : start + self.n]
                if len(group) < self.n:
                    others = [r for r in rows if r not in group] or rows
                    group = group + _take(others, self.n - len(group), rng)
                groups.append(group)
        return [groups[j] for j in rng.permutation(len(groups))]

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        need = self.num_batches * self.groups_per_batch
        groups: list[list[int]] = []
        while len(groups) < need:
            groups.extend(self._epoch_groups(rng))
        batches = []
        for b in range(self.num_batches):
            batch: list[int] = []
            for g in groups[b * self.groups_per_batch : (b + 1) * self.groups_per_batch]:
                batch.extend(g)
            batches.append(batch)
        return batches
