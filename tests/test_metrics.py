"""Metrics against straightforward reference implementations, hand-worked cases and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hfr.errors import ArgumentError, HFRError, MetricError, OptionError
from hfr.metrics import (
    auc,
    best_threshold,
    cmc,
    eer,
    pair_scores_from_labels,
    rank_k,
    roc_counts,
    roc_curve,
    similarity_matrix,
    subject_ranks,
    tar_at_far,
    threshold_at_far,
    verification_accuracy,
    verification_report,
)

# ----------------------------------------------------------------------------- references


def ref_roc(scores, labels):
    """ROC by counting at every distinct threshold, highest first, after (0, 0) at +inf."""
    scores = np.asarray(scores, float)
    labels = np.asarray(labels, bool)
    gen, imp = scores[labels], scores[~labels]
    far, tar, thr = [0.0], [0.0], [math.inf]
    for t in sorted(set(scores.tolist()), reverse=True):
        far.append(sum(1 for x in imp if x >= t) / len(imp))
        tar.append(sum(1 for x in gen if x >= t) / len(gen))
        thr.append(t)
    return np.array(far), np.array(tar), np.array(thr)


def ref_auc(scores, labels):
    """Mann-Whitney: every genuine x impostor pair, ties count 1/2."""
    scores = np.asarray(scores, float)
    labels = np.asarray(labels, bool)
    total = 0.0
    for g in scores[labels]:
        for i in scores[~labels]:
            total += 1.0 if g > i else 0.5 if g == i else 0.0
    return total / (labels.sum() * (~labels).sum())


def ref_tar_conservative(scores, labels, x):
    far, tar, _ = ref_roc(scores, labels)
    return max(t for f, t in zip(far, tar) if f <= x + 1e-12)


def ref_tar_nearest(scores, labels, x):
    far, tar, _ = ref_roc(scores, labels)
    best_f = min(sorted(set(far.tolist())), key=lambda f: (round(abs(f - x), 12), f))
    return max(t for f, t in zip(far, tar) if f == best_f)


def ref_eer(scores, labels):
    far, tar, thr = ref_roc(scores, labels)
    frr = 1.0 - tar
    cands = sorted(range(len(far)), key=lambda k: (round(abs(far[k] - frr[k]), 12), round(far[k] + frr[k], 12), -k))
    k = cands[0]
    return (far[k] + frr[k]) / 2, thr[k]


def ref_ranks(sim, probe_labels, gallery_labels):
    """Per probe: best score of each subject, then count subjects scoring >= the true one."""
    ranks = []
    for p, lab in enumerate(probe_labels):
        best: dict[object, float] = {}
        for g, gl in enumerate(gallery_labels):
            best[gl] = max(best.get(gl, -math.inf), sim[p, g])
        ranks.append(sum(1 for v in best.values() if v >= best[lab]))
    return np.array(ranks)


def ref_best_cut(scores, labels):
    """Loop over cuts (accept the j highest distinct scores), first best; midpoint threshold."""
    distinct = sorted(set(scores.tolist()), reverse=True)
    best_j, best_correct = 0, -1
    for j in range(len(distinct) + 1):
        accepted = set(distinct[:j])
        correct = sum(1 for s, y in zip(scores, labels) if (s in accepted) == bool(y))
        if correct > best_correct:
            best_j, best_correct = j, correct
    if best_j == 0:
        thr = np.nextafter(distinct[0], np.inf)
    elif best_j == len(distinct):
        thr = distinct[-1]
    else:
        thr = (distinct[best_j - 1] + distinct[best_j]) / 2
    return thr, best_correct / len(scores)


def random_pairs(rng, n_gen, n_imp, shift=0.3):
    """Rounded (tied) genuine and impostor scores, shuffled together."""
    gen = np.round(rng.normal(shift, 0.2, n_gen), 2)
    imp = np.round(rng.normal(0.0, 0.2, n_imp), 2)
    scores = np.concatenate([gen, imp])
    labels = np.r_[np.ones(n_gen, bool), np.zeros(n_imp, bool)]
    order = rng.permutation(scores.size)
    return scores[order], labels[order]


# hand-worked set: sorted high to low, G = genuine, I = impostor
#   0.9 G, 0.85 I, 0.8 G, 0.7 I, 0.6 G, 0.5 I, 0.4 I, 0.3 G, 0.2 I, 0.1 I
HAND_GEN = [0.9, 0.8, 0.6, 0.3]
HAND_IMP = [0.85, 0.7, 0.5, 0.4, 0.2, 0.1]
HAND_SCORES = np.array(HAND_GEN + HAND_IMP)
HAND_LABELS = np.array([1] * 4 + [0] * 6)

# ----------------------------------------------------------------------------- ROC


def test_roc_hand_worked():
    far, tar, thr = roc_curve(HAND_SCORES, HAND_LABELS)
    sixth = 1 / 6
    np.testing.assert_allclose(far, [0, 0, sixth, sixth, 2 * sixth, 2 * sixth, 0.5, 4 * sixth, 4 * sixth, 5 * sixth, 1])
    np.testing.assert_allclose(tar, [0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 0.75, 1, 1, 1])
    assert thr[0] == math.inf
    np.testing.assert_allclose(thr[1:], [0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])


def test_roc_ties_move_together():
    far, tar, thr = roc_curve([0.5, 0.5, 0.5, 0.2], [1, 1, 0, 0])
    np.testing.assert_allclose(far, [0, 0.5, 1])
    np.testing.assert_allclose(tar, [0, 1, 1])  # never (0, 0.5): the tie is one step
    np.testing.assert_allclose(thr, [math.inf, 0.5, 0.2])
    assert auc([0.5, 0.5, 0.5, 0.2], [1, 1, 0, 0]) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(6))
def test_roc_and_auc_match_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores, labels = random_pairs(rng, int(rng.integers(1, 40)), int(rng.integers(1, 80)))
    far, tar, thr = roc_curve(scores, labels)
    rfar, rtar, rthr = ref_roc(scores, labels)
    np.testing.assert_allclose(far, rfar)
    np.testing.assert_allclose(tar, rtar)
    np.testing.assert_array_equal(thr, rthr)
    assert auc(scores, labels) == pytest.approx(ref_auc(scores, labels), abs=1e-12)
    # the ROC's trapezoid area is the same number
    assert auc(scores, labels) == pytest.approx(np.trapezoid(tar, far), abs=1e-12)


def test_roc_when_genuine_pairs_outnumber_impostors():
    rng = np.random.default_rng(11)
    scores, labels = random_pairs(rng, 90, 12)
    far, tar, thr = roc_curve(scores, labels)
    rfar, rtar, rthr = ref_roc(scores, labels)
    np.testing.assert_allclose(far, rfar)
    np.testing.assert_allclose(tar, rtar)
    np.testing.assert_array_equal(thr, rthr)
    assert auc(scores, labels) == pytest.approx(ref_auc(scores, labels), abs=1e-12)


def test_inputs_torch_bool_and_lists_agree():
    s = torch.tensor(HAND_SCORES, dtype=torch.float32)
    lab = torch.tensor(HAND_LABELS, dtype=torch.bool)
    far, tar, thr = roc_curve(s, lab)
    rfar, rtar, _ = roc_curve(HAND_SCORES.tolist(), HAND_LABELS.tolist())
    np.testing.assert_allclose(far, rfar)
    np.testing.assert_allclose(tar, rtar)
    assert thr.dtype == np.float64
    assert isinstance(auc(s, lab), float)
    assert auc(s.to(torch.bfloat16), lab) == pytest.approx(auc(HAND_SCORES, HAND_LABELS), abs=0.1)


# ----------------------------------------------------------------------------- TAR @ FAR


def test_tar_at_far_hand_worked():
    # FAR <= 0.2: points with FAR 0 or 1/6; best TAR 0.5 (accept 0.9, 0.85, 0.8)
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 0.2) == 0.5
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 0.2, mode="nearest") == 0.5
    assert threshold_at_far(HAND_SCORES, HAND_LABELS, 0.2) == 0.8
    # FAR 0.3: conservative stays at FAR 1/6 (TAR 0.5); nearest jumps to FAR 1/3 (TAR 0.75)
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 0.3) == 0.5
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 0.3, mode="nearest") == 0.75
    assert threshold_at_far(HAND_SCORES, HAND_LABELS, 0.3, mode="nearest") == 0.6
    # FAR 0.25 lies exactly between 1/6 and 1/3: the tie goes to the lower FAR
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 0.25, mode="nearest") == 0.5
    # FAR 0: only 0.9 is above every impostor
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 0.0) == 0.25
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 1.0) == 1.0
    out = tar_at_far(HAND_SCORES, HAND_LABELS, [0.0, 0.3, 1.0])
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [0.25, 0.5, 1.0])


def test_tar_at_far_decimal_targets_are_exact():
    # 1000 impostors 0.000 .. 0.999; genuines above 0, 1 and 2 impostors: FAR 1e-3 allows one
    imp = np.arange(1000) / 1000.0
    gen = np.array([2.0, 0.9985, 0.9975])
    scores = np.r_[gen, imp]
    labels = np.r_[np.ones(3), np.zeros(1000)]
    assert tar_at_far(scores, labels, 1e-3) == pytest.approx(2 / 3)
    assert tar_at_far(scores, labels, 0.0) == pytest.approx(1 / 3)
    # 0.57 * 100 is 56.99999... in binary; 57 of 100 false accepts must still be allowed
    imp = np.arange(100)[::-1] / 100.0
    gen = imp[:57] - 0.001  # the k-th genuine has k impostors above it
    s = np.r_[gen, imp]
    lab = np.r_[np.ones(57), np.zeros(100)]
    assert tar_at_far(s, lab, 0.57) == 1.0
    assert tar_at_far(s, lab, 0.56) == pytest.approx(56 / 57)


@pytest.mark.parametrize("seed", range(6))
def test_tar_at_far_matches_reference(seed):
    rng = np.random.default_rng(100 + seed)
    scores, labels = random_pairs(rng, 30, 70)
    for x in (0.0, 0.01, 0.05, 0.1, 0.137, 0.3, 0.5, 1.0):
        assert tar_at_far(scores, labels, x) == pytest.approx(ref_tar_conservative(scores, labels, x))
        near = tar_at_far(scores, labels, x, mode="nearest")
        assert near == pytest.approx(ref_tar_nearest(scores, labels, x))
        assert near >= tar_at_far(scores, labels, x)
        # the conservative threshold really achieves FAR <= x and that TAR on the data
        t = threshold_at_far(scores, labels, x)
        assert np.mean(scores[~labels] >= t) <= x + 1e-12
        assert np.mean(scores[labels] >= t) == pytest.approx(tar_at_far(scores, labels, x))


def test_report_reuses_one_roc():
    rng = np.random.default_rng(7)
    scores, labels = random_pairs(rng, 50, 200)
    rep = verification_report(scores, labels, fars=(1e-3, 0.1))
    assert rep["n_genuine"] == 50 and rep["n_impostor"] == 200
    assert rep["auc"] == pytest.approx(auc(scores, labels))
    assert rep["eer"] == pytest.approx(eer(scores, labels)[0])
    assert rep["tar_at_far"]["0.1"] == tar_at_far(scores, labels, 0.1)
    assert rep["tar_at_far_nearest"]["0.001"] == tar_at_far(scores, labels, 1e-3, mode="nearest")
    rc = roc_counts(scores, labels)
    assert tar_at_far(rc, None, 0.1) == rep["tar_at_far"]["0.1"]


def test_report_warns_about_unresolvable_far(caplog):
    with caplog.at_level("WARNING", logger="hfr.metrics"):
        rep = verification_report(HAND_SCORES, HAND_LABELS, fars=(0.01,))
    assert rep["tar_at_far"] == {"0.01": 0.25}
    assert "below 1 / 6 impostor pairs" in caplog.text


# ----------------------------------------------------------------------------- EER


def test_eer_hand_worked():
    # crossing between (FAR 1/3, FRR 1/2) and (FAR 1/3, FRR 1/4): the latter is closer
    e, thr = eer(HAND_SCORES, HAND_LABELS)
    assert e == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert thr == 0.6


@pytest.mark.parametrize("seed", range(6))
def test_eer_matches_reference(seed):
    rng = np.random.default_rng(200 + seed)
    scores, labels = random_pairs(rng, int(rng.integers(2, 40)), int(rng.integers(2, 90)), shift=0.2)
    e, thr = eer(scores, labels)
    re, rthr = ref_eer(scores, labels)
    assert e == pytest.approx(re)
    assert thr == rthr


def test_edge_cases_perfect_reversed_equal():
    gen, imp = [0.9, 0.8, 0.7], [0.1, 0.2]
    s, lab = gen + imp, [1, 1, 1, 0, 0]
    assert eer(s, lab) == (0.0, 0.7)
    assert auc(s, lab) == 1.0
    assert tar_at_far(s, lab, 0.0) == 1.0
    # reversed: every genuine below every impostor
    s_rev = [-x for x in s]
    assert auc(s_rev, lab) == 0.0
    assert eer(s_rev, lab)[0] == 1.0
    assert tar_at_far(s_rev, lab, 0.0) == 0.0
    assert tar_at_far(s_rev, lab, 0.5) == 0.0
    # all equal: one step from (0, 0) to (1, 1)
    eq = [0.4] * 5
    far, tar, thr = roc_curve(eq, lab)
    np.testing.assert_array_equal(far, [0, 1])
    np.testing.assert_array_equal(tar, [0, 1])
    assert auc(eq, lab) == 0.5
    assert eer(eq, lab) == (0.5, 0.4)
    assert tar_at_far(eq, lab, 0.99) == 0.0
    assert tar_at_far(eq, lab, 0.5, mode="nearest") == 0.0  # FAR 0 and 1 tie: lower wins


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([0.1, 0.2], [0, 0], "no genuine"),
        ([0.1, 0.2], [1, True], "no impostor"),
        ([0.1, 0.2, 0.3], [1, 0], "same shape"),
        ([0.1, float("nan")], [1, 0], "NaN"),
        ([0.1, float("inf")], [1, 0], "infinite"),
        ([0.1, 0.2], [1, 2], "1 \\(genuine\\)"),
        ([], [], "no genuine"),
    ],
)
def test_bad_verification_input(scores, labels, match):
    with pytest.raises(MetricError, match=match):
        roc_curve(scores, labels)


def test_bad_options():
    with pytest.raises(MetricError, match="mode"):
        tar_at_far(HAND_SCORES, HAND_LABELS, 0.1, mode="interp")
    with pytest.raises(MetricError, match=r"\[0, 1\]"):
        tar_at_far(HAND_SCORES, HAND_LABELS, 1.5)
    with pytest.raises(MetricError, match=r"\[0, 1\]"):
        tar_at_far(HAND_SCORES, HAND_LABELS, [0.1, float("nan")])
    with pytest.raises(MetricError, match="labels=None"):
        auc(roc_counts(HAND_SCORES, HAND_LABELS), HAND_LABELS)


def test_metric_errors_are_library_errors_not_cli_options():
    with pytest.raises(MetricError) as err:
        roc_curve([0.1, 0.2], [0, 0])
    # a library error: catchable as ArgumentError and HFRError (the CLI exits 2), never an OptionError
    assert isinstance(err.value, ArgumentError) and isinstance(err.value, HFRError)
    assert not isinstance(err.value, OptionError)


# ----------------------------------------------------------------------------- identification


def test_cmc_hand_worked_with_ties_and_multiple_images():
    gallery = ["a", "a", "b", "c"]
    probes = ["a", "b", "c"]
    sim = np.array(
        [
            [0.2, 0.9, 0.5, 0.9],  # a: best 0.9, ties with c -> rank 2 (pessimistic)
            [0.1, 0.3, 0.8, 0.2],  # b: rank 1
            [0.7, 0.6, 0.4, 0.1],
        ]
    )  # c: a 0.7, b 0.4 above -> rank 3
    np.testing.assert_array_equal(subject_ranks(sim, probes, gallery), [2, 1, 3])
    np.testing.assert_allclose(cmc(sim, probes, gallery), [1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(cmc(sim, probes, gallery, max_rank=5), [1 / 3, 2 / 3, 1, 1, 1])
    assert rank_k(sim, probes, gallery) == pytest.approx(1 / 3)
    assert rank_k(sim, probes, gallery, k=2) == pytest.approx(2 / 3)
    # a second image of subject a above everything only helps probe a (subject counted once)
    sim2 = np.c_[sim, [0.95, 0.0, 0.0]]
    np.testing.assert_array_equal(subject_ranks(sim2, probes, gallery + ["a"]), [1, 1, 3])


@pytest.mark.parametrize("seed", range(5))
def test_cmc_matches_reference(seed):
    rng = np.random.default_rng(300 + seed)
    n_sub = int(rng.integers(2, 9))
    gallery = rng.integers(0, n_sub, 25)
    gallery[:n_sub] = np.arange(n_sub)  # every subject present
    probes = rng.integers(0, n_sub, 17)
    sim = np.round(rng.uniform(-1, 1, (17, 25)), 1)  # coarse: many ties
    ranks = ref_ranks(sim, probes, gallery)
    np.testing.assert_array_equal(subject_ranks(sim, probes, gallery), ranks)
    curve = cmc(sim, probes, gallery)
    assert curve.shape == (n_sub,) and curve[-1] == 1.0
    np.testing.assert_allclose(curve, [(ranks <= k).mean() for k in range(1, n_sub + 1)])
    t = torch.tensor(sim, dtype=torch.float32)
    assert rank_k(t, torch.tensor(probes), torch.tensor(gallery)) == pytest.approx(
        rank_k(sim.astype(np.float32), probes, gallery)
    )


def test_cmc_open_set_options():
    gallery = [1, 2]
    probes = [1, 3, 2]
    sim = np.array([[0.9, 0.1], [0.5, 0.6], [0.8, 0.3]])
    with pytest.raises(MetricError, match="absent from the gallery.*probe 1"):
        cmc(sim, probes, gallery)
    np.testing.assert_allclose(cmc(sim, probes, gallery, open_set="ignore"), [0.5, 1.0])
    np.testing.assert_allclose(cmc(sim, probes, gallery, open_set="miss", max_rank=4), [1 / 3, 2 / 3, 2 / 3, 2 / 3])
    with pytest.raises(MetricError, match="open_set"):
        cmc(sim, probes, gallery, open_set="drop")
    with pytest.raises(MetricError, match="nothing to rank"):
        cmc(sim[1:2], [3], gallery, open_set="miss")


def test_cmc_masked_pairs_and_bad_input():
    sim = np.array([[-np.inf, 0.2, 0.1], [0.3, -np.inf, 0.4]])
    np.testing.assert_array_equal(subject_ranks(sim, [0, 1], [0, 1, 2]), [3, 3])
    with pytest.raises(MetricError, match="shape"):
        cmc(np.zeros((2, 3)), [0, 1], [0, 1])
    with pytest.raises(MetricError, match="NaN"):
        cmc(np.array([[np.nan, 0.0]]), [0], [0, 1])
    with pytest.raises(MetricError, match="different kinds"):
        cmc(np.zeros((1, 2)), ["0"], [0, 1])
    with pytest.raises(MetricError, match="max_rank"):
        cmc(np.zeros((1, 2)), [0], [0, 1], max_rank=0)
    with pytest.raises(MetricError, match="k must"):
        rank_k(np.zeros((1, 2)), [0], [0, 1], k=0)


def test_similarity_matrix_is_cosine():
    rng = np.random.default_rng(5)
    p, g = rng.normal(size=(4, 8)), rng.normal(size=(6, 8))
    sim = similarity_matrix(p, g)
    for i in range(4):
        for j in range(6):
            cos = p[i] @ g[j] / (np.linalg.norm(p[i]) * np.linalg.norm(g[j]))
            assert sim[i, j] == pytest.approx(cos)
    np.testing.assert_allclose(similarity_matrix(3 * p, p).diagonal(), 1.0)
    np.testing.assert_allclose(similarity_matrix(torch.tensor(p), torch.tensor(g)), sim)
    with pytest.raises(MetricError, match="row 2 is a zero vector"):
        similarity_matrix(np.r_[p[:2], np.zeros((1, 8))], g)
    with pytest.raises(MetricError, match="dimension 8 but gallery features 5"):
        similarity_matrix(p, g[:, :5])
    with pytest.raises(MetricError, match="2-D"):
        similarity_matrix(p[0], g)


def test_pair_scores_from_labels():
    sim = np.arange(6.0).reshape(2, 3)
    scores, labels = pair_scores_from_labels(sim, ["x", "y"], ["y", "x", "y"])
    np.testing.assert_array_equal(scores, [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(labels, [False, True, False, True, False, True])
    assert labels.dtype == bool


# ----------------------------------------------------------------------------- k-fold accuracy


def test_verification_accuracy_hand_worked():
    # fold 0: G 0.9 0.75, I 0.3 0.5; fold 1: G 0.6 0.8, I 0.65 0.1
    scores = [0.9, 0.75, 0.3, 0.5, 0.6, 0.8, 0.65, 0.1]
    labels = [1, 1, 0, 0, 1, 1, 0, 0]
    res = verification_accuracy(scores, labels, folds=None, n_folds=2)
    # threshold for fold 0 from fold 1: cuts after 0.8 and after 0.6 both give 3/4; the higher
    # wins, midpoint (0.8 + 0.65) / 2 = 0.725 -> fold 0 all correct.
    # threshold for fold 1 from fold 0: (0.75 + 0.5) / 2 = 0.625 -> 0.6 G and 0.65 I wrong.
    np.testing.assert_allclose(res["thresholds"], [0.725, 0.625])
    np.testing.assert_allclose(res["accuracies"], [1.0, 0.5])
    assert res["mean"] == pytest.approx(0.75)
    assert res["std"] == pytest.approx(math.sqrt(2 * 0.25**2))  # ddof = 1
    assert res["sem"] == pytest.approx(0.25)
    assert res["std_population"] == pytest.approx(0.25)
    same = verification_accuracy(scores, labels, folds=["f1"] * 4 + ["f2"] * 4, n_folds=2)
    np.testing.assert_allclose(same["accuracies"], res["accuracies"])
    as_torch = verification_accuracy(torch.tensor(scores), torch.tensor(labels), n_folds=2)
    np.testing.assert_allclose(as_torch["thresholds"], res["thresholds"])


@pytest.mark.parametrize("seed", range(3))
def test_verification_accuracy_matches_reference(seed):
    rng = np.random.default_rng(400 + seed)
    scores, labels = random_pairs(rng, 60, 60, shift=0.25)
    folds = rng.integers(0, 10, scores.size)
    folds[:10] = np.arange(10)
    res = verification_accuracy(scores, labels, folds)
    for k in range(10):
        train, test = folds != k, folds == k
        thr, train_acc = ref_best_cut(scores[train], labels[train])
        assert res["thresholds"][k] == pytest.approx(thr)
        assert best_threshold(scores[train], labels[train])[1] == pytest.approx(train_acc)
        assert res["accuracies"][k] == pytest.approx(np.mean((scores[test] >= thr) == labels[test]))
    assert res["mean"] == pytest.approx(res["accuracies"].mean())
    assert res["sem"] == pytest.approx(np.std(res["accuracies"], ddof=1) / math.sqrt(10))


def test_best_threshold_edges_and_bad_folds():
    assert best_threshold([0.9, 0.8, 0.1], [1, 1, 0]) == (pytest.approx(0.45), 1.0)
    thr, acc = best_threshold([0.9, 0.8], [0, 0])  # accept nothing
    assert thr > 0.9 and acc == 1.0
    assert best_threshold([0.9, 0.8], [1, 1]) == (0.8, 1.0)  # accept everything
    # adjacent floats: the midpoint cannot fall onto the rejected score
    lo = 0.5
    hi = float(np.nextafter(lo, 1.0))
    thr, acc = best_threshold([hi, lo], [1, 0])
    assert acc == 1.0 and lo < thr <= hi
    with pytest.raises(MetricError, match="n_folds"):
        verification_accuracy([0.1, 0.2], [1, 0], n_folds=1)
    with pytest.raises(MetricError, match="2 distinct fold"):
        verification_accuracy([0.1, 0.2, 0.3], [1, 0, 1], folds=[0, 1, 1], n_folds=3)
    with pytest.raises(MetricError, match="one fold per pair"):
        verification_accuracy([0.1, 0.2, 0.3], [1, 0, 1], folds=[0, 1], n_folds=2)
    with pytest.raises(MetricError, match="cannot be split"):
        verification_accuracy([0.1, 0.2, 0.3], [1, 0, 1], n_folds=10)
