"""How hard is SynthFace? Train a small CNN on `webface`, test cross-pose and cross-modal.

A few conv layers with a softmax over identities are trained on SynthFace `webface`
(VIS, converted to grayscale). Features (the layer before the classifier, L2-normalised,
cosine similarity) are then matched:

- `multipie` test subjects: gallery = each subject's frontal neutral-light image
  (`gallery` = 1); probes = every other image, rank-1 reported per yaw (frontal probes
  differ from the gallery by light or expression);
- `nirvis` test subjects: NIR probes against a VIS gallery of one image per subject.

The data serves its purpose when frontal rank-1 is high (>= 90%) while rank-1 at +-60
degrees and NIR->VIS are each 15 to 60 points below it. Writes
`benchmarks/results/synth_difficulty.json` and `benchmarks/results/synth_difficulty.png`.

    python benchmarks/synth_difficulty.py            # default run (about 5 min on one free core)
    python benchmarks/synth_difficulty.py --quick    # small sets, a few minutes
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hfr.data.synth import SynthConfig, iter_preset  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def to_gray(img: np.ndarray, factor: int = 1) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) -> float32 (H/f, W/f) in [0, 1]: ITU-R 601 luma, then
    `factor` x `factor` average pooling."""
    if img.ndim == 3:
        img = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    img = img.astype(np.float32) / 255.0
    if factor > 1:
        h, w = img.shape
        img = img.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    return img


def load(cfg: SynthConfig, subjects: list[int] | None = None, factor: int = 1) -> tuple[list, np.ndarray]:
    """Render a preset in memory: manifest rows and grayscale images (N, H/f, W/f)."""
    recs, imgs = [], []
    for rows, out in iter_preset(cfg, subjects):
        for k, r in enumerate(rows):
            recs.append(r)
            imgs.append(to_gray(out.image(k), factor))
    return recs, np.stack(imgs)


def standardise(xb: torch.Tensor) -> torch.Tensor:
    """Per-image standardisation of (B, 1, H, W): zero mean, unit contrast (a floor keeps flat
    images from blowing up), so global brightness and contrast carry no identity."""
    mean = xb.mean(dim=(1, 2, 3), keepdim=True)
    std = xb.std(dim=(1, 2, 3), keepdim=True)
    return (xb - mean) / (std + 0.05)


