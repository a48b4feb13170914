"""Distributed data parallel under `torchrun`: process-group setup, device choice, small collectives.

`torchrun --nproc_per_node N -m hfr.cli train ...` (or `python -m torch.distributed.run`)
sets RANK, WORLD_SIZE and LOCAL_RANK; `init_distributed` reads them, picks the device
(`cuda:<LOCAL_RANK>` or CPU) and starts the process group (nccl on CUDA, gloo on CPU).
Without those variables everything runs in one process and no group is created.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from hfr.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: rank, world size, local rank, device, backend."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None
    owns_group: bool

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"environment variable {name}={text!r} is not an integer; launch with torchrun, "
            f"which sets RANK, WORLD_SIZE and LOCAL_RANK"
        ) from None


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """The torch device for a `train.device` choice ("auto", "cpu", "cuda") and local rank."""
    if choice == "cpu":
        return torch.device("cpu")
    if choice not in ("auto", "cuda"):
        raise ConfigError(f"train.device: {choice!r} is not one of 'auto', 'cpu', 'cuda'")
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise ConfigError(
                f"local rank {local_rank} has no GPU (this machine has {count}); launch at most "
                f"{count} processes per node or set train.device=cpu"
            )
        return torch.device("cuda", local_rank)
    if choice == "cuda":
        raise ConfigError("train.device is 'cuda' but torch sees no CUDA device; set train.device=auto or cpu")
    return torch.device("cpu")


def init_distributed(device_choice: str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Read RANK/WORLD_SIZE/LOCAL_RANK, choose the device and start the process group when needed.

    An already initialised group (started by the caller) is used as is and not owned (the
    caller destroys it). With WORLD_SIZE unset or 1, no group is created.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank)
        device = resolve_device(device_choice, local)
        return DistInfo(rank, world, local, device, dist.get_backend(), owns_group=False)
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if world <= 1:
        return DistInfo(0, 1, 0, resolve_device(device_choice, 0), None, owns_group=False)
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    device = resolve_device(device_choice, local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    kwargs: dict[str, Any] = {"backend": backend, "timeout": _dt.timedelta(seconds=timeout_s)}
    if device.type == "cuda":
        kwargs["device_id"] = device
    dist.init_process_group(**kwargs)
    log.info("distributed: rank %d of %d (local rank %d) on %s, backend %s", rank, world, local, device, backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, device, backend, owns_group=True)


def shutdown_distributed(info: DistInfo, clean: bool = True) -> None:
    """Destroy the process group if `init_distributed` created it.

    After a clean finish every rank first meets at a barrier (a rank tearing the group down
    while its peer still uses it can abort the peer); after an error there is no barrier,
    since a failed peer would never arrive.
    """
    if info.owns_group and dist.is_available() and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def _active(world_size: int) -> bool:
    return world_size > 1 and dist.is_available() and dist.is_initialized()


def any_true(flag: bool, info: DistInfo) -> bool:
    """True when `flag` is True on any rank (one tiny all-reduce when distributed)."""
    if not _active(info.world_size):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Each value averaged over the ranks (every rank must pass the same keys)."""
    if not _active(info.world_size) or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """`obj` from every rank, in rank order (a one-item list when not distributed)."""
    if not _active(info.world_size):
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if _active(info.world_size):
        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def broadcast_object(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (`obj` itself when not distributed)."""
    if not _active(info.world_size):
        return obj
    box = [obj if info.rank == src else None]
    dist.broadcast_object_list(box, src=src, device=info.device if info.device.type == "cuda" else None)
    return box[0]
