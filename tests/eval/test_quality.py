"""Generated-face quality metrics on hand cases whose answers follow from the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hfr.errors import ArgumentError
from hfr.eval.quality import (
    frechet_distance,
    genuine_impostor_scores,
    l1,
    nearest_identity_distance,
    psnr,
    rank1,
    ssim,
    verification_summary,
    within_identity_distance,
    yaw_errors,
)

# ----------------------------------------------------------------------------- l1 / psnr


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two images (N=2, C=2, 2x2): image 0 differs by 0.1..0.4 per pixel in channel 0 only,
    image 1 by 0.5 everywhere."""
    a = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    b = a.clone()
    b[0, 0] = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    b[1] = 0.5
    return a, b


def test_l1_per_image_mean():
    a, b = _pair()
    out = l1(a, b)
    # image 0: (0.1 + 0.2 + 0.3 + 0.4) / 8 values; image 1: 0.5
    assert out.shape == (2,)
    assert out.tolist() == pytest.approx([1.0 / 8, 0.5])
    assert l1(b, a).tolist() == pytest.approx(out.tolist())


def test_l1_mask_selects_pixels_and_empty_mask_is_nan():
    a, b = _pair()
    mask = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    mask[0, 0, 1, :] = True  # pixels 0.3 and 0.4 in channel 0, 0 in channel 1
    out = l1(a, b, mask)
    assert out[0].item() == pytest.approx((0.3 + 0.4) / 4)
    assert math.isnan(out[1].item())
    same = l1(a, b, mask.to(torch.float32))
    assert same[0].item() == pytest.approx(out[0].item())


def test_l1_float32_images():
    a = torch.full((1, 3, 4, 4), 0.25)
    b = torch.full((1, 3, 4, 4), 0.75)
    assert l1(a, b).item() == pytest.approx(0.5)


@pytest.mark.parametrize(
    "a, b, mask, words",
    [
        (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3), None, "same shape"),
        (torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), None, "(N, C, H, W)"),
        (torch.zeros(0, 1, 2, 2), torch.zeros(0, 1, 2, 2), None, "empty"),
        (torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2), "mask"),
        (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5), "0/1"),
        (np.zeros((1, 1, 2, 2)), torch.zeros(1, 1, 2, 2), None, "torch tensor"),
    ],
)
def test_image_metrics_reject_bad_arguments(a, b, mask, words):
    for fn in (l1, psnr, ssim):
        with pytest.raises(ArgumentError, match=words.replace("(", r"\(").replace(")", r"\)")):
            fn(a, b, mask)


def test_psnr_from_mse():
    a = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    b = torch.full_like(a, 0.1)  # MSE 0.01
    b[1] = 0.5  # MSE 0.25
    expected = [10 * math.log10(1 / 0.01), 10 * math.log10(1 / 0.25)]
    assert psnr(a, b).tolist() == pytest.approx(expected)
    assert psnr(a, b, max_val=2.0).tolist() == pytest.approx([10 * math.log10(4 / 0.01), 10 * math.log10(4 / 0.25)])


def test_psnr_identical_is_inf_and_mask_ignores_other_pixels():
    a = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert psnr(a, a.clone()).tolist() == [math.inf, math.inf]
    b = a.clone()
    mask = torch.zeros(2, 1, 5, 5, dtype=torch.bool)
    mask[:, :, :2] = True
    b[:, :, :2] += 0.05  # inside the mask: MSE 0.0025
    b[:, :, 2:] = 1 - b[:, :, 2:]  # large errors outside the mask
    assert psnr(a, b, mask).tolist() == pytest.approx([10 * math.log10(1 / 0.0025)] * 2)
    mask[1] = False
    assert math.isnan(psnr(a, b, mask)[1].item())


@pytest.mark.parametrize("max_val", [0, -1.0, math.inf, "1"])
def test_psnr_rejects_bad_max_val(max_val):
    with pytest.raises(ArgumentError, match="max_val"):
        psnr(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), max_val=max_val)


# ----------------------------------------------------------------------------- ssim


