"""The fast path's per-sample maps against the losses written out independently.

The maps avoid numpy's slow kernels (``logaddexp``, ``where`` on a random mask) with
equivalent formulas; these tests compare them with scipy's and numpy's reference
functions, over predictors from -800 to 800 (where e^eta overflows), with no warning.
"""

import warnings

import numpy as np
import pytest
from scipy.special import expit

from fgsm_cvx.families import Binomial, Gaussian, Hinge, Huber, Poisson
from fgsm_cvx.fast.model import _per_sample
from fgsm_cvx.fast.objective import adversarial_terms


def _etas(rng, n=400):
    return np.concatenate([rng.standard_normal(n) * 5.0, [-800.0, -40.0, 0.0, 40.0, 800.0]])


def test_logistic_loss_equals_logaddexp_without_overflow():
    rng = np.random.default_rng(0)
    eta = _etas(rng)
    y = (rng.random(eta.shape[0]) < 0.5).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = Binomial().loss(y, eta)
    np.testing.assert_allclose(got, np.logaddexp(0.0, eta) - y * eta, rtol=1e-13, atol=1e-300)


def test_huber_loss_equals_its_two_pieces():
    rng = np.random.default_rng(1)
    y, eta = rng.standard_normal(500) * 3.0, rng.standard_normal(500) * 3.0
    for m in (0.1, 1.345, 10.0):
        r = np.abs(y - eta)
        want = np.where(r <= m, 0.5 * r * r, m * r - 0.5 * m * m)
        np.testing.assert_allclose(Huber(m).loss(y, eta), want, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("namespace", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("t", [0.0, 0.7])
def test_logistic_adversarial_term_and_derivatives(t, namespace):
    """phi(m) = log(1 + e^{-m}) at m = z eta - t and phi'(m) = -expit(-m): numpy's
    in-place map and the expressions every other namespace evaluates."""
    rng = np.random.default_rng(2)
    eta = np.concatenate([_etas(rng), [t, -t, 1e-300, -1e-300]])  # (m = 0 exactly)
    y = (rng.random(eta.shape[0]) < 0.5).astype(float)
    z = 2.0 * y - 1.0
    m = z * eta - t
    xp = np if namespace == "numpy" else pytest.importorskip(namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, d_eta, d_t = (np.asarray(v) for v in adversarial_terms(
            Binomial(), xp.asarray(y), xp.asarray(eta), t, 0.0, xp=xp))
        value_only = np.asarray(adversarial_terms(Binomial(), xp.asarray(y),
                                                  xp.asarray(eta), t, 0.0, grad=False,
                                                  xp=xp))
    np.testing.assert_allclose(value, np.logaddexp(0.0, -m), rtol=1e-13, atol=1e-300)
    np.testing.assert_array_equal(value_only, value)
    np.testing.assert_allclose(d_eta, -z * expit(-m), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(d_t, expit(-m), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("namespace", ["numpy", "array_api_strict"])
@pytest.mark.parametrize(("t", "mu"), [(0.0, 0.5), (0.7, 1e-3), (0.2, 3.0)])
def test_smoothed_hinge_term_and_derivatives(t, mu, namespace):
    """pos_mu(u) = (u + |u|_mu) / 2 at u = 1 - z eta + t, piece by piece: 0 below the band,
    (u + mu)^2 / (4 mu) inside it, u above it; its derivative clip((u + mu) / (2 mu), 0, 1)
    in t and -z times that in eta. numpy's in-place map and the expressions every other
    namespace evaluates, on margins in all three pieces and at their ends."""
    rng = np.random.default_rng(4)
    z = np.where(rng.random(400) < 0.5, 1.0, -1.0)
    u = np.concatenate([rng.uniform(-3 * mu, 3 * mu, 200), rng.standard_normal(196) * 4,
                        [-mu, mu, 0.0, 2 * mu]])
    eta = z * (1.0 + t - u)  # (z^2 = 1)
    want = np.where(u < -mu, 0.0, np.where(u > mu, u, (u + mu) ** 2 / (4 * mu)))
    slope = np.where(u < -mu, 0.0, np.where(u > mu, 1.0, (u + mu) / (2 * mu)))
    xp = np if namespace == "numpy" else pytest.importorskip(namespace)
    value, d_eta, d_t = (np.asarray(v) for v in adversarial_terms(
        Hinge(), xp.asarray(z), xp.asarray(eta), t, mu, xp=xp))
    value_only = np.asarray(adversarial_terms(Hinge(), xp.asarray(z), xp.asarray(eta), t,
                                              mu, grad=False, xp=xp))
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12 * (1 + t + mu))
    np.testing.assert_array_equal(value_only, value)
    np.testing.assert_allclose(d_t, slope, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(d_eta, -z * slope, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_logistic_map_mixes_the_clean_and_adversarial_terms(alpha):
    """The map's sums: F = sum w [alpha phi(z eta) + (1 - alpha) phi(z eta - t)], dF/db,
    dF/dt and dF/deta, eta = X beta + b, against scipy's expit and numpy's logaddexp."""
    rng = np.random.default_rng(3)
    Xbeta = _etas(rng)
    n = Xbeta.shape[0]
    y = (rng.random(n) < 0.5).astype(float)
    w = rng.random(n)
    w /= w.sum()
    b, t = 0.25, 0.4
    eta = Xbeta + b
    z = 2.0 * y - 1.0
    phi = [np.logaddexp(0.0, -z * eta), np.logaddexp(0.0, -(z * eta - t))]
    dphi = [-expit(-z * eta), -expit(-(z * eta - t))]  # d phi / d m
    want_f = w @ (alpha * phi[0] + (1.0 - alpha) * phi[1])
    want_g = w * z * (alpha * dphi[0] + (1.0 - alpha) * dphi[1])
    want_t = -(1.0 - alpha) * (w @ dphi[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (f, g_b, g_t), g = _per_sample(np, Xbeta, y, w, family=Binomial(), alpha=alpha,
                                       shift=t, b=b, mu=0.0, grad=True, fit_intercept=True)
        (f_only,), _ = _per_sample(np, Xbeta, y, w, family=Binomial(), alpha=alpha,
                                   shift=t, b=b, mu=0.0, grad=False, fit_intercept=True)
    np.testing.assert_allclose([f, f_only], want_f, rtol=1e-13)
    np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(g_b, want_g.sum(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_t, want_t, rtol=1e-12, atol=1e-15)


def _smoothed_pos(u, mu):
    """pos_mu(u) = (u + |u|_mu) / 2 and its derivative, piece by piece: 0 below the
    band, (u + mu)^2 / (4 mu) in it (|u| <= mu), u above; mu = 0: max(u, 0) and the
    derivative 1/2 (1 + sign u)."""
    if mu == 0.0:
        return np.maximum(u, 0.0), 0.5 * (1.0 + np.sign(u))
    inside = np.abs(u) <= mu
    value = np.where(u > mu, u, np.where(inside, (u + mu) ** 2 / (4.0 * mu), 0.0))
    slope = np.where(u > mu, 1.0, np.where(inside, (u + mu) / (2.0 * mu), 0.0))
    return value, slope


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("mu", [0.0, 0.3])
def test_hinge_map_equals_its_pieces(alpha, mu):
    """The hinge's map (one clipped slope for all three pieces of the smoothed positive
    part) against pos_mu written piece by piece: F = sum w [alpha pos_mu(1 - z eta) +
    (1 - alpha) pos_mu(1 - z eta + t)], dF/db, dF/dt and dF/deta, with margins in and
    around the band and exactly at its edges and the kink."""
    rng = np.random.default_rng(4)
    z = np.where(rng.random(400) < 0.5, -1.0, 1.0)
    b, t = 0.1, 0.35
    # u = 1 - z eta + t at -mu, 0, mu and beyond; the rest spread over the band's scale
    # (unsmoothed, none at the kink u = 0: its slope is a subgradient's choice, taken
    # as u rounds)
    u_set = np.concatenate([[-0.3, 0.0 if mu else 0.05, 0.3, -2.0, 2.0],
                            rng.uniform(-1.0, 1.0, 395)])
    eta = z * (1.0 + t - u_set)  # z z = 1
    Xbeta = eta - b
    w = rng.random(400)
    w /= w.sum()
    clean, d_clean = _smoothed_pos(1.0 - z * eta, mu)
    adv, d_adv = _smoothed_pos(1.0 - z * eta + t, mu)
    want_f = w @ (alpha * clean + (1.0 - alpha) * adv)
    want_g = -w * z * (alpha * d_clean + (1.0 - alpha) * d_adv)
    want_t = (1.0 - alpha) * (w @ d_adv)
    (f, g_b, g_t), g = _per_sample(np, Xbeta, z, w, family=Hinge(), alpha=alpha, shift=t,
                                   b=b, mu=mu, grad=True, fit_intercept=True)
    (f_only,), _ = _per_sample(np, Xbeta, z, w, family=Hinge(), alpha=alpha, shift=t, b=b,
                               mu=mu, grad=False, fit_intercept=True)
    np.testing.assert_allclose([f, f_only], want_f, rtol=1e-13)
    np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_b, want_g.sum(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_t, want_t, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("namespace", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("family", [Gaussian(), Huber(0.8)], ids=["gaussian", "huber"])
@pytest.mark.parametrize("mu", [0.0, 0.3])
@pytest.mark.parametrize("t", [0.0, 0.5])
def test_symmetric_map_equals_its_pieces(family, mu, t, namespace):
    """rho(|r|_mu + t), r = y - eta, against |r|_mu and rho written piece by piece
    (numpy's in-place map and the expressions every other namespace evaluates): the
    value, dh/deta = -rho'(u) d|r|_mu/dr and dh/dt = rho'(u), with residuals at the
    band's edges, at zero and on both sides of Huber's threshold."""
    rng = np.random.default_rng(5)
    r = np.concatenate([[-0.3, 0.0, 0.3, -2.5, 2.5, 0.8 - t, -(0.8 - t) - 1e-9],
                        rng.uniform(-2.0, 2.0, 393)])
    y = rng.standard_normal(r.shape[0])
    eta = y - r
    r = y - eta  # (the residual as the map rounds it)
    inside = np.abs(r) <= mu
    ar = np.where(inside, r * r / (2.0 * mu) + mu / 2.0, np.abs(r)) if mu else np.abs(r)
    dar = np.where(inside, r / mu, np.sign(r)) if mu else np.sign(r)
    u = ar + t
    M = getattr(family, "threshold", None)
    rho = 0.5 * u * u if M is None else np.where(u <= M, 0.5 * u * u, M * u - 0.5 * M * M)
    drho = u if M is None else np.minimum(u, M)
    xp = np if namespace == "numpy" else pytest.importorskip(namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, d_eta, d_t = (np.asarray(v) for v in adversarial_terms(
            family, xp.asarray(y), xp.asarray(eta), t, mu, xp=xp))
        value_only = np.asarray(adversarial_terms(family, xp.asarray(y), xp.asarray(eta),
                                                  t, mu, grad=False, xp=xp))
    np.testing.assert_allclose(value, rho, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(value_only, value)
    np.testing.assert_allclose(d_eta, -drho * dar, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d_t, drho, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("namespace", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("mu", [0.0, 0.2])
@pytest.mark.parametrize("t", [0.0, 3e-3, 0.6])
def test_poisson_map_equals_its_pieces(mu, t, namespace):
    """h = (a + b) / 2 + t |x|_mu with a, b = l(eta +- t), x = (a - b) / (2 t) (at mu = 0
    max(l(eta + t), l(eta - t)) itself), against those written out, and its derivatives
    against central differences (numpy's in-place map and the expressions every other
    namespace evaluates)."""
    rng = np.random.default_rng(6)
    eta = np.concatenate([rng.uniform(-3.0, 3.0, 300), [-40.0, 0.0, 5.0]])
    y = rng.poisson(np.exp(np.clip(eta, -4.0, 4.0))).astype(float)
    xp = np if namespace == "numpy" else pytest.importorskip(namespace)

    def terms(eta_, t_, grad=True):
        out = adversarial_terms(Poisson(), xp.asarray(y), xp.asarray(eta_), t_, mu,
                                grad=grad, xp=xp)
        return tuple(np.asarray(v) for v in out) if grad else np.asarray(out)

    def loss(v):
        return np.exp(v) - y * v

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, d_eta, d_t = terms(eta, t)
        value_only = terms(eta, t, grad=False)
    if t == 0.0:
        want = loss(eta)
    else:
        a, b = loss(eta + t), loss(eta - t)
        x = np.exp(eta) * np.sinh(t) / t - y
        ax = np.where(np.abs(x) <= mu, x * x / (2.0 * mu) + mu / 2.0, np.abs(x)) if mu \
            else np.abs(x)
        want = 0.5 * (a + b) + t * ax
        if mu == 0.0:
            np.testing.assert_allclose(want, np.maximum(a, b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(value, want, rtol=1e-11, atol=1e-12)
    np.testing.assert_array_equal(value_only, value)
    h = 1e-6
    fd_eta = (terms(eta + h, t, False) - terms(eta - h, t, False)) / (2.0 * h)
    smooth = np.abs(np.exp(eta) * (np.sinh(t) / t if t else 1.0) - y) > 1e-4  # (off kinks)
    np.testing.assert_allclose(d_eta[smooth], fd_eta[smooth], rtol=1e-5, atol=1e-6)
    if t > 0.0:
        fd_t = (terms(eta, t + h, False) - terms(eta, t - h, False)) / (2.0 * h)
        np.testing.assert_allclose(d_t[smooth], fd_t[smooth], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("mu, pieces", [(0.0, False), (0.2, False), (0.0, True)])
@pytest.mark.parametrize("t", [0.0, 3e-3, 0.6])
def test_poisson_second_order_terms_in_place_equal_the_expressions(t, mu, pieces, alpha):
    """Poisson's second-order terms: numpy's in-place map (the Newton and pinned passes)
    against the expressions every other namespace evaluates (array_api_strict), on the
    smoothed |x|, its reference-sign pieces (the pinned step: -1, 0, +1) and the clean
    mix; with the smoothing band populated (|x| <= mu for a fifth of the samples)."""
    from fgsm_cvx.fast.objective import second_order_terms

    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(8)
    eta = np.concatenate([rng.uniform(-3.0, 3.0, 300), [-40.0, 0.0, 5.0]])
    y = rng.poisson(np.exp(np.clip(eta, -4.0, 4.0))).astype(float)
    scale = np.sinh(t) / t if t else 1.0
    band = rng.random(eta.shape[0]) < 0.2  # x = e^eta s - y within mu of 0
    y[band] = np.exp(eta[band]) * scale + rng.uniform(-0.15, 0.15, int(band.sum()))
    ref = rng.choice([-1.0, 0.0, 1.0], eta.shape[0]) if pieces else None
    got = second_order_terms(Poisson(), y, eta, t, mu, alpha, np, ref=ref)
    want = second_order_terms(Poisson(), xps.asarray(y), xps.asarray(eta), t, mu, alpha,
                              xps, ref=None if ref is None else xps.asarray(ref))
    names = ("H", "H_e", "H_t", "H_ee", "H_et", "H_tt")
    for name, g, w in zip(names, got, want, strict=True):
        assert isinstance(g, np.ndarray) and g.shape == eta.shape, name
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_poisson_second_order_terms_in_place_where_e_squared_overflows(alpha):
    """Predictors of 360-700 (e^eta finite, e^{2 eta} past the float range: a far warm
    start's first passes) outside the smoothing band: the band's curvature term
    A'' e^2 is 0 there, and the in-place map gives the expressions' finite terms, not
    inf * 0 = NaN (a Poisson solve warm-started at coefficients of 100 took a NaN
    Newton pass for a step and ran its shift to 9e279). And s(t)'s derivatives at such
    shifts are inf or NaN, not an OverflowError."""
    from fgsm_cvx.fast.objective import _sinhc_derivatives, second_order_terms

    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(9)
    eta = rng.uniform(360.0, 700.0, 200)
    y = rng.poisson(3.0, 200).astype(float)
    with np.errstate(all="ignore"):
        got = second_order_terms(Poisson(), y, eta, 0.6, 0.2, alpha, np)
        want = second_order_terms(Poisson(), xps.asarray(y), xps.asarray(eta), 0.6, 0.2,
                                  alpha, xps)
    for name, g, w in zip(("H", "H_e", "H_t", "H_ee", "H_et", "H_tt"), got, want,
                          strict=True):
        w = np.asarray(w)
        assert np.all(np.isfinite(w)), name  # (the reference is finite here)
        np.testing.assert_allclose(g, w, rtol=1e-9, err_msg=name)
    with np.errstate(all="ignore"):
        s, s1, s2, ch, sh = _sinhc_derivatives(9e279)
    assert np.isinf(s) and np.isinf(ch) and not np.isfinite(s2)
