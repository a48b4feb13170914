"""hfr.eval.intervals: Student-t intervals of a few seeds, paired differences."""

from __future__ import annotations

import math

import pytest

from hfr.errors import ArgumentError
from hfr.eval.intervals import paired, t_interval, t_quantile


def test_t_interval_hand_case() -> None:
    # 1, 2, 3: mean 2, sample std 1, half width t_{0.975,2} / sqrt(3) = 4.303 / 1.732
    r = t_interval([1.0, 2.0, 3.0])
    assert r["mean"] == pytest.approx(2.0)
    assert r["std"] == pytest.approx(1.0)
    assert r["high"] - r["mean"] == pytest.approx(4.303 / math.sqrt(3), rel=1e-6)
    assert r["low"] == pytest.approx(2.0 - 4.303 / math.sqrt(3), rel=1e-6)


def test_t_interval_single_value_and_nan() -> None:
    r = t_interval([5.0, float("nan")])
    assert r["n"] == 1 and r["mean"] == 5.0 and r["low"] is None
    assert t_interval([])["mean"] is None


def test_t_quantile_table_between_and_beyond() -> None:
    assert t_quantile(4) == pytest.approx(2.776)
    assert t_quantile(22) == pytest.approx(2.086)  # between 20 and 25: the wider (df 20)
    assert t_quantile(1000) == pytest.approx(1.96)
    with pytest.raises(ArgumentError):
        t_quantile(0)


def test_paired_uses_common_keys_and_cancels_shared_noise() -> None:
    ref = {0: 10.0, 1: 20.0, 2: 30.0, 3: 99.0}
    method = {0: 11.0, 1: 21.0, 2: 31.0}
    r = paired(method, ref)
    assert r["n"] == 3 and r["mean"] == pytest.approx(1.0) and r["std"] == pytest.approx(0.0)
    assert r["low"] == pytest.approx(1.0) and r["high"] == pytest.approx(1.0)
