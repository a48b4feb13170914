"""The generated-face quality protocol: what a generator's faces carry, against SynthFace's ground truth.

Rank-1 at the end of a long pipeline cannot tell a generator that ignores its pose code from one
whose faces lose their identity, or from a recognizer that has not learned. SynthFace can render
every test subject at any pose, light, modality and without occluders, so each generated face has
a ground-truth image, and this protocol measures each property on its own
(`hfr evaluate --protocol generator`):

- **pose**: a yaw estimator (`hfr.pose`, trained on real training images) applied to the
  generated faces: mean absolute error to the target yaw and accuracy within the nearest bin; the
  same on the real ground-truth images is the floor (the estimator's own error);
- **identity**: cosines of an independent *judge* recognizer (never the F a generator trained
  with) between each generated face and its subject's ground-truth image, against other
  subjects' ground truth at the same condition: verification AUC and TAR@FAR=1%, and rank-1 of
  the generated faces against the data's real gallery (`gallery` = 1 rows: frontal, neutral);
  the input faces themselves (the raw probes) are measured the same way beside;
- **fidelity**: L1, PSNR (an exact copy counts PSNR_CAP = 100 dB) and SSIM to the ground truth
  (inside and outside the occluder's mask for de-occlusion), and a Frechet distance between
  generated and real faces in the judge's feature space (an FD that needs no download);
- **pairs** (a generator of paired NIR-VIS faces of new identities): judge cosines within
  generated pairs against between pairs (TAR@FAR=1% beside real test pairs'), the FD of each
  modality to its real images beside the FD between the real NIR and VIS sets, and each generated
  identity's distance to its nearest training identity beside the distance between two real
  images of one subject (new faces, not copies).

Tasks (what is asked of the generator) and the ground truth each takes from the manifest:

| task | input | target | ground truth |
| --- | --- | --- | --- |
| `rotate` | test faces under the first light | every yaw bin of the data | the subject's image at that yaw and light |
| `frontalize` | non-frontal test faces | yaw 0 | `frontal_path` (else the subject's yaw-0 image at that light) |
| `deocclude` | occluded test faces and their masks | the input's yaw | `clean_path` |
| `pairs` | none (new identities) | NIR and VIS | real test pairs (statistics only) |

A generator takes part through the object its method's loader returns
(`hfr.artifacts.load_generator`): `protocol_tasks` (the tasks it can do), `synthesize(task,
images, masks, yaws, seed)` and, for `pairs`, `sample_pairs(count, seed)` (`Synthesizer`). Two
reference generators need no file: `truth` returns the ground truth (the floor: pose error =
the estimator's, identity AUC 1, FD 0) and `grey` a constant grey image (chance).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from hfr.data.manifest import Manifest, Record
from hfr.errors import ArgumentError, DataError
from hfr.eval import quality

log = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("rotate", "frontalize", "deocclude", "pairs")
REFERENCE_GENERATORS: tuple[str, ...] = ("truth", "grey")
#: The false accept rate of the TAR figures.
FAR = 0.01
#: Impostor scores drawn per generated face (other subjects' ground truth at its condition).
IMPOSTORS_PER_FACE = 64
#: The most distinct test yaws a `rotate` data set may have (its targets are its poses).
MAX_YAW_BINS = 25
#: PSNR of an image equal to its ground truth (where the MSE is 0) is reported as this many dB.
PSNR_CAP = 100.0
#: Cosines are rounded to this many decimals before verification, so that identical faces tie
#: whatever the float rounding of the batch they were embedded in.
SCORE_DECIMALS = 6


@runtime_checkable
class Synthesizer(Protocol):
    """What a method's loaded generator offers the protocol (see the module docstring)."""

    protocol_tasks: tuple[str, ...]
    size: int
    channels: int

    def synthesize(
        self, task: str, images: torch.Tensor, masks: torch.Tensor, yaws: torch.Tensor, seed: int
    ) -> torch.Tensor:
        """Generated faces (N, C, S, S) in [0, 1] for inputs (N, C, S, S) in [0, 1], masks (N, 1, S, S)
        in [0, 1] (1 = occluded) and target yaws (N,) in degrees."""
        ...

    def sample_pairs(self, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` NIR and VIS faces (each (count, C, S, S) in [0, 1]) of `count` new identities."""
        ...


@dataclass
class Condition:
    """One face asked of a generator: its input row, target yaw, ground truth and group labels."""

    source: int | None  #: row of the input face in the manifest (None: no input)
    subject: str
    target_yaw: float | None
    truth: Path | None  #: the ground-truth image
    mask: Path | None = None  #: the occluder's mask of the input (255 = occluded)
    groups: dict[str, str] = field(default_factory=dict)  #: e.g. {"target_yaw": "-45", "occlusion": "scarf"}


@dataclass
class Judges:
    """The measuring instruments: a judge recognizer and a yaw estimator (either may be None)."""

    judge: Any | None  #: a `hfr.recognizer.export.Recognizer`
    yaw: Any | None  #: an object with `estimate(images) -> (N,) degrees` (`hfr.pose`)
    yaw_bins: tuple[float, ...] = ()

    def features(self, images: torch.Tensor) -> np.ndarray:
        """L2-normalised judge features of (N, C, H, W) images in [0, 1]."""
        from hfr.embed import embed_tensor

        assert self.judge is not None
        f = embed_tensor(self.judge, images)
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def _label(value: float) -> str:
    return f"{value:g}"


def yaw_bins_of(manifest: Manifest) -> tuple[float, ...]:
    """The distinct yaws of the test rows (a SynthFace multipie-like layout has 9)."""
    yaws = sorted({round(float(r.yaw), 3) for r in manifest if r.yaw is not None and r.split == "test"})
    return tuple(yaws)


def _light(rec: Record) -> str:
    return rec.get("illumination")


def rotate_conditions(manifest: Manifest, max_inputs: int = 240, seed: int = 0) -> list[Condition]:
    """`rotate`: test faces under the first light, each asked for every yaw of the data.

    Inputs are drawn evenly over subjects and yaws (at most `max_inputs`, deterministic in `seed`);
    the ground truth of (input, yaw t) is the subject's image at yaw t under the input's light.
    """
    index = {(r.subject, round(float(r.yaw), 3), _light(r)): i for i, r in enumerate(manifest) if r.yaw is not None}
    test = [i for i, r in enumerate(manifest) if r.split == "test" and r.yaw is not None]
    if not test:
        raise DataError(f"{manifest.source}: no test rows with a yaw; the rotate task needs a multipie-like set")
    lights = sorted({_light(manifest[i]) for i in test})
    first = "neutral" if "neutral" in lights else lights[0]
    inputs = [i for i in test if _light(manifest[i]) == first]
    inputs = _spread(inputs, max_inputs, seed)
    bins = yaw_bins_of(manifest)
    if len(bins) > MAX_YAW_BINS:
        raise DataError(
            f"{manifest.source}: the test faces have {len(bins)} distinct yaws; the rotate task needs poses on a "
            f"grid (at most {MAX_YAW_BINS}, e.g. SynthFace multipie's 9) so each target has a ground truth"
        )
    out = []
    for i in inputs:
        r = manifest[i]
        for t in bins:
            j = index.get((r.subject, t, first))
            if j is None:
                continue
            out.append(
                Condition(
                    i,
                    r.subject,
                    t,
                    manifest.image_path(j),
                    groups={"target_yaw": _label(t), "source_abs_yaw": _label(abs(float(r.yaw or 0)))},
                )
            )
    return out


def frontalize_conditions(manifest: Manifest, max_inputs: int = 600, seed: int = 0) -> list[Condition]:
    """`frontalize`: non-frontal test faces, target yaw 0, truth `frontal_path` (else the yaw-0 image at
    the input's light)."""
    index = {(r.subject, _light(r)): i for i, r in enumerate(manifest) if r.yaw is not None and float(r.yaw) == 0}
    rows = [i for i, r in enumerate(manifest) if r.split == "test" and r.yaw is not None and float(r.yaw) != 0]
    out = []
    for i in _spread(rows, max_inputs, seed):
        r = manifest[i]
        truth: Path | None = manifest.resolve(r.get("frontal_path")) if r.get("frontal_path") else None
        if truth is None:
            j = index.get((r.subject, _light(r)))
            if j is None:
                continue
            truth = manifest.image_path(j)
        groups = {"source_abs_yaw": _label(abs(float(r.yaw or 0)))}
        if r.get("occlusion"):
            groups["occlusion"] = r.get("occlusion")
        mask = manifest.resolve(r.get("mask_path")) if r.get("mask_path") else None
        out.append(Condition(i, r.subject, 0.0, truth, mask=mask, groups=groups))
    if not out:
        raise DataError(f"{manifest.source}: no non-frontal test rows with a frontal ground truth")
    return out


def deocclude_conditions(manifest: Manifest, max_inputs: int = 600, seed: int = 0) -> list[Condition]:
    """`deocclude`: occluded test faces (rows with `mask_path` and `clean_path`); truth = the clean image."""
    rows = [i for i, r in enumerate(manifest) if r.split == "test" and r.get("mask_path") and r.get("clean_path")]
    if not rows:
        raise DataError(
            f"{manifest.source}: no test rows with mask_path and clean_path; the deocclude task needs an "
            f"occluded set (hfr data synth --preset occluded)"
        )
    out = []
    for i in _spread(rows, max_inputs, seed):
        r = manifest[i]
        groups = {"occlusion": r.get("occlusion") or "?", "source_abs_yaw": _label(abs(float(r.yaw or 0)))}
        out.append(
            Condition(
                i,
                r.subject,
                float(r.yaw) if r.yaw is not None else None,
                manifest.resolve(r.get("clean_path")),
                mask=manifest.resolve(r.get("mask_path")),
                groups=groups,
            )
        )
    return out


CONDITION_BUILDERS: dict[str, Callable[..., list[Condition]]] = {
    "rotate": rotate_conditions,
    "frontalize": frontalize_conditions,
    "deocclude": deocclude_conditions,
}


def _spread(rows: list[int], limit: int, seed: int) -> list[int]:
    """At most `limit` of `rows`, drawn without replacement with `seed`, in their original order."""
    if limit <= 0 or len(rows) <= limit:
        return list(rows)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(rows), size=limit, replace=False))
    return [rows[int(k)] for k in keep]


def load_images(paths: Sequence[Path], size: int, channels: int) -> torch.Tensor:
    """(N, channels, size, size) float in [0, 1] from image files (antialiased bilinear resize)."""
    from hfr.data.imageio import read_image

    out = []
    mode = "L" if channels == 1 else "RGB"
    for p in paths:
        a = torch.from_numpy(np.ascontiguousarray(read_image(p, mode))).float().div_(255.0)
        a = a.unsqueeze(0) if a.ndim == 2 else a.permute(2, 0, 1)
        out.append(a)
    if not out:
        return torch.zeros(0, channels, size, size)
    x = torch.stack(out)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp_(0, 1)


def _cached_loader(size: int, channels: int) -> Callable[[Sequence[Path | None]], torch.Tensor]:
    cache: dict[Path, torch.Tensor] = {}

    def load(paths: Sequence[Path | None]) -> torch.Tensor:
        todo = sorted({p for p in paths if p is not None and p not in cache})
        if todo:
            for p, img in zip(todo, load_images(todo, size, channels)):
                cache[p] = img
        blank = torch.zeros(channels, size, size)
        return torch.stack([cache[p] if p is not None else blank for p in paths])

    return load


class ReferenceGenerator:
    """`truth` (returns the ground truth: the protocol's floor) or `grey` (a constant 0.5 image: chance)."""

    protocol_tasks = TASKS

    def __init__(self, kind: str, size: int, channels: int) -> None:
        if kind not in REFERENCE_GENERATORS:
            raise ArgumentError(f"unknown reference generator {kind!r}; use one of {', '.join(REFERENCE_GENERATORS)}")
        self.kind, self.size, self.channels = kind, size, channels
        self.truth: torch.Tensor | None = None  # set by the protocol before synthesize
        self.pairs: tuple[torch.Tensor, torch.Tensor] | None = None

    def synthesize(
        self, task: str, images: torch.Tensor, masks: torch.Tensor, yaws: torch.Tensor, seed: int
    ) -> torch.Tensor:
        """The ground truth (`truth`) or grey images of the inputs' shape."""
        if self.kind == "grey" or self.truth is None:
            return torch.full_like(images, 0.5)
        return self.truth.clone()

    def sample_pairs(self, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Real test pairs (`truth`: set by the protocol) or grey pairs."""
        if self.kind == "truth" and self.pairs is not None:
            return self.pairs[0][:count].clone(), self.pairs[1][:count].clone()
        grey = torch.full((count, self.channels, self.size, self.size), 0.5)
        return grey, grey.clone()


def _groups_of(conditions: Sequence[Condition]) -> dict[str, dict[str, list[int]]]:
    """{group name: {value: [condition indices]}} plus the overall group."""
    out: dict[str, dict[str, list[int]]] = {"all": {"all": list(range(len(conditions)))}}
    for k, c in enumerate(conditions):
        for name, value in c.groups.items():
            out.setdefault(name, {}).setdefault(value, []).append(k)
    return out


def _identity(
    gen: np.ndarray, truth: np.ndarray, subjects: Sequence[str], idx: list[int], rng: np.random.Generator
) -> dict[str, float]:
    """Verification of generated faces against ground truth within the conditions `idx`: genuine = a face
    and its own ground truth, impostors = up to IMPOSTORS_PER_FACE other subjects' ground truths."""
    sub = np.asarray(subjects)[idx]
    g, t = gen[idx], truth[idx]
    genuine = np.sum(g * t, axis=1)
    imp: list[float] = []
    for k, s in enumerate(sub):
        cand = np.flatnonzero(sub != s)
        if len(cand):
            pick = rng.choice(cand, size=min(IMPOSTORS_PER_FACE, len(cand)), replace=False)
            imp.extend((t[pick] @ g[k]).tolist())
    out: dict[str, float] = {"n": float(len(idx))}
    if imp:
        scores = np.concatenate([genuine, np.asarray(imp)])
        same = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(imp), bool)])
        summary = _verify(scores, same)
        out.update({"auc": summary["auc"], f"tar@far={FAR:g}": summary[f"tar@far={FAR:g}"]})
        out["genuine_cos"] = float(genuine.mean())
        out["impostor_cos"] = float(np.mean(imp))
    return out


def gallery_rows(manifest: Manifest) -> list[int]:
    """The real gallery faces are matched against: the test rows marked `gallery` = 1 (SynthFace: each
    subject's frontal neutral image), else each test subject's first frontal (else first) row."""
    test = [i for i, r in enumerate(manifest) if r.split == "test"]
    marked = [i for i in test if manifest[i].get("gallery") == "1"]
    if marked:
        return marked
    first: dict[str, int] = {}
    for i in sorted(test, key=lambda i: abs(float(manifest[i].yaw or 0.0))):
        first.setdefault(manifest[i].subject, i)
    return sorted(first.values())


def _rank1(probe: np.ndarray, labels: np.ndarray, gallery: np.ndarray, g_labels: np.ndarray) -> float:
    """Rank-1 of probes against the real gallery (probes of subjects outside it are not counted)."""
    keep = np.isin(labels, g_labels)
    if not keep.any():
        return float("nan")
    return quality.rank1(probe[keep], labels[keep], gallery, g_labels)


def _finite_mean(x: torch.Tensor) -> float:
    v = x[~torch.isnan(x)].clamp(max=PSNR_CAP)
    return float(v.mean()) if len(v) else float("nan")


def _verify(scores: np.ndarray, same: np.ndarray) -> dict[str, Any]:
    return quality.verification_summary(np.round(scores, SCORE_DECIMALS), same, far=FAR)


def _fidelity(gen: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor | None) -> dict[str, float]:
    out = {
        "l1": _finite_mean(quality.l1(gen, truth)),
        "psnr": _finite_mean(quality.psnr(gen, truth)),
        "ssim": _finite_mean(quality.ssim(gen, truth)),
        "identical": float(torch.isinf(quality.psnr(gen, truth)).float().mean()),
    }
    if masks is not None:
        inside = masks > 0.5
        for name, m in (("in_mask", inside), ("out_mask", ~inside)):
            out[f"l1_{name}"] = _finite_mean(quality.l1(gen, truth, m))
            out[f"psnr_{name}"] = _finite_mean(quality.psnr(gen, truth, m))
            out[f"ssim_{name}"] = _finite_mean(quality.ssim(gen, truth, m))
    return out


def _pose(est: np.ndarray, target: np.ndarray, bins: Sequence[float]) -> dict[str, float]:
    res = quality.yaw_errors(est, target, list(bins))
    return {"yaw_mae": float(res["mae"]), "yaw_bin_acc": float(res["bin_accuracy"])}


def evaluate_conditions(
    synth: Any,
    task: str,
    manifest: Manifest,
    conditions: list[Condition],
    judges: Judges,
    seed: int = 0,
    batch_size: int = 64,
    keep_images: int = 16,
) -> dict[str, Any]:
    """Run `synth` on `conditions` and measure every group (see the module docstring).

    Returns {"task", "n", "groups": {name: {value: {"generated": metrics, "input": metrics,
    "truth": metrics}}}, "fd": ..., "examples": tensors for the grid (generated, input, truth)}.
    """
    if not conditions:
        raise DataError(f"{manifest.source}: the {task} task found no test faces with a ground truth")
    size, channels = int(synth.size), int(synth.channels)
    load = _cached_loader(size, channels)
    inputs = load([manifest.image_path(c.source) if c.source is not None else None for c in conditions])
    truth = load([c.truth for c in conditions])
    masks = None
    if any(c.mask is not None for c in conditions):
        masks = _cached_loader(size, 1)([c.mask for c in conditions])
    yaws = torch.tensor([c.target_yaw if c.target_yaw is not None else math.nan for c in conditions])
    gen = []
    for start in range(0, len(conditions), batch_size):
        sl = slice(start, start + batch_size)
        if isinstance(synth, ReferenceGenerator):
            synth.truth = truth[sl]
        m = masks[sl] if masks is not None else torch.zeros_like(inputs[sl][:, :1])
        out = synth.synthesize(task, inputs[sl], m, yaws[sl], seed + start)
        gen.append(_check_output(out, inputs[sl], task))
    generated = torch.cat(gen)
    subjects = [c.subject for c in conditions]
    sets = {"generated": generated, "input": inputs, "truth": truth}
    feats = {k: judges.features(v) for k, v in sets.items()} if judges.judge is not None else {}
    est = {k: judges.yaw.estimate(v).cpu().numpy() for k, v in sets.items()} if judges.yaw is not None else {}
    rng = np.random.default_rng(seed)
    gallery = gallery_rows(manifest)
    g_subjects = np.asarray([manifest[i].subject for i in gallery])
    g_feats = judges.features(load([manifest.image_path(i) for i in gallery])) if feats else None
    groups: dict[str, Any] = {}
    for name, values in _groups_of(conditions).items():
        groups[name] = {}
        for value, idx in sorted(values.items(), key=lambda kv: _sort_key(kv[0])):
            entry: dict[str, dict[str, float]] = {}
            for kind in ("generated", "input", "truth"):
                metrics: dict[str, float] = {}
                if kind != "truth":
                    m_idx = masks[idx] if masks is not None and task == "deocclude" else None
                    metrics.update(_fidelity(sets[kind][idx], truth[idx], m_idx))
                if feats and kind != "truth":
                    metrics.update(_identity(feats[kind], feats["truth"], subjects, idx, rng))
                if g_feats is not None:
                    metrics["rank1"] = _rank1(feats[kind][idx], np.asarray(subjects)[idx], g_feats, g_subjects)
                if est and not np.isnan(yaws[idx].numpy()).all():
                    metrics.update(_pose(est[kind][idx], yaws[idx].numpy(), judges.yaw_bins))
                entry[kind] = metrics
            groups[name][value] = entry
    result: dict[str, Any] = {"task": task, "n": len(conditions), "groups": groups}
    if feats:
        result["fd"] = {
            "generated_vs_truth": quality.frechet_distance(feats["generated"], feats["truth"]),
            "input_vs_truth": quality.frechet_distance(feats["input"], feats["truth"]),
        }
    pick = _spread(list(range(len(conditions))), keep_images, seed)
    result["examples"] = {k: v[pick] for k, v in sets.items()}
    return result


def _sort_key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _check_output(out: torch.Tensor, like: torch.Tensor, task: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.shape != like.shape:
        raise ArgumentError(
            f"the generator's {task} output has shape {tuple(getattr(out, 'shape', ()))}, expected "
            f"{tuple(like.shape)}: a Synthesizer returns one face per input at its own size and channels"
        )
    out = out.detach().float().cpu()
    if not torch.isfinite(out).all():
        raise ArgumentError(f"the generator's {task} output holds NaN or Inf values")
    return out.clamp(0, 1)


def real_pairs(manifest: Manifest, size: int, channels: int, split: str = "test") -> dict[str, Any]:
    """NIR and VIS images of the subjects of `split` that have both: images and subject labels."""
    rows = [i for i, r in enumerate(manifest) if (not split or r.split == split) and r.modality in ("nir", "vis")]
    both = {manifest[i].subject for i in rows if manifest[i].modality == "nir"} & {
        manifest[i].subject for i in rows if manifest[i].modality == "vis"
    }
    rows = [i for i in rows if manifest[i].subject in both]
    if not rows:
        raise DataError(f"{manifest.source}: no {split or 'any'} subject has both NIR and VIS images")
    load = _cached_loader(size, channels)
    out: dict[str, Any] = {}
    for mod in ("nir", "vis"):
        sel = [i for i in rows if manifest[i].modality == mod]
        out[mod] = load([manifest.image_path(i) for i in sel])
        out[f"{mod}_subjects"] = [manifest[i].subject for i in sel]
    return out


def evaluate_pairs(
    synth: Any, manifest: Manifest, judges: Judges, count: int = 400, seed: int = 0, keep_images: int = 16
) -> dict[str, Any]:
    """The `pairs` task: generated NIR-VIS pairs of new identities against real pairs (module docstring)."""
    if judges.judge is None:
        raise ArgumentError("the pairs task needs a judge recognizer (--judge)")
    size, channels = int(synth.size), int(synth.channels)
    test = real_pairs(manifest, size, channels, "test")
    train = real_pairs(manifest, size, channels, "train")
    if isinstance(synth, ReferenceGenerator):  # truth: one real NIR-VIS pair per test subject
        first_vis = {s: k for k, s in reversed(list(enumerate(test["vis_subjects"])))}
        first_nir = {s: k for k, s in reversed(list(enumerate(test["nir_subjects"])))}
        order = sorted(first_nir)
        synth.pairs = (test["nir"][[first_nir[s] for s in order]], test["vis"][[first_vis[s] for s in order]])
        count = min(count, len(order))
    nir, vis = synth.sample_pairs(count, seed)
    nir, vis = _check_output(nir, nir, "pairs"), _check_output(vis, vis, "pairs")
    if len(nir) != count or nir.shape != vis.shape or nir.shape[1:] != (channels, size, size):
        raise ArgumentError(f"sample_pairs returned {tuple(nir.shape)} and {tuple(vis.shape)} for {count} pairs")
    fn, fv = judges.features(nir), judges.features(vis)
    sim = fn @ fv.T
    same = np.eye(count, dtype=bool)
    gen_ver = _verify(sim.ravel(), same.ravel())
    rn, rv = judges.features(test["nir"]), judges.features(test["vis"])
    rsim = rn @ rv.T
    rsame = np.asarray(test["nir_subjects"])[:, None] == np.asarray(test["vis_subjects"])[None, :]
    real_ver = _verify(rsim.ravel(), rsame.ravel())
    key = f"tar@far={FAR:g}"
    ident = fn + fv
    ident /= np.maximum(np.linalg.norm(ident, axis=1, keepdims=True), 1e-12)
    tn, tv = judges.features(train["nir"]), judges.features(train["vis"])
    nearest = quality.nearest_identity_distance(
        ident, np.concatenate([tn, tv]), np.asarray(train["nir_subjects"] + train["vis_subjects"])
    )
    within = quality.within_identity_distance(
        np.concatenate([rn, rv]), np.asarray(test["nir_subjects"] + test["vis_subjects"])
    )
    result: dict[str, Any] = {
        "task": "pairs",
        "n": count,
        "generated": {k: gen_ver[k] for k in ("auc", key, "genuine_mean", "impostor_mean")},
        "real": {k: real_ver[k] for k in ("auc", key, "genuine_mean", "impostor_mean")},
        "tar_ratio": (gen_ver[key] / real_ver[key]) if real_ver[key] > 0 else float("nan"),
        "fd": {
            "nir_generated_vs_real": quality.frechet_distance(fn, rn),
            "vis_generated_vs_real": quality.frechet_distance(fv, rv),
            "real_nir_vs_real_vis": quality.frechet_distance(rn, rv),
        },
        "novelty": {
            "nearest_training_identity_distance_median": float(np.median(nearest)),
            "within_subject_distance_median": float(np.median(within)),
            "fraction_farther_than_within": float(np.mean(nearest > np.median(within))),
        },
    }
    if judges.yaw is not None:
        result["yaw"] = {
            "generated_nir_mean_abs": float(judges.yaw.estimate(nir).abs().mean()),
            "generated_vis_mean_abs": float(judges.yaw.estimate(vis).abs().mean()),
            "real_vis_mean_abs": float(judges.yaw.estimate(test["vis"]).abs().mean()),
        }
    pick = _spread(list(range(count)), keep_images, seed)
    result["examples"] = {"nir": nir[pick], "vis": vis[pick]}
    return result
