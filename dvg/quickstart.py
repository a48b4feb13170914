"""DVG-Face's `hfr quickstart` stage: F_s, the dual generator, generated NIR-VIS pairs and their statistics.

It trains the identity sampler F_s (`configs/quickstart/dvg-sampler.yaml`) on the quickstart
LightCNN's features of the `webface` set for `sampler_steps` steps, then the dual generator
(`configs/quickstart/dvg.yaml`) on the `nirvis` training pairs for `dvg_steps` steps at the
recognizer's input size (`train_size`), writes `dvg_pairs` pairs of new identities (attributes
encoded from real training pairs), a grid of the first eight and their identity consistency and
diversity under the LightCNN. It reaches `hfr quickstart` through the entry point
`[project.entry-points."hfr.quickstart"] dvg = "dvg.quickstart:DVGStage"`.
"""

from __future__ import annotations

from typing import Any

from hfr.quickstart import QuickstartConfig, StageInputs, StageOutput, run_relative


class DVGStage:
    """Stage 6 of the quickstart (order 60); skipped when `dvg_steps` is 0."""

    order = 60

    def enabled(self, cfg: QuickstartConfig) -> bool:
        """Run when the config asks for DVG-Face generator steps."""
        return cfg.dvg_steps > 0

    def run(self, inputs: StageInputs) -> StageOutput:
        """F_s, the generator, the pairs, their grid and statistics; the summary, console line and summary.md
        section."""
        import torch

        from dvg.generate import generate_pairs, load_dvg, pair_statistics
        from hfr.config import recipe_file
        from hfr.data.datasets import ManifestDataset
        from hfr.data.manifest import Manifest
        from hfr.recognizer.export import load_recognizer
        from hfr.viz import labelled_grid, save_image, tensor_to_images

        cfg, run, recognizer = inputs.cfg, inputs.run, inputs.recognizer
        sampler = inputs.stages.run(
            "dvg-sampler",
            recipe_file("quickstart/dvg-sampler.yaml"),
            [
                f"data.train={inputs.sets['webface']}",
                f"data.recognizer={recognizer}",
                f"train.steps={cfg.sampler_steps}",
                f"train.log_every={max(1, cfg.sampler_steps // 5)}",
                f"train.seed={cfg.seed}",
            ],
            export_key="identity_sampler",
            run_dir=run / "dvg" / "sampler",
        ).file
        nirvis = inputs.sets["nirvis"]
        done = inputs.stages.run(
            "dvg",
            recipe_file("quickstart/dvg.yaml"),
            [
                f"data.train={nirvis}",
                f"data.size={cfg.train_size}",
                f"data.recognizer={recognizer}",
                f"data.identity_sampler={sampler}",
                f"batch_size={cfg.dvg_batch_size}",
                f"train.steps={cfg.dvg_steps}",
                f"train.log_every={max(1, cfg.dvg_steps // 10)}",
                f"train.sample_every={cfg.dvg_steps}",
                f"train.seed={cfg.seed}",
            ],
            run_dir=run / "dvg" / "generator",
        )
        pairs = run / "dvg" / "pairs"
        generate_pairs(load_dvg(done.file), pairs, cfg.dvg_pairs, seed=cfg.seed, attributes="real", data=nirvis)
        manifest = Manifest.read(pairs)
        stats = pair_statistics(load_recognizer(recognizer), manifest)
        shown = manifest.filter(lambda r: int(r.get("pair")) < 8)  # the first 8 pairs
        rows = [shown.select(modality=m) for m in ("nir", "vis")]
        images = []
        for rows_m in rows:
            faces = ManifestDataset(rows_m, size=cfg.size, channels=3)
            images += tensor_to_images(torch.stack([faces[i]["image"] for i in range(len(faces))]))
        grid = run / "dvg" / "pairs.png"
        save_image(grid, labelled_grid(images, ncol=len(rows[0]), row_labels=["NIR", "VIS"]))
        summary: dict[str, Any] = {
            "generator": str(done.file),
            "pairs": str(pairs),
            "grid": str(grid),
            "samples": str(run / "dvg" / "generator" / "samples"),
            "consistency": stats["consistency"],
            "diversity": stats["diversity"],
            "logs": done.logs,
        }
        line = (
            f"DVG-Face: {pairs} (grid {grid}); identity consistency (NIR-VIS cosine of a pair) "
            f"{stats['consistency']:.3f}, diversity (cosine between pairs) {stats['diversity']:.3f}"
        )
        text = (
            "Generated NIR-VIS pairs of new identities (F_s identities, attributes of real training pairs); "
            "under the LightCNN, the NIR and VIS image of a pair have mean cosine "
            f"{stats['consistency']:.3f} (identity consistency), different pairs {stats['diversity']:.3f} "
            "(diversity)."
        )
        markdown = [
            "",
            f"## DVG-Face ({cfg.dvg_steps} steps on the nirvis training pairs)",
            "",
            text,
            "",
            f"![DVG-Face generated pairs]({run_relative(grid, run)})",
        ]
        return StageOutput(summary, [line], markdown)
