"""Multi-PIE (`multipie`): files named by subject, session, recording, camera and light.

Any nesting under ROOT (the release uses
`data/session01/multiview/001/01/05_1/001_01_01_051_07.png`); only files named
`SSS_SS_RR_CCC_II.<png|jpg|jpeg|bmp>` (subject, session, recording, camera, illumination)
are indexed. Columns `session`, `recording`, `camera` (`05_1`), `illumination`,
`expression` (from session and recording: s1 neutral/smile; s2 neutral/surprise/squint;
s3 neutral/smile/disgust; s4 neutral/neutral/scream). Yaw from the camera:
11_0 -90, 12_0 -75, 09_0 -60, 08_0 -45, 13_0 -30, 14_0 -15, 05_1 0, 05_0 +15, 04_1 +30,
19_0 +45, 20_0 +60, 01_0 +75, 24_0 +90. Sign convention: negative yaw is the side of
camera 11_0 (the cameras bob.db.multipie calls "left profile"), positive the side of
camera 24_0 ("right profile"); hfr uses the sign only as a consistent pose label. The two
elevated cameras 08_1 and 19_1 (and any unknown camera) get an empty yaw.
`protocol="setting2"` (default) sets `split` by subject as in the Setting 2 of DR-GAN
(Tran et al.): subjects 001..200 `train`, 201..346 `test`; `protocol="none"` leaves
`split` empty. The evaluation protocol, not the index, selects expressions and lights.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from hfr.data.adapters.base import IndexResult, rel_path, walk_images
from hfr.data.manifest import Manifest, make_record
from hfr.errors import ArgumentError, FormatError

logger = logging.getLogger(__name__)

NAME = "multipie"
MULTIPIE_YAW: dict[str, float] = {
    "110": -90.0,
    "120": -75.0,
    "090": -60.0,
    "080": -45.0,
    "130": -30.0,
    "140": -15.0,
    "051": 0.0,
    "050": 15.0,
    "041": 30.0,
    "190": 45.0,
    "200": 60.0,
    "010": 75.0,
    "240": 90.0,
}
MULTIPIE_EXPRESSION: dict[tuple[str, str], str] = {
    ("01", "01"): "neutral",
    ("01", "02"): "smile",
    ("02", "01"): "neutral",
    ("02", "02"): "surprise",
    ("02", "03"): "squint",
    ("03", "01"): "neutral",
    ("03", "02"): "smile",
    ("03", "03"): "disgust",
    ("04", "01"): "neutral",
    ("04", "02"): "neutral",
    ("04", "03"): "scream",
}
MULTIPIE_PROTOCOLS: tuple[str, ...] = ("setting2", "none")
"""The split protocols; the first is the default."""
MULTIPIE_SETTING2_TRAIN_MAX = 200
MULTIPIE_SETTING2_TEST_MAX = 346
_MULTIPIE_NAME = re.compile(r"^(\d{3})_(\d{2})_(\d{2})_(\d{3})_(\d{2})\.(png|jpg|jpeg|bmp)$", re.IGNORECASE)


def index_multipie(
    root: Path, *, fold: int | None = None, skip_missing: bool = False, protocol: str | None = None
) -> IndexResult:
    """Index a Multi-PIE tree (see the module docstring); `protocol` None means `setting2`.

    `fold` and `skip_missing` are not used (every matching file is indexed).
    """
    protocol = protocol or MULTIPIE_PROTOCOLS[0]
    if protocol not in MULTIPIE_PROTOCOLS:
        raise ArgumentError(
            f"unknown Multi-PIE split protocol {protocol!r}; use one of {', '.join(MULTIPIE_PROTOCOLS)}"
        )
    records = []
    unknown_cameras: set[str] = set()
    for path in walk_images(root):
        m = _MULTIPIE_NAME.match(path.name)
        if not m:
            continue
        subject, session, recording, camera, light = m.group(1, 2, 3, 4, 5)
        yaw = MULTIPIE_YAW.get(camera)
        if yaw is None and camera not in ("081", "191"):
            unknown_cameras.add(camera)
        split = ""
        if protocol == "setting2":
            sid = int(subject)
            if 1 <= sid <= MULTIPIE_SETTING2_TRAIN_MAX:
                split = "train"
            elif sid <= MULTIPIE_SETTING2_TEST_MAX:
                split = "test"
        records.append(
            make_record(
                rel_path(path, root),
                subject,
                "vis",
                yaw,
                split,
                session=session,
                recording=recording,
                camera=f"{camera[:2]}_{camera[2]}",
                illumination=light,
                expression=MULTIPIE_EXPRESSION.get((session, recording), ""),
            )
        )
    if unknown_cameras:
        logger.warning(
            "Multi-PIE: unknown camera code(s) %s; their yaw is left empty", ", ".join(sorted(unknown_cameras))
        )
    if not records:
        raise FormatError(
            f"{root}: no Multi-PIE images found; expected files named "
            f"SSS_SS_RR_CCC_II.png (e.g. 001_01_01_051_07.png) anywhere under ROOT"
        )
    return IndexResult(Manifest(records, root), [], {"split": protocol})
