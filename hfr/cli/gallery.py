"""`hfr gallery build | add | remove | info` and `hfr search`: galleries of recognizer features.

`gallery build --backend faiss` (default) writes a FAISS folder; `--backend milvus` a Milvus
gallery (`hfr.gallery.milvus`: the folder holds meta.json, the vectors live in milvus-lite
inside it or at `--uri`). The other commands open either through `hfr.gallery.backends`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from hfr.cli.common import (
    RECOGNIZER_HELP,
    add_detect_flags,
    add_embed_flags,
    add_gallery_data_flags,
    console,
    csv_cell,
    face_entry_path,
    faces_of,
    progress_bar,
    stats_table,
)
from hfr.errors import HFRError, OptionError


def _select(args: argparse.Namespace) -> Any:
    """The manifest of the images `--data` names, after `--split` / `--modality`."""
    from hfr.probes import load_targets

    manifest = load_targets(args.data)
    if getattr(args, "split", None):
        manifest = manifest.select(split=args.split)
    if getattr(args, "modality", None):
        manifest = manifest.select(modality=args.modality)
    if len(manifest) == 0:
        raise OptionError(f"{args.data}: no images left after --split/--modality")
    return manifest


def _abs_path(manifest: Any, record: Any) -> str:
    """The absolute, symlink-free path of a manifest row's image: what a gallery stores."""
    return str(manifest.resolve(record.path).resolve())


def _entry_path(args: argparse.Namespace, manifest: Any, record: Any) -> str:
    """What the gallery stores for a row: its image's absolute path, or with --detect its photo's
    (`hfr.cli.common.face_entry_path`: `<photo>#f<k>` with `--faces all`)."""
    if getattr(args, "detect", False):
        return face_entry_path(record, args.faces)
    return _abs_path(manifest, record)


def _embed(args: argparse.Namespace, recognizer: Any, manifest: Any) -> tuple[Any, list[str], list[str], list[str]]:
    """(features, subjects, modalities, absolute paths) of `manifest`'s images.

    With `--fuse`, one entry per subject (`hfr.embed.embed_subjects`: omega-weighted for
    DR-GAN, the mean of normalised features otherwise) holding its first image's modality and path.
    """
    from hfr.embed import embed_manifest, embed_subjects

    progress, update = progress_bar("embedding")
    with progress:
        if getattr(args, "fuse", False):
            subjects, feats = embed_subjects(recognizer, manifest, batch_size=args.batch_size, progress=update)
            first: dict[str, Any] = {}
            for r in manifest:
                first.setdefault(r.subject, r)
            rows = [first[s] for s in subjects]
        else:
            feats = embed_manifest(recognizer, manifest, batch_size=args.batch_size, progress=update)
            rows = list(manifest)
    return feats, [r.subject for r in rows], [r.modality for r in rows], [_entry_path(args, manifest, r) for r in rows]


def _check_recognizer(args: argparse.Namespace, recognizer: Any, fingerprint: str) -> None:
    if recognizer.fingerprint != fingerprint:
        raise OptionError(
            f"--recognizer {args.recognizer} (fingerprint {recognizer.fingerprint}) is not the "
            f"gallery's recognizer ({fingerprint}); use the same recognizer"
        )


def _check_backend_flags(args: argparse.Namespace) -> None:
    """OptionError for flags of the other backend; ExtraMissingError for `--backend milvus` without the extra."""
    if args.backend == "milvus":
        from hfr.gallery.milvus import require_milvus

        if args.recall is not None:
            raise OptionError("--recall tunes a FAISS index; a Milvus gallery uses Milvus's exact FLAT index")
        if args.index not in (None, "flat"):
            raise OptionError(
                f"--index {args.index}: a Milvus gallery uses Milvus's exact FLAT index; leave --index out"
            )
        if args.rerank:
            raise OptionError(f"--rerank {args.rerank} re-ranks a FAISS ivfpq index; a Milvus gallery is exact already")
        require_milvus()  # before embedding: a missing extra is one line at once
    else:
        given = [flag for flag, value in (("--uri", args.uri), ("--collection", args.collection)) if value is not None]
        if given:
            verb = "apply" if len(given) > 1 else "applies"
            raise OptionError(f"{' and '.join(given)} only {verb} to --backend milvus: add it, or leave them out")