class SmallCNN(nn.Module):
    """Four conv blocks (conv-BN-ReLU-maxpool, `width`..8x`width` channels), a 128-d embedding
    (linear + BN) and a cosine classifier: `forward` returns (embedding, cosine to each class)."""

    def __init__(self, n_classes: int, size: int, dim: int = 128, width: int = 16) -> None:
        super().__init__()
        chans = [1, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(8 * width * (size // 16) ** 2, dim), nn.BatchNorm1d(dim))
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.embed(self.features(x))
        return f, F.normalize(f, dim=1) @ F.normalize(self.weight, dim=1).t()


COS_SCALE, COS_MARGIN = 16.0, 0.2
"""CosFace: logits = scale * (cos - margin on the true class)."""


def train(x: np.ndarray, y: np.ndarray, n_classes: int, epochs: int, seed: int, batch: int = 64) -> SmallCNN:
    """Train SmallCNN (CosFace loss) with SGD + one-cycle LR, random flips and small shifts."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SmallCNN(n_classes, x.shape[-1])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps, pct_start=0.15)
    xt = torch.from_numpy(x).unsqueeze(1)
    yt = torch.from_numpy(y).long()
    model.train()
    t_start = time.time()
    for ep in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        tot, correct, seen = 0.0, 0, 0
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            xb = xt[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            xb = standardise(xb)
            _, cos = model(xb)
            margin = F.one_hot(yt[idx], n_classes).float() * COS_MARGIN
            logits = COS_SCALE * (cos - margin)
            loss = F.cross_entropy(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
            seen += len(idx)
        print(
            f"  epoch {ep + 1}/{epochs}: loss {tot / seen:.3f}, train acc {correct / seen:.3f} "
            f"({time.time() - t_start:.0f}s)",
            flush=True,
        )
    return model


@torch.no_grad()
def embed(model: SmallCNN, x: np.ndarray) -> torch.Tensor:
    """L2-normalised features of images (N, H, W)."""
    model.eval()
    out = []
    for i in range(0, len(x), 512):
        xb = standardise(torch.from_numpy(x[i : i + 512]).unsqueeze(1))
        f, _ = model(xb)
        f2, _ = model(xb.flip(-1))
        out.append(F.normalize(f + f2, dim=1))
    return torch.cat(out)


def rank1(gal_f: torch.Tensor, gal_s: list[str], pr_f: torch.Tensor, pr_s: list[str]) -> float:
    """Fraction of probes whose most similar gallery image has the probe's subject."""
    best = (pr_f @ gal_f.t()).argmax(dim=1).tolist()
    return float(np.mean([gal_s[j] == s for j, s in zip(best, pr_s)])) if pr_s else float("nan")


def main() -> None:
    """Run the benchmark and write the JSON and PNG results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sets and few epochs (a few minutes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=64, help="render size (default 64)")
    ap.add_argument("--input", type=int, default=32, help="CNN input size: renders are average-pooled to it")
    ap.add_argument("--webface-subjects", type=int, default=None)
    ap.add_argument("--images-per-subject", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core machine 2 threads oversubscribe and run far slower)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    q = args.quick
    n_wf = args.webface_subjects or (100 if q else 500)
    ipr = args.images_per_subject or (15 if q else 20)
    epochs = args.epochs or (12 if q else 18)
    n_mp = 100 if q else 200
    n_nv = 120 if q else 360
    t0 = time.time()
    wf = SynthConfig(preset="webface", subjects=n_wf, size=args.size, seed=args.seed, images_per_subject=ipr)
    factor = max(1, args.size // args.input)
    recs, x = load(wf, factor=factor)
    subj = {s: i for i, s in enumerate(dict.fromkeys(r.subject for r in recs))}
    y = np.array([subj[r.subject] for r in recs])
    t_render = time.time() - t0
    print(f"webface: {len(x)} images of {len(subj)} subjects rendered in {t_render:.0f}s", flush=True)
    t1 = time.time()
    model = train(x, y, len(subj), epochs, args.seed)
    t_train = time.time() - t1
    # cross-pose
    mp = SynthConfig(preset="multipie", subjects=n_mp, size=args.size, seed=args.seed)
    test_idx = list(range(int(round(0.6 * n_mp)), n_mp))
    mrecs, mx = load(mp, test_idx, factor)
    mf = embed(model, mx)
    gal = [i for i, r in enumerate(mrecs) if r.get("gallery") == "1"]
    gal_s = [mrecs[i].subject for i in gal]
    per_yaw = {}
    for yaw in sorted({int(r.yaw) for r in mrecs}):
        pr = [i for i, r in enumerate(mrecs) if int(r.yaw) == yaw and r.get("gallery") != "1"]
        per_yaw[yaw] = rank1(mf[gal], gal_s, mf[pr], [mrecs[i].subject for i in pr])
    # cross-modal
    nv = SynthConfig(preset="nirvis", subjects=n_nv, size=args.size, seed=args.seed)
    nrecs, nx = load(nv, list(range(n_nv // 2, n_nv)), factor)
    nf = embed(model, nx)
    ngal = [i for i, r in enumerate(nrecs) if r.get("gallery") == "1"]
    npr = [i for i, r in enumerate(nrecs) if r.modality == "nir"]
    vpr = [i for i, r in enumerate(nrecs) if r.modality == "vis" and r.get("gallery") != "1"]
    nir_vis = rank1(nf[ngal], [nrecs[i].subject for i in ngal], nf[npr], [nrecs[i].subject for i in npr])
    vis_vis = rank1(nf[ngal], [nrecs[i].subject for i in ngal], nf[vpr], [nrecs[i].subject for i in vpr])
    frontal = per_yaw[0]
    at60 = 0.5 * (per_yaw[-60] + per_yaw[60])
    result = {
        "seed": args.seed,
        "quick": q,
        "size": args.size,
        "cnn_input": x.shape[-1],
        "threads": args.threads,
        "webface": {
            "subjects": n_wf,
            "images_per_subject": ipr,
            "images": int(len(x)),
            "note": "smaller than the preset default (1000 x 20) to fit the time budget",
        },
        "model": "SmallCNN: 4 x (conv3x3-BN-ReLU-maxpool) 16-32-64-128 channels, 128-d embedding (linear+BN), "
        f"CosFace s={COS_SCALE:g} m={COS_MARGIN:g}; grayscale input, per-image standardised",
        "epochs": epochs,
        "multipie": {
            "subjects": n_mp,
            "test_subjects": len(test_idx),
            "gallery": "frontal, neutral light, neutral expression",
            "probes": len(mrecs) - len(gal),
            "rank1_per_yaw": {str(k): v for k, v in per_yaw.items()},
        },
        "nirvis": {
            "subjects": n_nv,
            "test_subjects": len(ngal),
            "nir_probes": len(npr),
            "vis_probes": len(vpr),
            "rank1_nir_vis": nir_vis,
            "rank1_vis_vis": vis_vis,
        },
        "summary": {
            "frontal_rank1": frontal,
            "rank1_at_60": at60,
            "nir_vis_rank1": nir_vis,
            "drop_at_60_points": 100 * (frontal - at60),
            "drop_nir_vis_points": 100 * (frontal - nir_vis),
            "target": "frontal >= 0.90; drops at +-60 and NIR->VIS each 15..60 points",
            "meets_target": bool(
                frontal >= 0.9 and 15 <= 100 * (frontal - at60) <= 60 and 15 <= 100 * (frontal - nir_vis) <= 60
            ),
        },
        "seconds": {
            "render_webface": round(t_render, 1),
            "train": round(t_train, 1),
            "total": round(time.time() - t0, 1),
        },
        "machine": {
            "cpu_count": __import__("os").cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": "cpu",
        },
    }
    print(json.dumps(result["summary"], indent=1))
    print("rank-1 per yaw:", {k: round(v, 3) for k, v in per_yaw.items()})
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if q else ""
    (args.out / f"synth_difficulty{suffix}.json").write_text(json.dumps(result, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.4), dpi=100)
    yaws = sorted(per_yaw)
    ax.plot(yaws, [100 * per_yaw[k] for k in yaws], "o-", label="multipie VIS->VIS (gallery: frontal)")
    ax.plot([0], [100 * nir_vis], "s", color="C3", markersize=9, label="nirvis NIR->VIS (yaw within +-30)")
    ax.set_xlabel("probe yaw (degrees)")
    ax.set_ylabel("rank-1 (%)")
    ax.set_ylim(0, 102)
    ax.set_xticks(yaws)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    ax.set_title(f"SynthFace difficulty (SmallCNN on webface {n_wf}x{ipr}, seed {args.seed})", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out / f"synth_difficulty{suffix}.png")
    print(f"wrote {args.out / f'synth_difficulty{suffix}.json'} in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
