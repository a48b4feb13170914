"""Raw-photo speed: MTCNN detection + 5-point alignment images/s, and dlib-resnet embedding images/s.

Photos are variants of scikit-image's astronaut (a public-domain NASA portrait: one face; shifted
and mirrored at random) at two sizes: 640 x 480 (the whole photo: a face among background, MTCNN's
pyramid has many scales) and 128 x 128 (a loose face crop, few scales). For each size and device
it times `hfr.data.detect.FaceDetector.detect` on batches of `--batch` photos plus `align_face`
(template `lightcnn128`) for every face found, after a warm-up batch, and reports photos/s, faces
found per photo and the time of each part.
The dlib-resnet recognizer (`hfr.recognizer.dlib_resnet`: dlib's 5-point re-alignment and its
ResNet, CPU only) is timed on `lightcnn128` crops of the same face, batch `--batch`.

Devices: `cpu` always, `cuda` too when torch sees a GPU (`--devices cpu,cuda` to choose).
Needs the extras `detect` (and `dlib` for the embedding line; skipped with a note without it).
Writes `benchmarks/results/detect_speed.json` (with the machine's description); a benchmark,
never a test: the figures depend on the machine and its load.

    python benchmarks/detect_speed.py                       # ~2 min on 2 cores
    python benchmarks/detect_speed.py --threads 2 --photos 64
    python benchmarks/detect_speed.py --quick --out /tmp/ds  # smoke mode: a few photos, seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info as hfr_machine_info  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: photo sizes (width, height) timed, by name
SIZES = {"640": (640, 480), "128": (128, 128)}


def make_photos(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """`count` variants of scikit-image's astronaut (a public-domain NASA portrait): 640 x 480 views
    of the whole photo, or face crops at smaller sizes; shifted and mirrored at random."""
    from PIL import Image
    from skimage import data

    full = Image.fromarray(np.asarray(data.astronaut()))  # 512 x 512, the face around (224, 117)
    rng = np.random.default_rng(seed)
    photos = []
    for _ in range(count):
        dx, dy = (int(v) for v in rng.integers(-12, 13, 2))
        if width > 256:
            side = max(width, height)
            big = full.resize((side, side), Image.Resampling.BICUBIC)
            top = int(np.clip(40 + dy, 0, side - height))
            view = big.crop((0, top, width, top + height))
        else:  # a loose face crop: 200 px around the face, then resized
            view = full.crop((124 + dx, 17 + dy, 324 + dx, 217 + dy)).resize((width, height), Image.Resampling.BOX)
        photo = np.asarray(view.convert("RGB"))
        photos.append(np.ascontiguousarray(photo[:, ::-1]) if rng.random() < 0.5 else photo)
    return photos


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_detection(photos: list[np.ndarray], device: str, batch: int) -> dict[str, Any]:
    """Detection + alignment of `photos` in batches: photos/s, faces per photo, time shares."""
    from hfr.data.detect import FaceDetector, align_face

    detector = FaceDetector(device=device, batch_size=batch)
    detector.detect(photos[:batch])  # warm-up (kernel choice, allocations)
    _sync(device)
    t_detect = t_align = 0.0
    faces = 0
    for start in range(0, len(photos), batch):
        chunk = photos[start : start + batch]
        t0 = time.perf_counter()
        found = detector.detect(chunk)
        _sync(device)
        t1 = time.perf_counter()
        for photo, fs in zip(chunk, found):
            for face in fs:
                align_face(photo, face, "lightcnn128")
                faces += 1
        t_align += time.perf_counter() - t1
        t_detect += t1 - t0
    total = t_detect + t_align
    return {
        "photos": len(photos),
        "photos_per_s": len(photos) / total,
        "faces_per_photo": faces / len(photos),
        "detect_s": t_detect,
        "align_s": t_align,
    }


def time_dlib(count: int, batch: int) -> dict[str, Any] | str:
    """dlib-resnet embedding images/s on 150 px crops, or why it was skipped."""
    from hfr.errors import ExtraMissingError
    from hfr.recognizer.export import load_recognizer

    try:
        rec = load_recognizer("dlib-resnet")
    except ExtraMissingError as exc:
        return f"skipped: {exc}"
    from hfr.data.detect import FaceDetector, align_face

    photos = make_photos(count, 150, 150, seed=1)
    detector = FaceDetector()
    crops = [
        align_face(p, fs[0] if fs else _centre_points(p), "lightcnn128")
        for p, fs in zip(photos, detector.detect(photos))
    ]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    rec.embed(x[:batch])  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(x), batch):
        rec.embed(x[start : start + batch])
    elapsed = time.perf_counter() - t0
    return {"images": count, "images_per_s": count / elapsed, "device": "cpu (dlib)"}


def _centre_points(photo: np.ndarray) -> np.ndarray:
    """The lightcnn128 template's points scaled to a photo (a stand-in when MTCNN misses its face)."""
    from hfr.data.align import template_points

    return template_points("lightcnn128", photo.shape[0])[0].numpy()


def format_table(rows: list[dict[str, Any]], dlib_line: dict[str, Any] | str) -> str:
    """The printed table: one line per (size, device), then the dlib-resnet line."""
    lines = [f"{'photo':>9} {'device':>6} {'photos/s':>9} {'faces/photo':>11} {'detect s':>9} {'align s':>8}"]
    for r in rows:
        lines.append(
            f"{r['size']:>9} {r['device']:>6} {r['photos_per_s']:9.1f} {r['faces_per_photo']:11.2f} "
            f"{r['detect_s']:9.2f} {r['align_s']:8.2f}"
        )
    if isinstance(dlib_line, dict):
        lines.append(f"dlib-resnet embedding: {dlib_line['images_per_s']:.1f} images/s (150 px, CPU)")
    else:
        lines.append(f"dlib-resnet embedding: {dlib_line}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=48, help="photos per size and device")
    parser.add_argument("--batch", type=int, default=16, help="photos per detection batch (and crops per embed)")
    parser.add_argument("--devices", help="comma-separated (default: cpu, plus cuda when available)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 4 photos, batch 2; needs --out")
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.quick:
        if args.out is None:
            raise SystemExit("--quick writes into --out DIR only (never over benchmarks/results)")
        args.photos, args.batch = 4, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    from hfr.data.detect import require_detector

    require_detector()
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    started = time.perf_counter()
    rows = []
    for name, (w, h) in SIZES.items():
        photos = make_photos(args.photos, w, h)
        for device in devices:
            rows.append(
                {"size": f"{w}x{h}", "name": name, "device": device, **time_detection(photos, device, args.batch)}
            )
    dlib_line = time_dlib(args.photos, args.batch)
    result = {
        "benchmark": "raw-photo detection + alignment, dlib-resnet embedding",
        "settings": {
            "photos": args.photos,
            "batch": args.batch,
            "template": "lightcnn128",
            "detector": "MTCNN (facenet-pytorch 2.5.3), min face 20 px, thresholds 0.6/0.7/0.7, factor 0.709",
            "photos_made_of": "scikit-image's astronaut: the whole photo at 640x480, a face crop at 128x128",
            "quick": args.quick,
        },
        "machine": hfr_machine_info(note="shared machine: other jobs may run at the same time"),
        "total_s": time.perf_counter() - started,
        "detection": rows,
        "dlib_resnet": dlib_line,
    }
    out = (args.out or RESULTS) / "detect_speed.json"
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(format_table(rows, dlib_line))
    print(f"wrote {out} ({result['total_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