def _check_rerank_flags(args: argparse.Namespace) -> None:
    """OptionError, before any embedding, for a --rerank the chosen index cannot use."""
    if args.rerank < 0:
        raise OptionError(f"--rerank must be >= 0 (0 = off), got {args.rerank}")
    if args.rerank and args.recall is not None:
        raise OptionError(
            f"--rerank {args.rerank} and --recall {args.recall}: --recall chooses the index (re-ranked ones "
            f"included); give one"
        )
    if args.rerank and args.backend == "faiss" and args.index != "ivfpq":
        raise OptionError(
            f"--rerank {args.rerank} re-scores the shortlist of compressed codes, so it needs --index ivfpq "
            f"(got {args.index or 'flat'}, which scores with the full vectors already)"
        )


def cmd_gallery_build(args: argparse.Namespace) -> int:
    """Embed a dataset and write a new gallery folder (replacing a gallery there, under its writer lock)."""
    from hfr.gallery import Gallery
    from hfr.gallery.backends import gallery_backend
    from hfr.recognizer.export import load_recognizer

    _check_backend_flags(args)
    _check_rerank_flags(args)
    milvus_out = False
    with contextlib.suppress(HFRError):  # a corrupt meta.json: the FAISS save replaces the folder as before
        milvus_out = gallery_backend(args.out) == "milvus"
    if args.backend == "faiss" and milvus_out:
        raise OptionError(
            f"--out {args.out} is a Milvus gallery: rebuild it with --backend milvus, or delete the folder first"
        )
    recognizer = load_recognizer(args.recognizer, device=args.device)
    with faces_of(args, _select(args)) as faces:
        feats, subjects, modalities, paths = _embed(args, recognizer, faces)
    if args.backend == "milvus":
        from hfr.gallery.milvus import MilvusGallery

        milvus = MilvusGallery.build(
            args.out,
            feats,
            subjects,
            recognizer.fingerprint,
            modalities=modalities,
            paths=paths,
            uri=args.uri,
            collection=args.collection,
            lock_timeout=args.lock_timeout,
        )
        console.print(stats_table(f"gallery {milvus.folder}", milvus.info()))
        return 0
    if args.recall is not None:
        from hfr.gallery.tune import build_for_recall

        if args.index is not None:
            raise OptionError(f"--index {args.index} and --recall {args.recall}: --recall chooses the index; give one")
        gallery = build_for_recall(
            feats,
            subjects,
            recognizer.fingerprint,
            args.recall,
            modalities,
            paths,
            removable=not args.append_only,
            max_bytes_per_vector=args.max_bytes_per_face,
        )
    else:
        gallery = Gallery.build(
            feats,
            subjects,
            recognizer.fingerprint,
            modalities=modalities,
            paths=paths,
            index=args.index or "flat",
            nlist=args.nlist,
            nprobe=args.nprobe,
            pq_m=args.pq_m,
            opq=args.opq,
            ef_search=args.ef_search,
            rerank=args.rerank,
        )
    folder = gallery.save(args.out, lock_timeout=args.lock_timeout)
    console.print(stats_table(f"gallery {folder}", gallery.info()))
    return 0


