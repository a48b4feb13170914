"""Tiny fake copies of real dataset layouts (CASIA NIR-VIS 2.0, Multi-PIE, CFP, LFW, folders).

Each writer builds the official folder layout and protocol files with 8x8 images under a
given folder and returns what a test needs to know about it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hfr.data.imageio import write_png


def write_image(path: Path, value: int = 128) -> Path:
    """Write an 8x8 grey image; the format follows the suffix (.png, .jpg, .bmp, any case)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full((8, 8), value, dtype=np.uint8)
    if path.suffix.lower() == ".png":
        write_png(path, array)
    else:
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}[path.suffix.lower()]
        Image.fromarray(array).save(path, format=fmt)
    return path


# CASIA NIR-VIS 2.0: subject -> session; fold roles: fold 1 trains on 00001/00002 and tests on
# 00003/00004, fold 2 the other way round; the dev lists use 00001 (train) and 00003 (test).
CASIA_SUBJECTS = {"00001": "s1", "00002": "s1", "00003": "s2", "00004": "s2"}
CASIA_NIR_PER_SUBJECT = 2


def casia_vis(subject: str) -> str:
    """The list entry (Windows form) of a subject's VIS image."""
    return f"{CASIA_SUBJECTS[subject]}\\VIS\\{subject}\\001.jpg"


def casia_nir(subject: str) -> list[str]:
    """The list entries (Windows form) of a subject's NIR images."""
    return [f"{CASIA_SUBJECTS[subject]}\\NIR\\{subject}\\{i:03d}.bmp" for i in range(1, CASIA_NIR_PER_SUBJECT + 1)]


def write_casia(root: Path) -> Path:
    """A CASIA NIR-VIS 2.0 tree with two View 2 folds and the View 1 dev lists (CRLF lists)."""
    for subject in CASIA_SUBJECTS:
        write_image(root / casia_vis(subject).replace("\\", "/"))
        for entry in casia_nir(subject):
            write_image(root / entry.replace("\\", "/"))
    folds = {
        "1": (["00001", "00002"], ["00003", "00004"]),
        "2": (["00003", "00004"], ["00001", "00002"]),
        "dev": (["00001"], ["00003"]),
    }
    proto = root / "protocols"
    proto.mkdir(parents=True)
    for k, (train, test) in folds.items():
        lists = {
            f"vis_train_{k}.txt": [casia_vis(s) for s in train],
            f"nir_train_{k}.txt": [e for s in train for e in casia_nir(s)],
            f"vis_gallery_{k}.txt": [casia_vis(s) for s in test],
            f"nir_probe_{k}.txt": [e for s in test for e in casia_nir(s)],
        }
        for name, lines in lists.items():
            (proto / name).write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))
    return root


MULTIPIE_FILES = [
    # subject, session, recording, camera, illumination
    ("001", "01", "01", "051", "07"),
    ("001", "01", "02", "110", "07"),
    ("001", "02", "03", "240", "00"),
    ("201", "04", "03", "041", "12"),
    ("201", "03", "03", "081", "05"),
]


def write_multipie(root: Path) -> Path:
    """Multi-PIE files in the release nesting data/sessionSS/multiview/SSS/RR/CC_C/."""
    for subject, session, rec, cam, light in MULTIPIE_FILES:
        folder = root / "data" / f"session{session}" / "multiview" / subject / rec / f"{cam[:2]}_{cam[2]}"
        write_image(folder / f"{subject}_{session}_{rec}_{cam}_{light}.png")
    write_image(root / "data" / "session01" / "highres" / "001_01_01_05.png")  # not a multiview name
    return root


CFP_SUBJECTS = ("001", "002", "003")


def write_cfp(root: Path) -> Path:
    """CFP with 3 subjects x (2 frontal + 1 profile), folds 01 and 02 of FF and FP."""
    f_lines: list[str] = []
    p_lines: list[str] = []
    for s in CFP_SUBJECTS:
        for n in (1, 2):
            write_image(root / "Data" / "Images" / s / "frontal" / f"{n:02d}.jpg")
            f_lines.append(f"{len(f_lines) + 1} ../Data/Images/{s}/frontal/{n:02d}.jpg")
        write_image(root / "Data" / "Images" / s / "profile" / "01.jpg")
        p_lines.append(f"{len(p_lines) + 1} ../Data/Images/{s}/profile/01.jpg")
    proto = root / "Protocol"
    proto.mkdir(parents=True)
    (proto / "Pair_list_F.txt").write_text("\n".join(f_lines) + "\n")
    (proto / "Pair_list_P.txt").write_text("\n".join(p_lines) + "\n")
    # frontal index of subject s, image n: 2*s + n (0-based s); profile index: s + 1.
    # Fold 01 pairs involve subjects 001 and 002, fold 02 pairs subjects 002 and 003.
    splits = {
        ("FF", "01"): (["1,2", "3,4"], ["1,3"]),
        ("FF", "02"): (["5,6"], ["5,4", "6,3"]),
        ("FP", "01"): (["1,1", "3,2"], ["1,2"]),
        ("FP", "02"): (["5,3"], ["6,2"]),
    }
    for (name, k), (same, diff) in splits.items():
        d = proto / "Split" / name / k
        d.mkdir(parents=True)
        (d / "same.txt").write_text("\n".join(same) + "\n")
        (d / "diff.txt").write_text("\n".join(diff) + "\n")
    return root


LFW_IMAGES = {"Alice_Smith": 3, "Bob_Jones": 2, "Carol_King": 2, "Dave_Lee": 1, "Eve_Solo": 1}
LFW_PAIRS = [
    "2\t2",
    "Alice_Smith\t1\t2",
    "Alice_Smith\t2\t3",
    "Alice_Smith\t1\tBob_Jones\t1",
    "Bob_Jones\t2\tAlice_Smith\t3",
    "Carol_King\t1\t2",
    "Carol_King\t2\t1",
    "Carol_King\t1\tDave_Lee\t1",
    "Dave_Lee\t1\tCarol_King\t2",
]


def write_lfw(root: Path, pairs: list[str] | None = None) -> Path:
    """LFW with images under ROOT/lfw/<Name>/<Name>_NNNN.jpg and a 2-fold pairs.txt."""
    for name, count in LFW_IMAGES.items():
        for i in range(1, count + 1):
            write_image(root / "lfw" / name / f"{name}_{i:04d}.jpg")
    (root / "pairs.txt").write_text("\n".join(LFW_PAIRS if pairs is None else pairs) + "\n")
    return root


def write_folder(root: Path) -> Path:
    """A plain folder: subject 'ann' without modality folders, 'ben' with NIR/ and Vis/."""
    write_image(root / "ann" / "a.png")
    write_image(root / "ann" / "b.jpg")
    write_image(root / "ben" / "NIR" / "x.bmp")
    write_image(root / "ben" / "NIR" / "y.jpeg")
    write_image(root / "ben" / "Vis" / "z.png")
    (root / "ben" / "notes.txt").write_text("not an image\n")
    return root
