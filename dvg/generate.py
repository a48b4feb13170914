"""`hfr generate-pairs`: NIR-VIS pairs of new identities from a trained DVG-Face generator.

Pair i gets an identity f_s = F_s(n), n ~ N(0, I), and attribute codes z_N, z_V, all drawn
from a generator seeded by (seed, i), so pair i is the same whatever the batch size and however
often the run was interrupted. The attribute codes come from one of these sources
(`--attributes`):

- `codes`: the codes E_N(x_N), E_V(x_V) of real training pairs that `hfr train-generator` stores
  in generator.pt (`attribute_codes`: row k holds one NIR and one VIS image of one training
  subject); pair i takes row k drawn from (seed, i). The released sampling script's way
  (gen_samples.py encodes real images for the attributes), computed once at export;
- `real`: the same from images read now: z_N = E_N(x_N), z_V = E_V(x_V) of a random NIR and a
  random VIS image of one random subject of a paired dataset (`--data`, rows of `--split`,
  default `train`: the generator's own training set, never the test subjects), so a generated
  pair keeps a real pair's pose, expression and lighting and takes a new identity;
- `prior`: z ~ N(0, I), the paper's sampling; for a deterministic (released-code) generator a
  uniform point on the unit sphere, which its encoders' codes do not fill: on SynthFace the
  codes of training images have a mean pairwise cosine of 0.91 against 0.00 for the sphere, and
  such codes decode to faceless blobs;
- `auto` (default): `codes` when the file holds them (every generator trained since they were
  added), else `prior`.

The images are written as `images/g0000123/nir.png` and `vis.png`; the manifest (`subject` =
`g0000123`, `modality`, a `pair` column) is rewritten atomically after every batch, so an
interrupted run resumed with the same command continues after the last complete batch, without
duplicates or gaps. `generated.json` records the generator's fingerprint and the seed; a folder
holding another generator's pairs (or another seed's) is refused.

With a recognizer, the report gives identity consistency (mean cosine between the NIR and VIS
image of a pair) and diversity (mean cosine between the VIS images of different pairs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from dvg.export import ATTRIBUTE_CODES
from dvg.models import DualGenerator, IdentitySampler
from hfr.artifacts import GeneratorFileError, fingerprint, load_generator_file
from hfr.data.imageio import write_png
from hfr.data.manifest import MANIFEST_NAME, Manifest, make_record
from hfr.errors import ArgumentError, HFRError
from hfr.fileio import atomic_write_text
from hfr.viz import tensor_to_images

STATE_NAME = "generated.json"


class GeneratedPairsError(HFRError):
    """The output folder holds pairs of another generator or seed."""


@dataclass
class LoadedDVG:
    """A DVG-Face generator with its identity sampler, in eval mode."""

    generator: DualGenerator
    sampler: IdentitySampler
    fingerprint: str
    size: int
    #: (z_N, z_V) of real training pairs, each (K, 256), row k of one subject; None in older files
    codes: tuple[torch.Tensor, torch.Tensor] | None = None

    #: Modules of the file computed from the trained weights at export, not training state.
    derived_modules: ClassVar[tuple[str, ...]] = (ATTRIBUTE_CODES,)
    #: What the generated-face quality protocol (`hfr.eval.generator`) can ask of DVG-Face.
    protocol_tasks: ClassVar[tuple[str, ...]] = ("pairs",)
    #: Generated images are RGB.
    channels: ClassVar[int] = 3

    def synthesize(
        self, task: str, images: torch.Tensor, masks: torch.Tensor, yaws: torch.Tensor, seed: int
    ) -> torch.Tensor:
        """DVG-Face takes no input face; its protocol task is `pairs`."""
        raise ArgumentError(f"DVG-Face cannot {task} a face; its protocol task is pairs")

    def sample_pairs(self, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` new identities from F_s, each decoded as NIR and VIS with the `auto` attribute codes
        (`generate_batch`, the pairs `hfr generate-pairs` writes for the same seed by default)."""
        nir, vis = generate_batch(self, 0, count, seed, resolve_source(self, "auto"))
        return nir.float().cpu(), vis.float().cpu()