def cmd_gallery_add(args: argparse.Namespace) -> int:
    """Embed more images into an existing gallery; images it already holds are skipped.

    The images are embedded without the lock (a first read of the gallery checks the
    recognizer and leaves out images it holds), then the gallery is loaded again, added
    to and saved under its writer lock, so concurrent `gallery add`s all end up in it.
    """
    import numpy as np

    from hfr.gallery.backends import gallery_backend, open_for_update, open_gallery
    from hfr.gallery.storage import check_folder, read_ids, read_meta
    from hfr.recognizer.export import load_recognizer

    folder = args.gallery
    milvus = gallery_backend(folder) == "milvus"
    if milvus:  # a first look: the recognizer, and the images the gallery holds
        first: Any = open_gallery(folder, lock_timeout=args.lock_timeout)
        fingerprint = first.fingerprint
    else:
        check_folder(folder)
        fingerprint = read_meta(folder)["fingerprint"]
    recognizer = load_recognizer(args.recognizer, device=args.device)
    _check_recognizer(args, recognizer, fingerprint)
    manifest = _select(args)
    skipped = 0
    # a fused entry's path is known only after embedding, and with --detect --faces all a photo's faces only
    # after detection; then the check after embedding finds what the gallery holds
    if not args.allow_duplicates and not args.fuse and not (args.detect and args.faces == "all"):
        wanted = [_abs_path(manifest, r) for r in manifest]
        if milvus:
            held_rows = first.contains_paths(wanted).tolist()
        else:
            held = set(read_ids(folder)[3].tolist())
            held_rows = [p in held for p in wanted]
        keep = [r for r, h in zip(manifest, held_rows) if not h]
        skipped = len(manifest) - len(keep)
        manifest = manifest.with_records(keep)
    ids = np.zeros(0, np.int64)
    total = -1
    embedded = None
    if len(manifest):
        with faces_of(args, manifest, allow_none=True) as faces:  # --detect: None when no photo has a face
            embedded = _embed(args, recognizer, faces) if faces is not None else None
    if embedded is not None:
        feats, subjects, modalities, paths = embedded
        with open_for_update(folder, lock_timeout=args.lock_timeout) as gallery:
            _check_recognizer(args, recognizer, gallery.fingerprint)  # rebuilt meanwhile?
            if not args.allow_duplicates:
                new = ~gallery.contains_paths(paths)
                skipped += int((~new).sum())
                feats = feats[new]
                subjects, modalities, paths = (
                    [v for v, k in zip(col, new) if k] for col in (subjects, modalities, paths)
                )
            if len(paths):
                ids = gallery.add(feats, subjects, modalities, paths)
                gallery.save(lock_timeout=args.lock_timeout)
            total = len(gallery)
    if total < 0:
        total = len(open_gallery(folder, lock_timeout=args.lock_timeout)) if milvus else len(read_ids(folder)[0])
    added = f"added {len(ids)} entries" + (f" (ids {int(ids.min())}..{int(ids.max())})" if len(ids) else "")
    dup = f"; skipped {skipped} already in the gallery (--allow-duplicates adds them again)" if skipped else ""
    console.print(f"{added}{dup}; gallery holds {total}")
    return 0


def cmd_gallery_remove(args: argparse.Namespace) -> int:
    """Remove images by id or whole subjects from a gallery (under its writer lock)."""
    from hfr.gallery.backends import open_for_update

    if not args.id and not args.subject:
        raise OptionError("gallery remove: give --id N and/or --subject S (repeatable)")
    with open_for_update(args.gallery, lock_timeout=args.lock_timeout) as gallery:
        removed = gallery.remove(ids=args.id or None, subjects=args.subject or None)
        if removed:
            gallery.save(lock_timeout=args.lock_timeout)
        total = len(gallery)
    console.print(f"removed {removed} images; gallery holds {total}")
    return 0


