"""`hfr evaluate`: embed a dataset with a recognizer, run a protocol, write JSON and plots."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hfr.data.manifest import Manifest
from hfr.errors import ArgumentError
from hfr.eval import protocols
from hfr.fileio import atomic_write_text

PROTOCOLS: tuple[str, ...] = ("cross-modal", "cross-pose", "verification")


def run_protocol(protocol: str, manifest: Manifest, features: Any) -> dict[str, Any]:
    """Run one protocol of PROTOCOLS on row-aligned features."""
    if protocol == "cross-modal":
        return protocols.cross_modal(manifest, features)
    if protocol == "cross-pose":
        return protocols.cross_pose(manifest, features)
    if protocol == "verification":
        from hfr.data.adapters import read_pairs, sidecar_path

        if manifest.source is None:
            raise ArgumentError("verification needs a manifest file with its pairs sidecar beside it")
        return protocols.verification(manifest, features, read_pairs(sidecar_path(manifest.source, "pairs")))
    raise ArgumentError(f"--protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")


def write_report(result: dict[str, Any], out: str | os.PathLike, label: str = "recognizer") -> list[Path]:
    """Write `result.json` and the protocol's plots (ROC, CMC, rank-1 against yaw) into `out`."""
    from hfr.viz import plot_cmc, plot_rank1_vs_yaw, plot_roc

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "result.json"]
    atomic_write_text(written[0], json.dumps(result, indent=2) + "\n")
    kind = result.get("protocol")
    if kind == "cross-modal":
        fold = result["folds"][0]
        plot_roc(
            {f"{label} ({fold['fold']})": fold["roc"]},
            folder / "roc.png",
            title=f"{result['probe_modality'].upper()} probes vs {result['gallery_modality'].upper()} gallery",
        )
        plot_cmc({label: fold["cmc"]}, folder / "cmc.png")
        written += [folder / "roc.png", folder / "cmc.png"]
    elif kind == "cross-pose":
        plot_rank1_vs_yaw({label: result["rank1_by_yaw"]}, folder / "rank1_vs_yaw.png")
        written.append(folder / "rank1_vs_yaw.png")
    elif kind == "verification":
        plot_roc({f"{label} {name}": r["roc"] for name, r in result["protocols"].items()}, folder / "roc.png")
        written.append(folder / "roc.png")
    return written


def evaluate(
    recognizer_path: str | os.PathLike,
    data: str | os.PathLike,
    protocol: str,
    out: str | os.PathLike,
    batch_size: int = 128,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Embed `data` with the recognizer, run `protocol`, write the report into `out`; return the result."""
    from hfr.embed import embed_manifest
    from hfr.recognizer.export import load_recognizer

    if protocol not in PROTOCOLS:
        raise ArgumentError(f"--protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    recognizer = load_recognizer(recognizer_path, device=device)
    manifest = Manifest.read(data)
    feats = embed_manifest(recognizer, manifest, batch_size=batch_size, progress=progress)
    result = run_protocol(protocol, manifest, feats)
    result["recognizer"] = {
        "path": str(recognizer_path),
        "arch": recognizer.arch,
        "fingerprint": recognizer.fingerprint,
    }
    result["data"] = str(manifest.source)
    write_report(result, out, label=recognizer.arch)
    return result
