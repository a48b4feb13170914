"""DVG-Face generator files: what `hfr train-generator` writes at the end of a run, and the same file from
a training checkpoint (to measure a run at several budgets, as `benchmarks/cross_modal.py` does for its
learning curve).

A `dvg` generator file (`hfr.artifacts`, format `hfr-generator/1`) holds E_N, E_V and G (`generator`),
F_s when the run used one (`identity_sampler`, with its sizes under `config["sampler"]`), and
`attribute_codes`: z_N = E_N(x_N), z_V = E_V(x_V) (z = mu) of `ATTRIBUTE_BANK` real training pairs, row k
a random NIR and a random VIS image of one random paired training subject, drawn from the run's seed.
`hfr generate-pairs` decodes new identities with them by default (`dvg.generate`), as the released
sampling script decodes with the codes of real images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dvg.models import DualGenerator, IdentitySampler
from hfr.artifacts import GeneratorFileError, save_generator_file
from hfr.engine.seeding import derive_seed

METHOD = "dvg"
#: The generator file's module that holds the attribute codes of real training pairs.
ATTRIBUTE_CODES = "attribute_codes"
#: How many training pairs' codes a generator file stores, and the stream of their draw.
ATTRIBUTE_BANK, CODES_STREAM = 512, 0xC0DE


@torch.no_grad()
def encode_attribute_codes(
    generator: DualGenerator,
    dataset: Any,
    nir: Sequence[Sequence[int]],
    vis: Sequence[Sequence[int]],
    seed: int,
    count: int = ATTRIBUTE_BANK,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """{"nir": (count, 256), "vis": (count, 256)} codes of `count` random training pairs.

    `dataset[i]["image"]` is image i in [0, 1]; `nir[j]`, `vis[j]` list the NIR and VIS image indices of
    paired subject j. Row k: subject j drawn uniformly, then one of its NIR and one of its VIS images,
    all from `derive_seed(seed, CODES_STREAM)`; codes in eval mode (z = mu), on the CPU.
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, CODES_STREAM))

    def one(indices: Sequence[int]) -> int:
        return indices[int(torch.randint(len(indices), (1,), generator=gen))]

    subjects = torch.randint(len(nir), (count,), generator=gen).tolist()
    picks: dict[str, list[int]] = {"nir": [], "vis": []}
    for j in subjects:
        picks["nir"].append(one(nir[j]))
        picks["vis"].append(one(vis[j]))
    was_training = generator.training
    generator.eval()
    codes: dict[str, list[torch.Tensor]] = {"nir": [], "vis": []}
    try:
        for lo in range(0, count, 64):
            for domain, idx in picks.items():
                x = torch.stack([dataset[i]["image"] for i in idx[lo : lo + 64]]).to(device)
                codes[domain].append(generator.encode(x, domain, sample=False).z.float().cpu())
    finally:
        generator.train(was_training)
    return {domain: torch.cat(z) for domain, z in codes.items()}


def write_generator_file(
    path: str | os.PathLike,
    generator: DualGenerator,
    config: dict[str, Any],
    codes: dict[str, torch.Tensor],
    sampler: IdentitySampler | None = None,
    sampler_width: float | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write generator.pt atomically: `config` (size, width, deterministic, id_dim, recognizer_fingerprint)
    plus F_s's sizes when `sampler` is given; returns the path."""
    modules: dict[str, Any] = {"generator": generator.state_dict(), ATTRIBUTE_CODES: codes}
    config = dict(config)
    if sampler is not None:
        modules["identity_sampler"] = sampler.state_dict()
        config["sampler"] = {
            "feature_dim": sampler.feature_dim,
            "latent_dim": sampler.latent_dim,
            "width": float(sampler_width if sampler_width is not None else 1.0),
        }
    save_generator_file(path, METHOD, config, modules, meta or {})
    return Path(path)


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the generator file of a `dvg` training checkpoint: E_N, E_V and G of that step, F_s from the
    run's `data.identity_sampler`, and attribute codes encoded now from the run's training pairs (with the
    checkpoint's encoders and the run's seed). Errors name the checkpoint and what is wrong."""
    from dvg.config import DVGConfig
    from dvg.sampler_task import load_identity_sampler
    from hfr.config import from_dict
    from hfr.data.datasets import ManifestDataset, NirVisPairSampler
    from hfr.data.manifest import read_training_rows
    from hfr.safeload import load_weights_only

    ck = load_weights_only(checkpoint, "DVG-Face training checkpoint")
    try:
        if not isinstance(ck.get("task"), dict) or "generator" not in ck["task"]:
            raise KeyError("task.generator")
        cfg = from_dict(DVGConfig, ck["config"], where=str(checkpoint))
        g = DualGenerator(cfg.data.size, cfg.net.width, cfg.net.deterministic, id_dim=cfg.net.id_dim)
        g.load_state_dict(ck["task"]["generator"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise GeneratorFileError(
            f"{checkpoint}: not a DVG-Face training checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None
    rows = read_training_rows(
        cfg.data.train, cfg.data.split, ["nir", "vis"], example="data/nirvis", min_subjects=1, why="attribute codes"
    )
    pairs = NirVisPairSampler(rows, 1)
    dataset = ManifestDataset(rows, size=cfg.data.size, channels=3)
    codes = encode_attribute_codes(g, dataset, pairs.first, pairs.second, cfg.train.seed)
    sampler, sampler_width = None, None
    if cfg.data.identity_sampler:
        sampler, scfg = load_identity_sampler(cfg.data.identity_sampler)
        sampler_width = float(scfg["width"])
    config = {
        "size": cfg.data.size,
        "width": float(cfg.net.width),
        "deterministic": bool(cfg.net.deterministic),
        "id_dim": int(cfg.net.id_dim),
    }
    meta = {"train": str(cfg.data.train), "checkpoint": os.fspath(checkpoint), "step": int(ck.get("step", 0))}
    return write_generator_file(path, g.eval(), config, codes, sampler, sampler_width, meta)