def load_dvg(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedDVG:
    """Load a DVG-Face generator.pt that holds F_s; errors name the file and what is missing."""
    p = Path(path)
    payload = load_generator_file(p, "dvg")
    c = payload["config"]
    if "identity_sampler" not in payload["modules"]:
        raise GeneratorFileError(
            f"{p}: this DVG-Face generator has no identity sampler F_s; train it with "
            f"data.identity_sampler set (configs/dvg/synth-identity-sampler.yaml first)"
        )
    try:
        g = DualGenerator(int(c["size"]), float(c["width"]), bool(c["deterministic"]), id_dim=int(c["id_dim"]))
        g.load_state_dict(payload["modules"]["generator"])
        sc = c["sampler"]
        s = IdentitySampler(int(sc["feature_dim"]), int(sc["latent_dim"]), float(sc["width"]))
        s.load_state_dict(payload["modules"]["identity_sampler"])
        codes = None
        if ATTRIBUTE_CODES in payload["modules"]:
            bank = payload["modules"][ATTRIBUTE_CODES]
            codes = (bank["nir"].float().to(device), bank["vis"].float().to(device))
            if codes[0].shape != codes[1].shape or codes[0].ndim != 2 or len(codes[0]) == 0:
                raise ValueError("attribute codes")
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise GeneratorFileError(
            f"{p}: DVG-Face generator file does not fit its own config "
            f"({type(exc).__name__}); it is corrupt or was edited"
        ) from None
    fp = fingerprint(
        "dvg",
        f"w{c['width']:g}",
        int(c["size"]),
        3,
        {**g.state_dict(), **{f"sampler.{k}": v for k, v in s.state_dict().items()}},
    )
    return LoadedDVG(g.eval().to(device), s.eval().to(device), fp, int(c["size"]), codes)


#: `--attributes` choices (module docstring).
ATTRIBUTE_SOURCES: tuple[str, ...] = ("auto", "codes", "prior", "real")


def resolve_source(loaded: LoadedDVG, attributes: str) -> str:
    """The attribute source `attributes` means for this generator: `auto` is `codes` when the file
    holds them, else `prior`; `codes` without them is an ArgumentError naming what to do."""
    if attributes == "auto":
        return "codes" if loaded.codes is not None else "prior"
    if attributes == "codes" and loaded.codes is None:
        raise ArgumentError(
            "--attributes codes: this generator file holds no attribute codes of training pairs (it was "
            "trained before they were stored); use --attributes real --data <its training set>, or prior"
        )
    return attributes


class RealAttributes:
    """Attribute images from a paired NIR-VIS dataset: pair i draws one subject with both
    modalities, then one NIR and one VIS image of it (module docstring, `--attributes real`)."""

    def __init__(self, data: str | os.PathLike, size: int, split: str = "train") -> None:
        from hfr.data.datasets import ManifestDataset

        manifest = Manifest.read(data)
        if split:
            manifest = manifest.filter(lambda r: r.split == split)
        nir: dict[str, list[int]] = {}
        vis: dict[str, list[int]] = {}
        for i, r in enumerate(manifest):
            if r.modality in ("nir", "vis"):
                (nir if r.modality == "nir" else vis).setdefault(r.subject, []).append(i)
        self.subjects = sorted(s for s in nir if s in vis)
        if not self.subjects:
            raise ArgumentError(
                f"--data {data}: no subject has both NIR and VIS images in split {split!r}; "
                f"--attributes real needs a paired NIR-VIS dataset (e.g. the generator's training "
                f"set; --split '' takes every row)"
            )
        self.nir = [nir[s] for s in self.subjects]
        self.vis = [vis[s] for s in self.subjects]
        self.dataset = ManifestDataset(manifest, size=size, channels=3)
        self.source, self.split = str(manifest.source), split
        self.rows = len(manifest)

    def draw(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One (NIR, VIS) image pair (each (1, 3, S, S) in [0, 1]) of one subject, drawn with `gen`."""
        j = int(torch.randint(len(self.subjects), (1,), generator=gen))
        a = self.nir[j][int(torch.randint(len(self.nir[j]), (1,), generator=gen))]
        b = self.vis[j][int(torch.randint(len(self.vis[j]), (1,), generator=gen))]
        return self.dataset[a]["image"][None], self.dataset[b]["image"][None]


@torch.no_grad()
def generate_batch(
    loaded: LoadedDVG, start: int, count: int, seed: int, attributes: RealAttributes | str = "prior"
) -> tuple[torch.Tensor, torch.Tensor]:
    """NIR and VIS images (count, 3, S, S) in [0, 1] of pairs start .. start + count - 1.

    Attribute codes from the prior ("prior"), the file's codes of training pairs ("codes"), or
    encoded from a `RealAttributes`' images (z = mu in eval mode).
    """
    g, s = loaded.generator, loaded.sampler
    device = next(g.parameters()).device
    ids, z_n, z_v, x_n, x_v = [], [], [], [], []
    for i in range(start, start + count):
        gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + i)
        ids.append(s.sample(1, generator=gen, device=device))
        if isinstance(attributes, RealAttributes):
            cpu = torch.Generator().manual_seed(seed * 1_000_003 + i)
            a, b = attributes.draw(cpu)
            x_n.append(a)
            x_v.append(b)
        elif attributes == "codes":
            assert loaded.codes is not None
            k = int(
                torch.randint(len(loaded.codes[0]), (1,), generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
            )
            z_n.append(loaded.codes[0][k : k + 1])
            z_v.append(loaded.codes[1][k : k + 1])
        else:
            z_n.append(g.encoder_nir.prior(1, generator=gen, device=device))
            z_v.append(g.encoder_vis.prior(1, generator=gen, device=device))
    if isinstance(attributes, RealAttributes):
        z_n = [g.encode(torch.cat(x_n).to(device), "nir", sample=False).z]
        z_v = [g.encode(torch.cat(x_v).to(device), "vis", sample=False).z]
    f = torch.cat(ids)
    return g.decode(f, torch.cat(z_n), "nir"), g.decode(f, torch.cat(z_v), "vis")


def _read_state(out: Path, loaded: LoadedDVG, seed: int, attributes: str) -> int:
    """Pairs already complete in `out` (0 for a new folder); refuses another generator's (or seed's,
    or attribute source's) pairs."""
    state_path = out / STATE_NAME
    if not state_path.is_file():
        if (out / MANIFEST_NAME).is_file():
            raise GeneratedPairsError(
                f"{out}: holds a manifest but no {STATE_NAME}; it is not a generate-pairs "
                f"folder of this generator: choose an empty or new folder"
            )
        return 0
    state = json.loads(state_path.read_text(encoding="utf-8"))
    theirs = (state.get("generator"), state.get("seed"), state.get("attributes", "prior"))
    if theirs != (loaded.fingerprint, seed, attributes):
        raise GeneratedPairsError(
            f"{out}: holds pairs of generator {theirs[0]} with seed {theirs[1]} and attributes "
            f"{theirs[2]!r}, not of this generator ({loaded.fingerprint}) with seed {seed} and "
            f"attributes {attributes!r}: choose another folder (or the same options to continue)"
        )
    return int(state.get("pairs", 0))


def generate_pairs(
    loaded: LoadedDVG,
    out: str | os.PathLike,
    num: int,
    seed: int = 0,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    attributes: str = "auto",
    data: str | os.PathLike | None = None,
    split: str = "train",
) -> dict[str, Any]:
    """Write `num` pairs into `out` (continuing an interrupted run); returns counts and the manifest path.

    `attributes`: a source of `ATTRIBUTE_SOURCES` ("real" takes the rows of `split` of `data`, a
    paired dataset); "auto" is resolved first (`resolve_source`) and the folder records the result.
    """
    if num < 1 or batch_size < 1:
        raise ArgumentError(f"--num and --batch-size must be >= 1, got {num} and {batch_size}")
    if attributes not in ATTRIBUTE_SOURCES:
        raise ArgumentError(f"--attributes must be one of {', '.join(ATTRIBUTE_SOURCES)}, got {attributes!r}")
    if (attributes == "real") != (data is not None):
        raise ArgumentError("--attributes real needs --data (a paired NIR-VIS dataset); --data is only used with it")
    attributes = resolve_source(loaded, attributes)
    real = RealAttributes(data, loaded.size, split) if data is not None else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = _read_state(out, loaded, seed, attributes)
    records = list(Manifest.read(out)) if done else []
    records = [r for r in records if int(r.get("pair", "-1")) < done]
    start_done = done
    while done < num:
        count = min(batch_size, num - done)
        nir, vis = (
            tensor_to_images(t) for t in generate_batch(loaded, done, count, seed, real or attributes)
        )  # [0, 1] -> uint8
        for k in range(count):
            i = done + k
            subject = f"g{i:07d}"
            for modality, image in (("nir", nir[k]), ("vis", vis[k])):
                rel = f"images/{subject}/{modality}.png"
                write_png(out / rel, image)
                records.append(make_record(rel, subject, modality, None, "", pair=str(i)))
        done += count
        Manifest(records, out).write(out)
        state = {"generator": loaded.fingerprint, "seed": seed, "attributes": attributes, "pairs": done}
        if real is not None:
            state["attribute_data"] = {"manifest": real.source, "split": real.split, "rows": real.rows}
        atomic_write_text(out / STATE_NAME, json.dumps(state) + "\n")
        if progress is not None:
            progress(done, num)
    return {"out": str(out), "pairs": done, "new_pairs": done - start_done, "manifest": str(out / MANIFEST_NAME)}


@torch.no_grad()
def pair_statistics(recognizer: Any, manifest: Manifest, max_pairs: int = 2000) -> dict[str, float]:
    """Identity consistency (mean NIR-VIS cosine within a pair) and diversity (mean cosine between
    different pairs' VIS images) under `recognizer` (an `hfr.recognizer.export.Recognizer`)."""
    from hfr.embed import embed_manifest

    pairs = sorted({int(r.get("pair")) for r in manifest})[:max_pairs]
    keep = set(pairs)
    rows = manifest.filter(lambda r: int(r.get("pair")) in keep)
    feats = torch.from_numpy(embed_manifest(recognizer, rows))
    index = {(int(r.get("pair")), r.modality): i for i, r in enumerate(rows)}
    nir = F.normalize(feats[[index[(p, "nir")] for p in pairs]], dim=1)
    vis = F.normalize(feats[[index[(p, "vis")] for p in pairs]], dim=1)
    n = len(pairs)
    gram = vis @ vis.T
    diversity = float((gram.sum() - gram.diagonal().sum()) / max(1, n * (n - 1)))
    return {"pairs": n, "consistency": float((nir * vis).sum(1).mean()), "diversity": diversity}
