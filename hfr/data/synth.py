"""SynthFace: procedural 3D faces written as datasets in the manifest format.

No face dataset can be downloaded here, so hfr renders its own. Each subject is a seeded
3D face (`hfr.data.synth_face`: 30 shape parameters, 22 appearance parameters and seeded
bumps, blotches, moles and freckles); each image a batched point-splatting render with a
z-buffer (`hfr.data.synth_render.render_batch`) under its own pose, light, expression,
modality, blur, noise, background and optional occluder.

Presets (`PRESETS`), each written by `write_preset` as images, `manifest.csv` and
`preset.yaml`:

- `webface`: many VIS identities for recognizer pretraining (default 1,000 subjects x 20
  images; mostly near-frontal, mixed light); split `train`; subjects `wf0001`, ...
- `multipie`: cross-pose like Multi-PIE Setting 2 (default 200 subjects x 9 poses
  -60..+60 step 15 x 4 lights `neutral`, `left`, `right`, `top`; VIS). The first 60% of
  subjects are `train`, the rest `test`. The gallery image of a subject is its frontal
  (yaw 0) image under the `neutral` light with a neutral expression: `gallery` = 1 on that
  row, 0 elsewhere; other images may show an expression. `frontal_path` names it.
- `nirvis`: cross-modal like CASIA NIR-VIS 2.0 (default 360 subjects, 1-5 VIS and 4-12
  NIR images each, yaw within +-30, NIR mostly near-frontal); first half `train`, second half
  `test`. The first VIS image of each subject is near-frontal, neutral and `gallery` = 1 (the
  one-VIS-per-subject gallery of the protocol). Option `paired_subjects` (default None: all
  paired) sets the pair budget (DVG-Face's regime of few NIR-VIS pairs beside VIS-only
  identities): only the first `paired_subjects` training subjects keep their NIR images, the
  other training subjects keep only their VIS images, and the test split is unchanged. The
  subset is taken after every draw, so for the same seed every remaining image and row is
  byte-identical to the full preset's (results across pair budgets compare the same people).
- `occluded`: the `multipie` layout with occluders: every non-frontal image gets one kind
  of `OCCLUSIONS` (column `occlusion`), its mask (`mask_path`, 255 = occluded) and its clean
  counterpart (`clean_path`); `frontal_path` is the subject's frontal neutral clean image.

Identities of different presets never coincide: each preset has its own identity
namespace and subject prefix. The same (seed, preset, subject index) is always the same
person, whatever the number of subjects, the chunking or the number of workers; the
same options give byte-identical images and manifest.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from hfr.data.imageio import encode_png
from hfr.data.manifest import Manifest, Record, make_record
from hfr.data.synth_face import EXPRESSIONS, Identity, namespace_code, sample_identity
from hfr.data.synth_render import OCCLUSIONS, ImageSpec, RenderOutput, render_batch
from hfr.errors import ConfigError, DataError
from hfr.fileio import atomic_write_text, write_error

log = logging.getLogger(__name__)

PRESETS: tuple[str, ...] = ("webface", "multipie", "nirvis", "occluded")
PREFIXES: dict[str, str] = {"webface": "wf", "multipie": "mp", "nirvis": "nv", "occluded": "oc"}
DEFAULT_SUBJECTS: dict[str, int] = {"webface": 1000, "multipie": 200, "nirvis": 360, "occluded": 200}
MULTIPIE_YAWS: tuple[int, ...] = (-60, -45, -30, -15, 0, 15, 30, 45, 60)
MULTIPIE_LIGHTS: tuple[str, ...] = ("neutral", "left", "right", "top")
MAX_SUBJECTS = 1_000_000
CHUNK_IMAGES = 256
"""Images per render chunk; chunks are fixed by the options, never by the number of workers."""

_LIGHTS = {  # direction toward the light, ambient, strength
    "neutral": ((0.0, 0.25, 1.0), 0.5, 0.55),
    "left": ((-1.0, 0.25, 0.45), 0.28, 0.8),
    "right": ((1.0, 0.25, 0.45), 0.28, 0.8),
    "top": ((0.0, 1.0, 0.35), 0.32, 0.75),
}


@dataclass
class SynthConfig:
    """Options of a SynthFace preset (plain types only)."""

    preset: str = "multipie"
    """One of PRESETS."""
    subjects: int | None = None
    """Number of identities; None takes the preset's default (DEFAULT_SUBJECTS)."""
    size: int = 64
    """Image width and height in pixels (32..512)."""
    seed: int = 0
    """Seed of identities and nuisances (a non-negative integer)."""
    workers: int = 1
    """Threads that render and write disjoint chunks; the output does not depend on it."""
    images_per_subject: int = 20
    """webface only: images per subject."""
    occlusions: list[str] = field(default_factory=lambda: list(OCCLUSIONS))
    """occluded only: the occluder kinds to draw from."""
    paired_subjects: int | None = None
    """nirvis only: keep the NIR images of the first `paired_subjects` training subjects only; the
    other training subjects keep just their VIS images (scarce NIR-VIS pairs beside VIS-only
    identities, DVG-Face's setting). Test subjects are unchanged. None: every subject is paired.
    Every image left is byte-identical to the same seed's full preset (a regime is a subset)."""
    device: str = "cpu"
    """Torch device that renders ("cpu", "cuda", "cuda:1", ...)."""


