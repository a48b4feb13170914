"""DR-GAN's `hfr quickstart` stage: a small single-image DR-GAN, its pose sweep, rank-1 of G_enc features.

It trains `configs/quickstart/drgan.yaml` (`configs/drgan/synth-multipie.yaml` without in-training
evaluation) on the quickstart's `multipie` training subjects for `drgan_steps` steps at the
rendered size, draws a pose sweep of six test subjects (one non-frontal, neutral-light face each)
and evaluates G_enc's features cross-pose. It reaches `hfr quickstart` through the entry point
`[project.entry-points."hfr.quickstart"] drgan = "drgan.quickstart:DRGANStage"`.
"""

from __future__ import annotations

from typing import Any

from hfr.quickstart import QuickstartConfig, StageInputs, StageOutput, TextTable, run_relative


class DRGANStage:
    """Stage 5 of the quickstart (order 50); skipped when `drgan_steps` is 0."""

    order = 50

    def enabled(self, cfg: QuickstartConfig) -> bool:
        """Run when the config asks for DR-GAN steps."""
        return cfg.drgan_steps > 0

    def run(self, inputs: StageInputs) -> StageOutput:
        """Train, sweep the poses of test faces, evaluate G_enc cross-pose; the summary, console lines and
        summary.md section."""
        import torch

        from drgan.export import load_generator
        from drgan.task import pose_sweep
        from hfr.config import recipe_file
        from hfr.data.datasets import ManifestDataset
        from hfr.data.manifest import Manifest
        from hfr.eval.report import evaluate
        from hfr.nn.ranges import to_signed, to_unit
        from hfr.viz import labelled_grid, save_image, tensor_to_images

        cfg, run = inputs.cfg, inputs.run
        data = inputs.sets["multipie"]
        sets = [
            f"data.train={data}",
            f"data.recognizer={inputs.recognizer}",  # F of the recipe's identity loss: the pretrained LightCNN
            f"data.size={cfg.size}",
            f"batch_size={cfg.drgan_batch_size}",
            f"train.steps={cfg.drgan_steps}",
            f"train.log_every={max(1, cfg.drgan_steps // 10)}",
            f"train.sample_every={cfg.drgan_steps}",
            f"train.seed={cfg.seed}",
        ]
        done = inputs.stages.run("drgan", recipe_file("quickstart/drgan.yaml"), sets, run_dir=run / "drgan")
        test = Manifest.read(data).select(split="test")
        picks, seen = [], set()
        for r in test:  # one non-frontal neutral-light face per test subject
            if (
                r.subject not in seen
                and r.yaw is not None
                and abs(r.yaw) >= 30
                and r.get("illumination", "neutral") == "neutral"
            ):
                seen.add(r.subject)
                picks.append(r)
            if len(picks) == 6:
                break
        faces = ManifestDataset(test.with_records(picks), size=cfg.size, channels=3)
        images = torch.stack([faces[i]["image"] for i in range(len(faces))])
        loaded = load_generator(done.files["generator"])
        generator = done.task.G.cpu() if done.task is not None else loaded.generator
        grid = to_unit(pose_sweep(generator, to_signed(images), seed=cfg.seed))
        labels = ["input", *(f"{b:+g}" for b in loaded.yaw_bins)]
        sweep = run / "drgan" / "pose_sweep.png"
        save_image(sweep, labelled_grid(tensor_to_images(grid), ncol=len(labels), col_labels=labels))
        pose = evaluate(done.files["recognizer"], data, "cross-pose", run / "eval" / "cross-pose-drgan")
        summary: dict[str, Any] = {
            "run_dir": str(done.run_dir),
            "generator": str(done.files["generator"]),
            "sweep": str(sweep),
            "rank1_by_abs_yaw": pose["rank1_by_abs_yaw"],
            "mean": pose["mean"],
            "logs": done.logs,
        }
        by_yaw = pose["rank1_by_abs_yaw"]
        table = TextTable(
            "DR-GAN G_enc features, cross-pose rank-1 (%)",
            [*(f"|yaw| {y}" for y in by_yaw), "mean"],
            [[*(f"{100 * v:.1f}" for v in by_yaw.values()), f"{100 * pose['mean']:.1f}"]],
        )
        console: list[str | TextTable] = [table, f"DR-GAN pose sweep: {sweep}; generator: {summary['generator']}"]
        markdown = [
            "",
            f"## DR-GAN ({cfg.drgan_steps} steps on the multipie training subjects)",
            "",
            "Cross-pose rank-1 of G_enc features (%):",
            "",
            "| yaw (+-) | " + " | ".join(by_yaw) + " | mean |",
            "| --- " * (len(by_yaw) + 2) + "|",
            "| rank-1 (%) | "
            + " | ".join(f"{100 * v:.1f}" for v in by_yaw.values())
            + f" | {100 * pose['mean']:.1f} |",
            "",
            "Pose sweep of test subjects (input, then every pose bin):",
            "",
            f"![DR-GAN pose sweep]({run_relative(sweep, run)})",
        ]
        return StageOutput(summary, console, markdown)
