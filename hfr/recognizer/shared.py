"""The strong shared recognizer: one recipe, trained as a reusable stage, in two roles.

Generators learn identity from a recognizer F (DVG-Face's identity-preserving loss, TSGAN's identity
loss) and are measured by a recognizer too; a weak one hides every failure. `configs/recognizer/
synth-judge.yaml` is the recipe (LightCNN-9 with a CosFace head, trained on the SynthFace training
subjects of `webface`, `multipie` and `nirvis`, VIS and NIR). Two roles stay apart:

- `F`: the recognizer a generator trains with (seed `ROLE_SEEDS["F"]`);
- `judge`: an independent copy (another seed) used only to measure generated faces; a generator
  never sees it;
- `F-vis`: F's recipe and seed on the VIS images only (`data.modalities=[vis]`): the recognizer of a
  world with a large VIS set and few NIR-VIS pairs, where DVG-Face's generated pairs are meant to help
  (`benchmarks/cross_modal.py`'s scarce-pair regimes start from it, and its F_s and G learn from it).

`train_shared_recognizer(stages, role, sets)` renders whatever of the three SynthFace sets is
missing, then trains (or, with `Stages(reuse=True)`, reuses) the role as the stage
`recognizer-<role>`; benchmarks and the quickstart call it, so they share one recipe and its files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hfr.config import recipe_file
from hfr.engine.stages import StageRun, Stages, render_synth
from hfr.errors import ArgumentError

#: The recipe of the shared recognizer and of its training data (SynthFace presets).
RECIPE = "recognizer/synth-judge.yaml"
DATA_RECIPES: dict[str, str] = {
    "webface": "data/synth-webface.yaml",
    "multipie": "data/synth-multipie.yaml",
    "nirvis": "data/synth-nirvis.yaml",
}
#: The training seed of each role: F and the judge differ in their initialisation and data order.
ROLE_SEEDS: dict[str, int] = {"F": 0, "judge": 1, "F-vis": 0}
#: The extra `--set`s of a role beyond the recipe's.
ROLE_SETS: dict[str, list[str]] = {"F-vis": ["data.modalities=[vis]"]}


@dataclass
class SharedData:
    """Where the shared recognizer's SynthFace sets are (rendered by `render_shared_data` when absent)."""

    webface: Path
    multipie: Path
    nirvis: Path
    seconds: float = 0.0  #: rendering time spent by `render_shared_data`


def render_shared_data(
    root: str | Path,
    size: int = 64,
    seed: int = 0,
    subjects: dict[str, int] | None = None,
    workers: int = 2,
) -> SharedData:
    """The three sets under `root/<preset>` (rendered from configs/data recipes when absent)."""
    from hfr.data.synth import DEFAULT_SUBJECTS

    root = Path(root)
    counts = {**{k: DEFAULT_SUBJECTS[k] for k in DATA_RECIPES}, **(subjects or {})}
    paths, seconds = {}, 0.0
    for preset, recipe in DATA_RECIPES.items():
        manifest, _, took = render_synth(
            recipe_file(recipe), root / preset, counts[preset], size, seed, workers=workers
        )
        paths[preset] = manifest.parent
        seconds += took
    return SharedData(paths["webface"], paths["multipie"], paths["nirvis"], round(seconds, 1))


def shared_sets(data: SharedData, role: str, steps: int | None = None, eval_every: int | None = None) -> list[str]:
    """The `--set`s that point the recipe at `data` for `role` (and optionally change its budget)."""
    if role not in ROLE_SEEDS:
        raise ArgumentError(f"unknown recognizer role {role!r}; use one of {', '.join(ROLE_SEEDS)}")
    sets = [
        f"data.train={data.webface}",
        f"data.extra_train=[{data.multipie},{data.nirvis}]",
        f"data.eval={data.multipie}",
        f"train.seed={ROLE_SEEDS[role]}",
        *ROLE_SETS.get(role, []),
    ]
    if steps is not None:
        sets.append(f"train.steps={steps}")
    if eval_every is not None:
        sets.append(f"train.eval_every={eval_every}")
    return sets


def train_shared_recognizer(
    stages: Stages, role: str, data: SharedData, extra_sets: list[str] | None = None
) -> StageRun:
    """Train (or reuse) the shared recognizer in `role` as the stage `recognizer-<role>`; its
    `recognizer.pt` is `result.file`."""
    sets = shared_sets(data, role) + list(extra_sets or [])
    return stages.run(f"recognizer-{role}", recipe_file(RECIPE), sets)


#: The yaw estimator's recipe (`hfr.pose`): the pose instrument of the generated-face quality protocol.
YAW_RECIPE = "judge/synth-yaw.yaml"


#: The stage and extra `--set`s of each yaw-estimator role: `judge` judges generated faces (the quality
#: protocol's); `P` is the frozen pose estimator a generator may train against (a generator's pose loss),
#: so that the network that measures a generator's pose is never the one it learned from. P differs in
#: seed (initialisation, data order) and in width (24-48-96-192 against 16-32-64-128): a pattern that
#: fools one network transfers less to a network of another shape. The judge's sets are the ones its
#: stage always had.
YAW_ROLES: dict[str, tuple[str, list[str]]] = {
    "judge": ("yaw-estimator", []),
    "P": ("yaw-estimator-P", ["train.seed=1", "net.widths=[24,48,96,192]"]),
}


def train_yaw_estimator(
    stages: Stages, data: SharedData, extra_sets: list[str] | None = None, role: str = "judge"
) -> StageRun:
    """Train (or reuse) the yaw estimator of `role` (`YAW_ROLES`) on `data.multipie`'s training subjects
    as its stage (`yaw-estimator`, `yaw-estimator-P`); its `yaw_estimator.pt` is `result.file`."""
    if role not in YAW_ROLES:
        raise ArgumentError(f"unknown yaw-estimator role {role!r}; use one of {', '.join(YAW_ROLES)}")
    stage, role_sets = YAW_ROLES[role]
    sets = [f"data.train={data.multipie}", f"data.eval={data.multipie}", *role_sets, *(extra_sets or [])]
    return stages.run(stage, recipe_file(YAW_RECIPE), sets, export_key="yaw_estimator")