@dataclass
class _Item:
    """One image of the layout: its spec (identity index filled in at render time) and row."""

    spec: ImageSpec
    path: str
    subject: str
    split: str
    extra: dict[str, object]
    yaw: float | None = None
    """The yaw written to the manifest (the nominal pose); None: the rendered yaw."""


def validate_config(cfg: SynthConfig) -> None:
    """Raise ConfigError naming the option when `cfg` holds an impossible value."""
    if cfg.preset not in PRESETS:
        raise ConfigError(f"option 'preset' must be one of {', '.join(PRESETS)}, got {cfg.preset!r}")
    if cfg.subjects is not None and (
        not isinstance(cfg.subjects, int) or isinstance(cfg.subjects, bool) or not 1 <= cfg.subjects <= MAX_SUBJECTS
    ):
        raise ConfigError(f"option 'subjects' must be an integer from 1 to {MAX_SUBJECTS}, got {cfg.subjects!r}")
    if not isinstance(cfg.size, int) or isinstance(cfg.size, bool) or not 32 <= cfg.size <= 512:
        raise ConfigError(f"option 'size' must be an integer from 32 to 512 pixels, got {cfg.size!r}")
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or not 0 <= cfg.seed < 2**63:
        raise ConfigError(f"option 'seed' must be a non-negative integer, got {cfg.seed!r}")
    if not isinstance(cfg.workers, int) or isinstance(cfg.workers, bool) or not 1 <= cfg.workers <= 256:
        raise ConfigError(f"option 'workers' must be an integer from 1 to 256, got {cfg.workers!r}")
    if not isinstance(cfg.images_per_subject, int) or not 1 <= cfg.images_per_subject <= 10_000:
        raise ConfigError(
            f"option 'images_per_subject' must be an integer from 1 to 10000, got {cfg.images_per_subject!r}"
        )
    if not cfg.occlusions or any(k not in OCCLUSIONS for k in cfg.occlusions):
        raise ConfigError(f"option 'occlusions' must list kinds among {', '.join(OCCLUSIONS)}, got {cfg.occlusions!r}")
    if cfg.paired_subjects is not None:
        if cfg.preset != "nirvis":
            raise ConfigError(
                f"option 'paired_subjects' applies to the nirvis preset only, not {cfg.preset!r}; leave it unset (null)"
            )
        n_train = train_subjects(cfg)
        p = cfg.paired_subjects
        if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= n_train:
            raise ConfigError(
                f"option 'paired_subjects' must be an integer from 1 to {n_train} (the training subjects of "
                f"{_n_subjects(cfg)} nirvis subjects), got {p!r}"
            )
    try:
        dev = torch.device(cfg.device)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"option 'device' must name a torch device such as 'cpu' or 'cuda', got {cfg.device!r}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"option 'device' is {cfg.device!r} but no CUDA GPU is available; use 'cpu'")


def _n_subjects(cfg: SynthConfig) -> int:
    return cfg.subjects if cfg.subjects is not None else DEFAULT_SUBJECTS[cfg.preset]