def _naive_ssim_map(x: np.ndarray, y: np.ndarray, window: int, data_range: float = 1.0) -> np.ndarray:
    """SSIM map of two gray images, pixel by pixel with explicit weighted sums (centred moments)."""
    r = window // 2
    t = np.arange(window) - r
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()
    xp = np.pad(x, r, mode="symmetric")
    yp = np.pad(y, r, mode="symmetric")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            px = xp[i : i + window, j : j + window]
            py = yp[i : i + window, j : j + window]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            out[i, j] = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return out


def _gray_pair(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((h, w))
    y = np.clip(0.6 * x + 0.4 * rng.random((h, w)), 0, 1)  # correlated with x
    return x, y


def _t(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)[:, None])


def test_ssim_identical_images_is_one():
    a = torch.rand(3, 3, 16, 12, generator=torch.Generator().manual_seed(1))
    assert ssim(a, a.clone()).tolist() == pytest.approx([1.0] * 3, abs=1e-5)
    assert ssim(a, a.clone(), window=7).tolist() == pytest.approx([1.0] * 3, abs=1e-5)


@pytest.mark.parametrize("window", [7, 11])
def test_ssim_constant_images_is_the_luminance_term(window):
    c1 = 0.01**2
    a = torch.full((2, 1, 9, 9), 0.2, dtype=torch.float64)
    b = torch.full_like(a, 0.6)
    b[1] = 0.2
    # no variance: the structure term is C2 / C2 = 1
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert ssim(a, b, window=window).tolist() == pytest.approx([expected, 1.0])