def cmd_gallery_info(args: argparse.Namespace) -> int:
    """Print what a gallery holds."""
    from hfr.gallery.backends import open_gallery

    gallery = open_gallery(args.gallery)
    console.print(stats_table(f"gallery {args.gallery}", gallery.info()))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Search a gallery with probe images; print (probe, rank, subject, score)."""
    from hfr.embed import embed_manifest
    from hfr.fileio import atomic_write_text
    from hfr.gallery.backends import open_gallery
    from hfr.probes import load_targets
    from hfr.recognizer.export import load_recognizer

    if args.k < 1:
        raise OptionError(f"-k must be >= 1, got {args.k}")
    gallery = open_gallery(args.gallery)
    recognizer = load_recognizer(args.recognizer, device=args.device)
    with faces_of(args, load_targets(args.probe)) as manifest:
        feats = embed_manifest(recognizer, manifest, batch_size=args.batch_size)
    result = gallery.search_subjects(feats, k=args.k, fingerprint=recognizer.fingerprint)
    detect = bool(args.detect)
    names = [r.get("photo") if detect else r.path for r in manifest]
    boxes = [[float(r.get(c)) for c in _BOX] if detect else None for r in manifest]
    rows = [(names[int(q)], boxes[int(q)], rank, subject, score) for q, rank, subject, score in result.rows()]
    table = Table(title=f"search {args.gallery} (top {args.k})", header_style="bold")
    for col in ("probe", "face box", "rank", "subject", "score") if detect else ("probe", "rank", "subject", "score"):
        table.add_column(col, overflow="fold")
    for probe, box, rank, subject, score in rows[: args.max_rows]:
        cells = [probe, _box_text(box)] if detect else [probe]
        table.add_row(*cells, str(rank), subject, f"{score:.4f}")
    console.print(table)
    if len(rows) > args.max_rows:
        console.print(f"({len(rows) - args.max_rows} more rows; use --json or --csv for all)")
    if args.json:
        entries = [
            {"probe": p, **({"box": b} if detect else {}), "rank": r, "subject": s, "score": sc}
            for p, b, r, s, sc in rows
        ]
        atomic_write_text(args.json, json.dumps(entries, indent=2) + "\n")
        console.print(f"results: {args.json}")
    if args.csv:
        head = "probe," + (",".join(_BOX) + "," if detect else "") + "rank,subject,score"
        lines = [head] + [
            f"{csv_cell(p)},"
            + ("".join(f"{v:.1f}," for v in b) if b is not None else "")
            + f"{r},{csv_cell(s)},{sc:.6f}"
            for p, b, r, s, sc in rows
        ]
        atomic_write_text(args.csv, "\n".join(lines) + "\n")
        console.print(f"results: {args.csv}")
    return 0


#: The box columns of a detected face (`hfr.data.detect.BOX_COLUMNS`; not imported, to keep `hfr --help` light).
_BOX = ("box_x1", "box_y1", "box_x2", "box_y2")


def _box_text(box: list[float] | None) -> str:
    """A face box as `x1,y1-x2,y2` pixels (empty without one)."""
    return "" if box is None else f"{box[0]:.0f},{box[1]:.0f}-{box[2]:.0f},{box[3]:.0f}"


def _lock_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"--lock-timeout must be a number of seconds >= 0, got {text!r}")
    return value


def _add_lock_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lock-timeout",
        type=_lock_timeout,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait while another command writes the gallery (default 60)",
    )


def register(sub: Any) -> None:
    """Add `hfr gallery ...` and `hfr search` to the `hfr` subparsers `sub`."""
    g = sub.add_parser("gallery", help="galleries (FAISS or Milvus): build, add, remove, info")
    gsub = g.add_subparsers(dest="gallery_command", metavar="GALLERY_COMMAND")
    gsub.required = True
    gb = gsub.add_parser("build", help="embed a dataset into a new gallery folder")
    add_gallery_data_flags(gb)
    gb.add_argument("--out", type=Path, required=True, help="gallery folder to write")
    gb.add_argument(
        "--backend",
        choices=("faiss", "milvus"),
        default="faiss",
        help='faiss (default: a FAISS index in the folder) | milvus (needs pip install -e ".[milvus]")',
    )
    gb.add_argument(
        "--uri",
        help="milvus: a milvus-lite .db path or a server URI such as http://host:19530 (default: OUT/milvus.db); "
        "a server token goes in $HFR_MILVUS_TOKEN",
    )
    gb.add_argument("--collection", help="milvus: the collection name (default: chosen and recorded in meta.json)")
    gb.add_argument(
        "--index",
        choices=("flat", "ivf", "ivfpq", "hnsw"),
        help="flat (exact, default) | ivf | ivfpq (compressed) | hnsw (cannot remove); faiss only",
    )
    gb.add_argument("--nlist", type=int, default=1024, help="IVF lists (ivf, ivfpq)")
    gb.add_argument("--nprobe", type=int, default=16, help="IVF lists visited per query (ivf, ivfpq)")
    gb.add_argument("--pq-m", type=int, default=32, help="ivfpq: bytes per face code (divides the dimension)")
    gb.add_argument("--opq", action="store_true", help="ivfpq: learn an OPQ rotation first")
    gb.add_argument(
        "--rerank",
        type=int,
        default=0,
        metavar="R",
        help="ivfpq: the codes pick R candidates per query (e.g. 64), re-scored with the exact vectors "
        "(re-ranking as in Jegou et al., ICASSP 2011, and FAISS's IndexRefineFlat): exact cosines, and a "
        "recall@1 codes alone cannot reach. Costs 4 x dim bytes per face on disk (vectors.npy in the folder, "
        "memory-mapped; memory holds only the codes) and R vector reads per query. Default 0: off",
    )
    gb.add_argument("--ef-search", type=int, default=64, help="hnsw: candidates kept per query")
    gb.add_argument(
        "--recall",
        type=float,
        help="choose the fastest index whose recall@1 against exact search, measured on this gallery, "
        "reaches this (e.g. 0.99); recorded in meta.json and shown by gallery info",
    )
    gb.add_argument(
        "--append-only", action="store_true", help="with --recall: faces will not be removed, so HNSW may be chosen"
    )
    gb.add_argument(
        "--max-bytes-per-face",
        type=float,
        help="with --recall: leave out indexes taking more memory than this per face (a re-ranked "
        "index's vectors file is on disk and not counted; e.g. 80 allows 64-byte codes)",
    )
    add_embed_flags(gb)
    add_detect_flags(gb)
    _add_lock_flag(gb)
    gb.set_defaults(func=cmd_gallery_build)
    ga = gsub.add_parser("add", help="embed more images into a gallery (images it holds are skipped)")
    ga.add_argument("--gallery", type=Path, required=True, help="gallery folder")
    add_gallery_data_flags(ga)
    ga.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="add images whose path the gallery already holds (default: skip them and say how many)",
    )
    add_embed_flags(ga)
    add_detect_flags(ga)
    _add_lock_flag(ga)
    ga.set_defaults(func=cmd_gallery_add)
    gr = gsub.add_parser("remove", help="remove images by id or whole subjects")
    gr.add_argument("--gallery", type=Path, required=True)
    gr.add_argument("--id", type=int, action="append", help="gallery id (repeatable)")
    gr.add_argument("--subject", action="append", help="subject (repeatable)")
    _add_lock_flag(gr)
    gr.set_defaults(func=cmd_gallery_remove)
    gi = gsub.add_parser("info", help="what a gallery holds")
    gi.add_argument("--gallery", type=Path, required=True)
    gi.set_defaults(func=cmd_gallery_info)

    se = sub.add_parser("search", help="search a gallery: top-k subjects per probe")
    se.add_argument("--gallery", type=Path, required=True, help="gallery folder")
    se.add_argument("--recognizer", type=Path, required=True, help="the gallery's recognizer (" + RECOGNIZER_HELP + ")")
    se.add_argument("--probe", type=Path, required=True, help="image, folder or manifest")
    se.add_argument("-k", type=int, default=5, help="subjects per probe (clamped to the gallery's)")
    se.add_argument("--json", type=Path, help="also write the results as JSON")
    se.add_argument("--csv", type=Path, help="also write the results as CSV")
    se.add_argument("--max-rows", type=int, default=50, help="rows to print")
    add_embed_flags(se)
    add_detect_flags(se)
    se.set_defaults(func=cmd_search)