def train_subjects(cfg: SynthConfig) -> int:
    """How many subjects of `cfg` are in the `train` split (they are the first ones)."""
    return _n_train(cfg.preset, _n_subjects(cfg))


def subject_name(preset: str, index: int) -> str:
    """The subject label of identity `index` (0-based) of `preset`, e.g. `mp0001`."""
    return f"{PREFIXES[preset]}{index + 1:04d}"


def preset_identity(cfg: SynthConfig, index: int) -> Identity:
    """The identity of subject `index` of `cfg.preset` (depends on seed, preset and index only)."""
    return sample_identity(cfg.seed, cfg.preset, index)


def _rng(cfg: SynthConfig, index: int, *more: int) -> np.random.Generator:
    """Generator for subject `index`'s layout (`more` = ()) or image `more[0]`."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([cfg.seed, namespace_code(cfg.preset), index, 7919, *more]))
    )


# ----------------------------------------------------------------------------- nuisances
def _background(rng: np.random.Generator, studio: bool) -> tuple[float, ...]:
    if studio:
        g = rng.uniform(0.35, 0.5)
        c1 = np.full(3, g) * rng.normal(1.0, 0.02, 3)
        c2 = c1 * rng.uniform(0.85, 1.0)
    else:
        c1 = rng.uniform(0.2, 0.75) + rng.normal(0, 0.07, 3)
        c2 = np.clip(c1 * rng.uniform(0.6, 1.2) + rng.normal(0, 0.04, 3), 0.0, 1.0)
    return (*np.clip(c1, 0, 1).tolist(), *np.clip(c2, 0, 1).tolist(), float(rng.uniform(0, 2 * math.pi)))


def _rgb(values: Any) -> tuple[float, float, float]:
    """Three numbers (a direction, an RGB triple) as a tuple of floats."""
    a, b, c = (float(v) for v in values)
    return a, b, c


def _vis_spec(
    rng: np.random.Generator, yaw: float, expression: int, studio: bool, light: str | None = None
) -> ImageSpec:
    """A VIS image: random indoor light (or a named studio light), camera white balance."""
    if light is None:
        az, el = math.radians(rng.uniform(-65, 65)), math.radians(rng.uniform(-5, 45))
        direction = (math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el))
        ambient, strength = rng.uniform(0.28, 0.55), rng.uniform(0.35, 0.75)
        tint = np.clip(rng.normal(1.0, 0.04, 3), 0.85, 1.15)
        wb = np.clip(rng.normal(1.0, 0.05, 3), 0.85, 1.15)
    else:
        direction, ambient, strength = _LIGHTS[light]
        ambient *= rng.uniform(0.95, 1.05)
        tint = np.ones(3)
        wb = np.clip(rng.normal(1.0, 0.02, 3), 0.9, 1.1)
    jitter = 0.03 if studio else 0.06
    return ImageSpec(
        identity=0,
        modality="vis",
        yaw=float(yaw),
        pitch=float(np.clip(rng.normal(0, 2.5 if studio else 5), -20, 20)),
        roll=float(np.clip(rng.normal(0, 2 if studio else 4), -15, 15)),
        expression=expression,
        light=_rgb(direction),
        ambient=float(ambient),
        strength=float(strength),
        light_colour=_rgb(tint),
        specular=float(rng.uniform(0.02, 0.1)),
        wb=_rgb(wb),
        scale=float(rng.uniform(1 - jitter, 1 + jitter)),
        shift=(float(rng.normal(0, jitter / 2)), float(rng.normal(0, jitter / 2))),
        blur=float(rng.uniform(0.3, 0.7 if studio else 1.0)) if rng.random() < (0.15 if studio else 0.4) else 0.0,
        noise=float(rng.uniform(0.004, 0.012 if studio else 0.02)),
        bg=_background(rng, studio or rng.random() < 0.5),
        occ=tuple(float(v) for v in rng.random(16)),
        seed=int(rng.integers(2**62)),
    )


def _nir_spec(rng: np.random.Generator, yaw: float, expression: int) -> ImageSpec:
    """A NIR image: active near-frontal source with falloff, dark background, own noise."""
    direction = (float(rng.normal(0, 0.12)), float(rng.normal(0.1, 0.1)), 1.0)
    g = rng.uniform(0.05, 0.3)
    g2 = g * rng.uniform(0.5, 1.0)
    bg = (g, g, g, g2, g2, g2, float(rng.uniform(0, 2 * math.pi)))
    return ImageSpec(
        identity=0,
        modality="nir",
        yaw=float(yaw),
        pitch=float(np.clip(rng.normal(0, 5), -15, 15)),
        roll=float(np.clip(rng.normal(0, 4), -12, 12)),
        expression=expression,
        light=direction,
        ambient=float(rng.uniform(0.1, 0.2)),
        strength=float(rng.uniform(0.55, 0.8)),
        specular=float(rng.uniform(0.05, 0.15)),
        scale=float(rng.uniform(0.93, 1.07)),
        shift=(float(rng.normal(0, 0.03)), float(rng.normal(0, 0.03))),
        blur=float(rng.uniform(0.3, 0.7)) if rng.random() < 0.3 else 0.0,
        noise=float(rng.uniform(0.006, 0.014)),
        bg=tuple(float(v) for v in bg),
        occ=tuple(float(v) for v in rng.random(16)),
        seed=int(rng.integers(2**62)),
    )


def _expression(rng: np.random.Generator, p_neutral: float) -> int:
    if rng.random() < p_neutral:
        return 0
    return int(rng.integers(1, len(EXPRESSIONS)))


# ----------------------------------------------------------------------------- layouts
def _n_train(preset: str, n: int) -> int:
    """Training subjects of `n`: subjects 0 .. _n_train - 1 are `train`, the others `test`."""
    if preset == "webface":
        return n
    return int(round(0.6 * n)) if preset in ("multipie", "occluded") else n // 2


def _split(preset: str, index: int, n: int) -> str:
    return "train" if index < _n_train(preset, n) else "test"


def _layout(cfg: SynthConfig, index: int, n: int) -> list[_Item]:
    """The images of subject `index` of `n`: specs and manifest rows (paths relative)."""
    subject = subject_name(cfg.preset, index)
    split = _split(cfg.preset, index, n)
    items: list[_Item] = []
    if cfg.preset == "webface":
        for k in range(cfg.images_per_subject):
            rng = _rng(cfg, index, k)
            yaw = rng.normal(0, 12) if rng.random() < 0.85 else rng.uniform(-60, 60)
            yaw = round(float(np.clip(yaw, -90, 90)), 1)
            expr = _expression(rng, 0.7)
            spec = _vis_spec(rng, yaw, expr, studio=False)
            items.append(
                _Item(
                    spec,
                    f"images/{subject}/{k:03d}.png",
                    subject,
                    split,
                    {"pitch": round(spec.pitch, 1), "illumination": "random", "expression": EXPRESSIONS[expr]},
                )
            )
    elif cfg.preset in ("multipie", "occluded"):
        occluded = cfg.preset == "occluded"
        frontal = f"images/{subject}/y+00_neutral.png"
        if occluded:
            frontal = f"clean/{subject}/y+00_neutral.png"
        for k, (yaw, light) in enumerate((y, li) for y in MULTIPIE_YAWS for li in MULTIPIE_LIGHTS):
            rng = _rng(cfg, index, k)
            gallery = yaw == 0 and light == "neutral"
            expr = 0 if gallery else _expression(rng, 0.75)
            spec = _vis_spec(rng, yaw + rng.normal(0, 1.0), expr, studio=True, light=light)
            name = f"{subject}/y{yaw:+03d}_{light}.png"
            extra: dict[str, object] = {
                "pitch": round(spec.pitch, 1),
                "illumination": light,
                "expression": EXPRESSIONS[expr],
                "gallery": int(gallery),
            }
            if occluded:
                kind = cfg.occlusions[int(rng.integers(len(cfg.occlusions)))] if yaw != 0 else "none"
                spec.occlusion = kind
                extra.update(
                    occlusion=kind, mask_path=f"masks/{name}" if kind != "none" else "", clean_path=f"clean/{name}"
                )
            extra["frontal_path"] = frontal
            items.append(_Item(spec, f"images/{name}", subject, split, extra, float(yaw)))
    elif cfg.preset == "nirvis":
        lay = _rng(cfg, index)
        n_vis, n_nir = int(lay.integers(1, 6)), int(lay.integers(4, 13))
        for k in range(n_vis + n_nir):
            rng = _rng(cfg, index, k)
            if k < n_vis:
                gallery = k == 0
                yaw = rng.normal(0, 3) if gallery else rng.uniform(-30, 30)
                expr = 0 if gallery else _expression(rng, 0.75)
                spec = _vis_spec(rng, round(float(yaw), 1), expr, studio=gallery)
                name, illum = f"vis_{k:02d}", "ambient"
            else:
                gallery = False
                expr = _expression(rng, 0.75)
                spec = _nir_spec(rng, round(float(np.clip(rng.normal(0, 10), -30, 30)), 1), expr)  # mostly near-frontal
                name, illum = f"nir_{k - n_vis:02d}", "active_nir"
            items.append(
                _Item(
                    spec,
                    f"images/{subject}/{name}.png",
                    subject,
                    split,
                    {
                        "pitch": round(spec.pitch, 1),
                        "illumination": illum,
                        "expression": EXPRESSIONS[expr],
                        "gallery": int(gallery),
                    },
                )
            )
        if cfg.paired_subjects is not None and split == "train" and index >= cfg.paired_subjects:
            # a VIS-only training subject: its NIR images are left out after every draw, so what is
            # kept is byte-identical to the full preset
            items = [it for it in items if it.spec.modality != "nir"]
    return items


# ----------------------------------------------------------------------------- writing
def _chunks(cfg: SynthConfig, n: int) -> list[range]:
    """Fixed groups of subjects rendered together (about CHUNK_IMAGES images each)."""
    per = {"webface": cfg.images_per_subject, "nirvis": 11}.get(cfg.preset, len(MULTIPIE_YAWS) * 4)
    step = max(1, CHUNK_IMAGES // per)
    return [range(i, min(n, i + step)) for i in range(0, n, step)]


def _records(items: list[_Item]) -> list[Record]:
    return [
        make_record(
            it.path, it.subject, it.spec.modality, it.yaw if it.yaw is not None else it.spec.yaw, it.split, **it.extra
        )
        for it in items
    ]


def _write_chunk(cfg: SynthConfig, subjects: range, n: int, out: Path) -> list[Record]:
    """Render and write the images of `subjects`; returns their manifest rows in order."""
    items, result = _render_items(cfg, subjects, n)
    for k, it in enumerate(items):
        _write(out / it.path, result.image(k))
        if it.extra.get("clean_path"):
            _write(out / str(it.extra["clean_path"]), result.image(k, clean=True))
        if it.extra.get("mask_path"):
            _write(out / str(it.extra["mask_path"]), result.masks[k])
    return _records(items)


def iter_preset(cfg: SynthConfig, subjects: Sequence[int] | None = None) -> Iterator[tuple[list[Record], RenderOutput]]:
    """Render a preset in memory, chunk by chunk: yields (manifest rows, RenderOutput).

    `subjects` restricts rendering to some subject indices (for example the test split);
    each image is identical to the one `write_preset` writes. Paths in the rows are the
    ones `write_preset` would use; nothing is written.
    """
    validate_config(cfg)
    n = _n_subjects(cfg)
    wanted = set(range(n)) if subjects is None else set(subjects)
    for ch in _chunks(cfg, n):
        sel = [i for i in ch if i in wanted]
        if sel:
            items, result = _render_items(cfg, sel, n)
            yield _records(items), result


def _render_items(cfg: SynthConfig, subjects: Sequence[int], n: int) -> tuple[list[_Item], RenderOutput]:
    """Render the images of `subjects` (indices among the preset's `n`): layout and renders."""
    ids = [preset_identity(cfg, i) for i in subjects]
    items: list[_Item] = []
    for j, i in enumerate(subjects):
        for it in _layout(cfg, i, n):
            it.spec.identity = j
            items.append(it)
    return items, render_batch(ids, [it.spec for it in items], cfg.size, cfg.device)


def _write(path: Path, array: np.ndarray) -> None:
    # Plain writes: the manifest, written atomically last, is what makes the dataset valid.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(array))


def write_preset(cfg: SynthConfig, out_dir: str | Path, progress: Callable[[int, int], None] | None = None) -> Manifest:
    """Render preset `cfg.preset` into the new folder `out_dir` (images in subfolders), write
    `manifest.csv` and `preset.yaml`, and return the Manifest.

    Everything is written into a temporary folder beside `out_dir` (`.<name>.synth-<pid>`), which
    becomes `out_dir` by one rename when complete: an interrupted or failed render (a full disk is
    a WriteError naming the file) leaves no half-written dataset, and the next render removes
    such leftovers of dead processes. `out_dir` must not exist or be an empty folder.
    `progress(done, total)` is called as images are written. Raises ConfigError for bad options,
    DataError when `out_dir` is a file or a folder that holds anything.
    """
    validate_config(cfg)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: is a file; give --out a folder to create")
    if out.is_dir() and any(out.iterdir()):
        raise DataError(f"{out}: the folder exists and is not empty; give a new folder (or remove this one)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out, exc) or exc from None
    _remove_dead_renders(out)
    tmp = out.parent / f".{out.name}.synth-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        manifest = _render_into(cfg, tmp, progress)
        if out.is_dir():
            out.rmdir()  # empty (checked above): the rename takes its place
        os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(out, exc) or exc from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("SynthFace %s: %d images in %s", cfg.preset, len(manifest), out)
    return Manifest.read(out)


def _remove_dead_renders(out: Path) -> None:
    """Remove `.<name>.synth-<pid>` folders of `out` left by renders whose process has ended."""
    for leftover in out.parent.glob(f".{out.name}.synth-*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        shutil.rmtree(leftover, ignore_errors=True)
        log.info("removed %s, left by an interrupted render", leftover)


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _render_into(cfg: SynthConfig, out: Path, progress: Callable[[int, int], None] | None) -> Manifest:
    """Render every image, `preset.yaml` and `manifest.csv` into the folder `out`."""
    out.mkdir(parents=True, exist_ok=True)
    n = _n_subjects(cfg)
    chunks = _chunks(cfg, n)
    total = sum(len(_layout(cfg, i, n)) for i in range(n)) if progress is not None else 0
    done = 0
    records: list[Record] = []
    log.info(
        "SynthFace %s: %d subjects at %dx%d (%d chunks, %d workers)",
        cfg.preset,
        n,
        cfg.size,
        cfg.size,
        len(chunks),
        cfg.workers,
    )
    if cfg.workers == 1:
        for ch in chunks:
            recs = _write_chunk(cfg, ch, n, out)
            records.extend(recs)
            done += len(recs)
            if progress is not None:
                progress(done, total)
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
                for recs in pool.map(lambda ch: _write_chunk(cfg, ch, n, out), chunks):
                    records.extend(recs)
                    done += len(recs)
                    if progress is not None:
                        progress(done, total)
        finally:
            torch.set_num_threads(threads)
    manifest = Manifest(records, out)
    description = _DESCRIPTIONS[cfg.preset]
    if cfg.paired_subjects is not None:
        description += (
            f"; paired_subjects={cfg.paired_subjects}: only the first {cfg.paired_subjects} of "
            f"{_n_train(cfg.preset, n)} training subjects keep their NIR images, the others are VIS only"
        )
    info = {
        "generator": "hfr SynthFace",
        "version": 1,
        **asdict(cfg),
        "subjects": n,
        "subject_prefix": PREFIXES[cfg.preset],
        "identity_namespace": cfg.preset,
        "images": len(records),
        "description": description,
    }
    atomic_write_text(out / "preset.yaml", yaml.safe_dump(info, sort_keys=False))
    manifest.write(out)
    return manifest


_DESCRIPTIONS = {
    "webface": "VIS identities for recognizer pretraining; mostly near-frontal yaw, random light and "
    "expression; split train",
    "multipie": "cross-pose: 9 yaws -60..60 step 15 x lights neutral/left/right/top; first 60% of subjects "
    "train, rest test; gallery=1 marks the frontal neutral-light neutral-expression image",
    "nirvis": "cross-modal: 1-5 VIS and 4-12 NIR images per subject, yaw within +-30; first half train, "
    "second half test; gallery=1 marks the first (near-frontal) VIS image",
    "occluded": "multipie layout with occluders on non-frontal images: occlusion names the kind, mask_path "
    "its mask (255 = occluded), clean_path the same render without it, frontal_path the "
    "frontal neutral clean image",
}