@pytest.mark.parametrize("h, w, window", [(9, 8, 7), (10, 12, 11), (5, 4, 11)])
def test_ssim_matches_a_pixel_by_pixel_reference(h, w, window):
    x0, y0 = _gray_pair(h, w, seed=h * w)
    x1, y1 = _gray_pair(h, w, seed=h * w + 1)
    ref0, ref1 = _naive_ssim_map(x0, y0, window), _naive_ssim_map(x1, y1, window)
    a, b = _t(x0, x1), _t(y0, y1)
    assert ssim(a, b, window=window).tolist() == pytest.approx([ref0.mean(), ref1.mean()], abs=1e-10)
    assert ssim(b, a, window=window).tolist() == pytest.approx([ref0.mean(), ref1.mean()], abs=1e-10)
    # a one-pixel mask reads the map at that pixel; a border mask averages the border only
    one = torch.zeros(2, 1, h, w, dtype=torch.bool)
    one[0, 0, h // 2, w // 3] = True
    one[1, 0, 0, w - 1] = True
    assert ssim(a, b, one, window=window).tolist() == pytest.approx([ref0[h // 2, w // 3], ref1[0, w - 1]], abs=1e-10)
    border = torch.ones(2, 1, h, w, dtype=torch.bool)
    border[:, :, 1:-1, 1:-1] = False
    sel = border[0, 0].numpy()
    assert ssim(a, b, border, window=window).tolist() == pytest.approx([ref0[sel].mean(), ref1[sel].mean()], abs=1e-10)


def test_ssim_converts_rgb_with_bt601_weights():
    rng = np.random.default_rng(5)
    rgb_a = rng.random((3, 12, 12))
    rgb_b = np.clip(rgb_a + 0.2 * rng.standard_normal((3, 12, 12)), 0, 1)
    wts = np.array([0.299, 0.587, 0.114])[:, None, None]
    gray_a, gray_b = (wts * rgb_a).sum(0), (wts * rgb_b).sum(0)
    expected = _naive_ssim_map(gray_a, gray_b, 11).mean()
    out = ssim(torch.from_numpy(rgb_a[None]), torch.from_numpy(rgb_b[None]))
    assert out.item() == pytest.approx(expected, abs=1e-6)
    # the channels are not interchangeable: swapping R and B changes the gray image
    swapped = ssim(torch.from_numpy(rgb_a[None, ::-1].copy()), torch.from_numpy(rgb_b[None, ::-1].copy()))
    assert swapped.item() != pytest.approx(expected, abs=1e-4)


def test_ssim_data_range_scales_the_constants():
    x, y = _gray_pair(10, 10, seed=3)
    expected = _naive_ssim_map(255 * x, 255 * y, 7, data_range=255.0).mean()
    out = ssim(_t(255 * x), _t(255 * y), window=7, data_range=255.0)
    assert out.item() == pytest.approx(expected, abs=1e-10)
    assert out.item() == pytest.approx(ssim(_t(x), _t(y), window=7).item(), abs=1e-10)


def test_ssim_matches_scikit_image_away_from_borders():
    metrics = pytest.importorskip("skimage.metrics")
    x, y = _gray_pair(32, 28, seed=11)
    mssim, smap = metrics.structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, full=True
    )
    pad = 5  # skimage's window for sigma 1.5 is 11 taps and its mean leaves out 5 border pixels
    interior = torch.zeros(1, 1, 32, 28, dtype=torch.bool)
    interior[:, :, pad:-pad, pad:-pad] = True
    assert ssim(_t(x), _t(y), interior).item() == pytest.approx(float(mssim), abs=1e-6)
    assert ssim(_t(x), _t(y), interior).item() == pytest.approx(float(smap[pad:-pad, pad:-pad].mean()), abs=1e-6)


@pytest.mark.parametrize(
    "kwargs, words", [({"window": 8}, "window"), ({"window": 1}, "window"), ({"data_range": 0}, "data_range")]
)
def test_ssim_rejects_bad_options(kwargs, words):
    a = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ArgumentError, match=words):
        ssim(a, a, **kwargs)


def test_ssim_rejects_two_channel_images():
    a = torch.zeros(1, 2, 8, 8)
    with pytest.raises(ArgumentError, match="channels"):
        ssim(a, a)


# ----------------------------------------------------------------------------- frechet distance


def test_frechet_same_set_is_zero():
    f = np.random.default_rng(0).standard_normal((50, 6))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(torch.from_numpy(f).float(), f) == pytest.approx(0.0, abs=1e-4)


def _axis_cross(mu: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Points mu +- spread[k] e_k: mean exactly mu, sample covariance (ddof 1) exactly diag(2 spread^2 / (2D - 1))."""
    d = mu.size
    rows = []
    for k in range(d):
        for sign in (1.0, -1.0):
            p = mu.copy()
            p[k] += sign * spread[k]
            rows.append(p)
    return np.array(rows)


def test_frechet_exact_on_constructed_features():
    mu_a, mu_b = np.array([1.0, 0.0, -2.0]), np.array([0.0, 0.5, -2.0])
    sp_a, sp_b = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    var_a, var_b = 2 * sp_a**2 / 5, 2 * sp_b**2 / 5  # 2D - 1 = 5
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    fa, fb = _axis_cross(mu_a, sp_a), _axis_cross(mu_b, sp_b)
    assert frechet_distance(fa, fb) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(fb, fa) == pytest.approx(expected, rel=1e-12)
    # rotating both sets the same way leaves the distance alone (non-diagonal covariances)
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((3, 3)))
    assert frechet_distance(fa @ q, fb @ q) == pytest.approx(expected, rel=1e-9)


def test_frechet_two_dimensional_closed_form():
    # for 2x2 PSD S_a, S_b: Tr sqrt(S_a S_b) = sqrt(tr(S_a S_b) + 2 sqrt(det S_a det S_b))
    rng = np.random.default_rng(4)
    fa = rng.standard_normal((40, 2)) @ np.array([[2.0, 0.7], [0.0, 0.5]])
    fb = rng.standard_normal((30, 2)) @ np.array([[0.3, -1.0], [1.2, 0.4]]) + np.array([1.0, -1.0])
    sa = (fa - fa.mean(0)).T @ (fa - fa.mean(0)) / (len(fa) - 1)
    sb = (fb - fb.mean(0)).T @ (fb - fb.mean(0)) / (len(fb) - 1)
    tr_sqrt = math.sqrt(np.trace(sa @ sb) + 2 * math.sqrt(np.linalg.det(sa) * np.linalg.det(sb)))
    d = fa.mean(0) - fb.mean(0)
    expected = d @ d + np.trace(sa) + np.trace(sb) - 2 * tr_sqrt
    assert frechet_distance(fa, fb) == pytest.approx(expected, rel=1e-10)


def test_frechet_sampled_gaussians_near_closed_form():
    rng = np.random.default_rng(7)
    mu_a, mu_b = np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, -0.5])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([2.25, 1.0, 1.0])
    fa = mu_a + np.sqrt(var_a) * rng.standard_normal((20000, 3))
    fb = mu_b + np.sqrt(var_b) * rng.standard_normal((20000, 3))
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()  # 2.75
    assert frechet_distance(fa, fb) == pytest.approx(expected, abs=0.1)


def test_frechet_singular_covariances_fewer_samples_than_dimensions():
    f = np.random.default_rng(9).standard_normal((5, 20))
    shift = np.linspace(-1, 1, 20)
    # same covariance, means apart by shift: the trace part cancels
    assert frechet_distance(f, f + shift) == pytest.approx(float(shift @ shift), abs=1e-6)
    assert frechet_distance(f, f) >= 0.0


@pytest.mark.parametrize(
    "fa, fb, words",
    [
        (np.zeros((1, 3)), np.zeros((4, 3)), "feats_a"),
        (np.zeros((4, 3)), np.zeros((4, 2)), "dimensions"),
        (np.zeros(4), np.zeros((4, 1)), "feats_a"),
        (np.zeros((4, 2)), np.full((4, 2), np.nan), "feats_b"),
    ],
)
def test_frechet_rejects_bad_arguments(fa, fb, words):
    with pytest.raises(ArgumentError, match=words):
        frechet_distance(fa, fb)


# ----------------------------------------------------------------------------- verification


def test_genuine_impostor_scores_within_one_set():
    feats = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    scores, same = genuine_impostor_scores(feats, ["a", "a", "b", "b"])
    # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    r = 1 / math.sqrt(2)
    assert scores.tolist() == pytest.approx([1.0, 0.0, r, 0.0, r, r])
    assert same.tolist() == [True, False, False, False, False, True]
    assert same.dtype == bool


def test_genuine_impostor_scores_cross_sets_row_major():
    fa = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    fb = np.array([[0.0, 5.0], [-1.0, 0.0], [3.0, 4.0]])
    scores, same = genuine_impostor_scores(fa, [1, 2], fb, [2, 1, 2])
    r = 1 / math.sqrt(2)
    assert scores.tolist() == pytest.approx([0.0, -1.0, 0.6, r, -r, 0.7 * math.sqrt(2)])
    assert same.tolist() == [False, True, False, True, False, True]


@pytest.mark.parametrize(
    "args, words",
    [
        ((np.eye(2), [0, 1], np.eye(2), None), "feats_b and labels_b"),
        ((np.array([[1.0, 0.0], [0.0, 0.0]]), [0, 1]), "zero vector"),
        ((np.eye(3), [0, 1]), "labels"),
        ((np.eye(2), [0, 1], np.eye(3), [0, 1, 2]), "dimensions"),
        ((np.eye(2)[:1], [0]), "at least 2"),
    ],
)
def test_genuine_impostor_scores_rejects_bad_arguments(args, words):
    with pytest.raises(ArgumentError, match=words):
        genuine_impostor_scores(*args)


def test_verification_summary_perfect_separation():
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.3])
    same = np.array([True, False, True, False, False])
    out = verification_summary(scores, same)
    assert out == {
        "auc": 1.0,
        "tar@far=0.01": 1.0,
        "genuine_mean": pytest.approx(0.85),
        "impostor_mean": pytest.approx(0.2),
        "n_genuine": 2,
        "n_impostor": 3,
    }


def test_verification_summary_ties_and_a_hand_ranked_case():
    tied = verification_summary(np.full(6, 0.4), [1, 0, 1, 0, 0, 0])
    assert tied["auc"] == 0.5
    assert tied["tar@far=0.01"] == 0.0  # accepting anything accepts every impostor
    assert tied["genuine_mean"] == tied["impostor_mean"] == pytest.approx(0.4)
    # genuine 0.9, 0.5 / impostor 0.6, 0.1: 3 of 4 genuine-impostor pairs ordered right
    mixed = verification_summary([0.9, 0.6, 0.5, 0.1], [True, False, True, False], far=0.5)
    assert mixed["auc"] == 0.75
    assert mixed["tar@far=0.5"] == 1.0  # threshold 0.5 accepts both genuine, one impostor
    assert "tar@far=0.001" in verification_summary([0.9, 0.1], [1, 0], far=1e-3)


# ----------------------------------------------------------------------------- identification


def test_rank1_counts_ties_against_the_probe():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0]])
    probes = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 1.0], [0.2, 3.0]])
    # probe 0 -> a (right), probe 1 -> b but is a (wrong), probe 2 ties a / b (counts against), probe 3 -> b (right)
    assert rank1(probes, ["a", "a", "b", "b"], gallery, ["a", "b"]) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- yaw


def test_yaw_errors_hand_case():
    bins = [-60, -45, -30, -15, 0, 15, 30, 45, 60]
    out = yaw_errors([0.0, 14.0, -40.0, 50.0], np.array([0.0, 15.0, -30.0, 60.0]), bins)
    # bins: 0/0, 15/15 right; -45/-30, 45/60 wrong
    assert out == {"mae": pytest.approx((0 + 1 + 10 + 10) / 4), "bin_accuracy": 0.5, "n": 4}


def test_yaw_errors_tie_goes_to_the_first_listed_bin():
    assert yaw_errors([7.5], [0.0], [0.0, 15.0])["bin_accuracy"] == 1.0
    assert yaw_errors([7.5], [0.0], [15.0, 0.0])["bin_accuracy"] == 0.0
    assert yaw_errors(torch.tensor([-20.0]), torch.tensor([20.0]), [0.0])["mae"] == pytest.approx(40.0)


@pytest.mark.parametrize(
    "est, tgt, bins, words",
    [
        ([1.0, 2.0], [1.0], [0.0], "one target"),
        ([1.0], [1.0], [], "bins"),
        ([[1.0]], [1.0], [0.0], "estimated"),
        ([float("nan")], [1.0], [0.0], "NaN"),
    ],
)
def test_yaw_errors_rejects_bad_arguments(est, tgt, bins, words):
    with pytest.raises(ArgumentError, match=words):
        yaw_errors(est, tgt, bins)


# ----------------------------------------------------------------------------- novelty


def test_nearest_identity_distance_uses_normalised_identity_centres():
    ref = np.array([[10.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 5.0]])
    labels = ["A", "A", "B", "B"]
    # centre of A is (1, 1, 0) / sqrt 2 whatever the feature lengths; centre of B is e3
    queries = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    out = nearest_identity_distance(queries, ref, labels)
    r = 1 / math.sqrt(2)
    assert out.tolist() == pytest.approx([1 - r, 1.0, 0.0, 1 - r])


def test_nearest_identity_distance_rejects_cancelling_identity_and_bad_shapes():
    with pytest.raises(ArgumentError, match="cancel"):
        nearest_identity_distance(np.eye(2), np.array([[1.0, 0.0], [-1.0, 0.0]]), [0, 0])
    with pytest.raises(ArgumentError, match="dimensions"):
        nearest_identity_distance(np.eye(3), np.eye(2), [0, 1])
    with pytest.raises(ArgumentError, match="reference_labels"):
        nearest_identity_distance(np.eye(2), np.eye(2), [0, 1, 2])


def test_within_identity_distance_one_value_per_identity_in_label_order():
    feats = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 0.0], [0.0, 1.0]])
    labels = ["b", "a", "b", "a", "c", "a", "d"]
    # a: (1,0), (0,2), (-1,0): distances 1, 2, 1 -> 4/3; b: (1,0), (1,1): 1 - 1/sqrt 2; c, d: one image
    out = within_identity_distance(feats, labels)
    assert out.tolist() == pytest.approx([4 / 3, 1 - 1 / math.sqrt(2)])


def test_within_identity_distance_needs_an_identity_with_two_images():
    with pytest.raises(ArgumentError, match="two or more"):
        within_identity_distance(np.eye(3), [0, 1, 2])
    with pytest.raises(ArgumentError, match="feats"):
        within_identity_distance(np.zeros((0, 3)), [])


def test_generated_identity_novelty_comparison():
    # two real subjects photographed twice each; a generated face orthogonal to both is new
    real = np.array([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [0.0, 1.0, 0.1], [0.0, 1.0, -0.1]])
    labels = [0, 0, 1, 1]
    generated = np.array([[0.0, 0.0, 1.0]])
    within = within_identity_distance(real, labels)
    nearest = nearest_identity_distance(generated, real, labels)
    assert nearest.min() > within.max()
    # a copy of a training image is not new
    assert nearest_identity_distance(real[:1], real, labels)[0] < within.max()
