"""The yaw estimator's two roles: the judging one keeps its stage's sets, P differs in seed and width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hfr.errors import ArgumentError
from hfr.recognizer.shared import SharedData, train_yaw_estimator


class _Recorder:
    """Stands in for `Stages`: records what each `run` would train."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []

    def run(self, stage: str, recipe: Any, sets: list[str], export_key: str = "") -> str:
        self.calls.append((stage, Path(recipe).name, list(sets)))
        return stage


def test_pose_estimator_p_is_its_own_stage_with_another_seed_and_width() -> None:
    data = SharedData(Path("w"), Path("mp"), Path("nv"))
    stages = _Recorder()
    train_yaw_estimator(stages, data)  # type: ignore[arg-type]
    train_yaw_estimator(stages, data, ["train.steps=4"], role="P")  # type: ignore[arg-type]
    (judge_stage, judge_recipe, judge_sets), (p_stage, p_recipe, p_sets) = stages.calls
    assert judge_stage == "yaw-estimator" and p_stage == "yaw-estimator-P"
    assert judge_recipe == p_recipe == "synth-yaw.yaml"
    assert judge_sets == ["data.train=mp", "data.eval=mp"]  # the sets its finished stages were trained with
    assert "train.seed=1" in p_sets and "net.widths=[24,48,96,192]" in p_sets and p_sets[-1] == "train.steps=4"


def test_an_unknown_yaw_role_names_the_roles() -> None:
    with pytest.raises(ArgumentError, match="judge, P"):
        train_yaw_estimator(_Recorder(), SharedData(Path("w"), Path("mp"), Path("nv")), role="F")  # type: ignore[arg-type]
