"""``fc.theory``: designs, limit quantities, the limit-law sampler and the Monte Carlo harness.

References (never the code's own output): closed forms of docs/theory.md §4 written out here
(gaussian C = E x~x~^T, kappa = sigma sqrt(2/pi), E|Exp(1) - 1| = 2/e, V = 0 for normal
noise), a two-dimensional Gauss-Hermite product rule and brute-force Monte Carlo written in
this file, soft thresholding for the one-dimensional limit problem, the KKT conditions of
the limit problem, finite differences for P'(beta0; u), and Monte Carlo standard errors
computed from the draws.
"""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import QUICK
from numpy.polynomial.hermite_e import hermegauss
from scipy import stats
from scipy.special import expit

import fgsm_cvx as fc
from fgsm_cvx.theory import GLMDesign, limit_quantities, sample_limit_law, simulate
from fgsm_cvx.theory.limits import directional_derivative, limit_argmin

SIGMA = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 1.5]])


# ----- designs -----------------------------------------------------------------------------
def test_design_samples_have_the_stated_law():
    design = GLMDesign("gaussian", [1.0, -0.5, 0.0], intercept=0.7, feature_cov=SIGMA,
                       noise="exponential", noise_scale=2.0)
    n = 200_000
    X, y = design.sample(n, np.random.default_rng(0))
    assert X.shape == (n, 3) and y.shape == (n,)
    # sample covariance of x: entries have sd sqrt(S_jj S_kk + S_jk^2) / sqrt(n)
    se = np.sqrt(np.outer(np.diag(SIGMA), np.diag(SIGMA)) + SIGMA**2) / math.sqrt(n)
    assert np.all(np.abs(X.T @ X / n - SIGMA) < 5 * se)
    eps = y - X @ design.beta0 - 0.7
    # 2 (Exp(1) - 1): mean 0, sd 2, median 2 (log 2 - 1)
    assert abs(eps.mean()) < 5 * 2 / math.sqrt(n)
    assert abs(eps.std() - 2.0) < 0.03
    assert abs(np.median(eps) - 2 * (math.log(2) - 1)) < 0.02
    # logistic: P(y = 1) = E expit(eta), eta ~ N(b0, beta^T Sigma beta), by 1-d quadrature
    design = GLMDesign("logistic", [1.0, -0.5, 0.0], intercept=0.8, feature_cov=SIGMA)
    _, y = design.sample(n, np.random.default_rng(1))
    z, w = hermegauss(80)
    s = math.sqrt(design.beta0 @ SIGMA @ design.beta0)
    p = float(w @ expit(0.8 + s * z) / w.sum())
    assert set(np.unique(y)) == {0.0, 1.0}
    assert abs(y.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_design_seeding_is_reproducible():
    design = GLMDesign("poisson", [0.3, 0.2], intercept=0.1)
    a = design.sample(50, np.random.default_rng(5))
    b = design.sample(50, 5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.all(a[1] == np.round(a[1])) and np.all(a[1] >= 0)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(family="hinge", beta0=[1.0]), ValueError, "family"),
    (dict(family="nope", beta0=[1.0]), ValueError, "family"),
    (dict(family="gaussian", beta0=[1.0], noise="cauchy"), ValueError, "noise"),
    (dict(family="logistic", beta0=[1.0], noise="t"), ValueError, "noise"),
    (dict(family="poisson", beta0=[1.0], noise_scale=2.0), ValueError, "noise"),
    (dict(family="gaussian", beta0=[1.0], noise_scale=0.0), ValueError, "noise_scale"),
    (dict(family="gaussian", beta0=[1.0], noise="t", noise_df=2.0), ValueError, "noise_df"),
    (dict(family="gaussian", beta0=[1.0, 2.0], feature_cov=np.eye(3)), ValueError, "feature_cov"),
    (dict(family="gaussian", beta0=[1.0, 2.0], feature_cov=[[1, 2], [2, 1]]), ValueError,
     "positive definite"),
    (dict(family="gaussian", beta0=[1.0, 2.0], feature_cov=[[1, 0.1], [0, 1]]), ValueError,
     "symmetric"),
    (dict(family="gaussian", beta0=[np.nan]), ValueError, "beta0"),
    (dict(family="gaussian", beta0=[1.0], intercept="a"), TypeError, "intercept"),
])
def test_design_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        GLMDesign(**kwargs)


def test_sample_validation():
    design = GLMDesign("gaussian", [1.0])
    with pytest.raises(ValueError, match="n must"):
        design.sample(0)
    with pytest.raises(TypeError, match="rng"):
        design.sample(5, rng="seed")


# ----- limit quantities ------------------------------------------------------------------
def _gaussian_closed_forms(Sigma, m2, mean_abs, V_int):
    d = Sigma.shape[0]
    C = np.zeros((d + 1, d + 1))
    C[:d, :d], C[d, d] = Sigma, 1.0
    V = np.zeros(d + 1)
    V[d] = V_int
    return C, m2 * C, mean_abs, V


@pytest.mark.parametrize("noise,sigma", [("normal", 1.0), ("normal", 2.5), ("exponential", 1.5),
                                         ("t", 1.0)])
def test_gaussian_limit_quantities_match_closed_forms(noise, sigma):
    nu = 5.0
    design = GLMDesign("gaussian", [1.0, -0.5, 0.0], intercept=0.3, feature_cov=SIGMA,
                       noise=noise, noise_scale=sigma, noise_df=nu)
    # closed forms: E|N(0,1)| = sqrt(2/pi); E|Exp(1) - 1| = 2/e and
    # P(eps < 0) - P(eps > 0) = (1 - 1/e) - 1/e; t_nu: variance nu/(nu-2) and E|T| by scipy
    if noise == "normal":
        m2, mean_abs, v_int = sigma**2, sigma * math.sqrt(2 / math.pi), 0.0
    elif noise == "exponential":
        m2, mean_abs, v_int = sigma**2, 2 * sigma / math.e, 1 - 2 / math.e
    else:
        m2 = sigma**2 * nu / (nu - 2)
        mean_abs = sigma * stats.t(nu).expect(abs)
        v_int = 0.0
    C, S, kappa, V = _gaussian_closed_forms(SIGMA, m2, mean_abs, v_int)
    exact = limit_quantities(design)
    assert exact.method == "closed_form"
    np.testing.assert_allclose(exact.C, C, atol=1e-14)
    np.testing.assert_allclose(exact.Sigma_W, S, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(exact.kappa, kappa, rtol=1e-9)
    np.testing.assert_allclose(exact.V, V, atol=1e-14)
    assert exact.names == ["x0", "x1", "x2", "intercept"]

    n_mc = 100_000 if QUICK else 400_000
    mc = limit_quantities(design, method="mc", n_mc=n_mc, seed=7)
    assert mc.method == "monte_carlo" and mc.n_mc == n_mc
    # Monte Carlo standard errors from the closed-form second moments:
    # Var(x_j x_k) = S_jj S_kk + S_jk^2 for gaussian x (with x~_{d} = 1 the constant)
    C_full = C.copy()
    var_C = np.outer(np.diag(C_full), np.diag(C_full)) + C_full**2
    var_C[-1, -1] = 0.0  # the constant times itself
    assert np.all(np.abs(mc.C - C) <= 5 * np.sqrt(var_C / n_mc) + 1e-12)
    var_abs = m2 - mean_abs**2  # Var |eps| = E eps^2 - (E|eps|)^2
    assert abs(mc.kappa - kappa) <= 5 * math.sqrt(var_abs / n_mc)
    # V_j = mean(sign(-eps) x~_j): variance E x~_j^2 - V_j^2
    var_V = np.append(np.diag(SIGMA), 1.0) - V**2
    assert np.all(np.abs(mc.V - V) <= 5 * np.sqrt(var_V / n_mc))
    # its own standard errors are of the right size (within 10% of the closed form)
    np.testing.assert_allclose(mc.kappa_se, math.sqrt(var_abs / n_mc), rtol=0.1)
    if noise == "normal":
        # Var(eps^2 x_j x_k) = E eps^4 E(x_j x_k)^2 - (E eps^2 C_jk)^2, E eps^4 = 3 sigma^4
        var_S = 3 * sigma**4 * var_C + 3 * sigma**4 * C**2 - (sigma**2 * C) ** 2
        var_S[-1, -1] = 2 * sigma**4
        assert np.all(np.abs(mc.Sigma_W - S) <= 5 * np.sqrt(var_S / n_mc) + 1e-12)


def _product_rule(Sigma, f, order=60):
    """E f(x) for x ~ N(0, Sigma) in 2-d, by a tensor Gauss-Hermite rule (written here)."""
    z, w = hermegauss(order)
    w = w / w.sum()
    Z = np.array(np.meshgrid(z, z, indexing="ij")).reshape(2, -1).T
    W = np.outer(w, w).ravel()
    X = Z @ np.linalg.cholesky(Sigma).T
    return np.tensordot(W, f(X), axes=(0, 0))


def test_logistic_limit_quantities_match_two_dimensional_quadrature():
    Sigma = np.array([[1.0, 0.4], [0.4, 2.0]])
    beta0, b0 = np.array([1.0, -0.5]), 0.7
    design = GLMDesign("logistic", beta0, intercept=b0, feature_cov=Sigma)
    q = limit_quantities(design)
    assert q.method == "quadrature"

    def terms(X):
        p = expit(X @ beta0 + b0)
        Xt = np.hstack([X, np.ones((X.shape[0], 1))])
        outer = Xt[:, :, None] * Xt[:, None, :]
        # docs/theory.md §4 for logistic: l'' = p(1-p) = E[l'^2 | x], E|l'| = 2p(1-p),
        # E[sign(l') l'' | x] = (1 - 2p) p (1 - p)
        h = p * (1 - p)
        return {"C": h[:, None, None] * outer, "kappa": 2 * h,
                "V": ((1 - 2 * p) * h)[:, None] * Xt}

    ref = {key: _product_rule(Sigma, lambda X, key=key: terms(X)[key]) for key in
           ("C", "kappa", "V")}
    np.testing.assert_allclose(q.C, ref["C"], atol=1e-9)
    np.testing.assert_allclose(q.Sigma_W, ref["C"], atol=1e-9)  # canonical, unit dispersion
    np.testing.assert_allclose(q.kappa, ref["kappa"], atol=1e-9)
    np.testing.assert_allclose(q.V, ref["V"], atol=1e-9)
    assert abs(q.V[0]) > 1e-2  # logistic data are not sign neutral

    q_no = limit_quantities(design, fit_intercept=False)
    np.testing.assert_allclose(q_no.C, ref["C"][:2, :2], atol=1e-9)
    np.testing.assert_allclose(q_no.V, ref["V"][:2], atol=1e-9)


@pytest.mark.parametrize("family", ["logistic", "poisson"])
def test_intercept_only_design_has_closed_form_limit_quantities(family):
    """beta0 = 0 (eta = b0 for every x, x ~ N(0, I) independent of y): C = Sigma_W =
    l''(b0) I, kappa = E|l'|, V = E[sign(l') l''] e_intercept, computed from the response's
    law directly (the quadrature's s = 0 branch raised TypeError under NumPy 2)."""
    b0 = 0.7
    q = limit_quantities(GLMDesign(family, [0.0, 0.0], intercept=b0))
    if family == "logistic":
        p = expit(b0)
        h, kappa, v = p * (1 - p), 2 * p * (1 - p), (1 - 2 * p) * p * (1 - p)
    else:
        mu = math.exp(b0)
        k = np.arange(0, 200)
        pmf = stats.poisson.pmf(k, mu)
        h, kappa = mu, float(pmf @ np.abs(mu - k))
        v = mu * float(pmf @ np.sign(mu - k))
    np.testing.assert_allclose(q.C, h * np.eye(3), atol=1e-10)
    np.testing.assert_allclose(q.Sigma_W, h * np.eye(3), atol=1e-10)
    assert q.kappa == pytest.approx(kappa, abs=1e-10)
    np.testing.assert_allclose(q.V, [0.0, 0.0, v], atol=1e-10)


def test_poisson_limit_quantities_match_brute_force_monte_carlo():
    design = GLMDesign("poisson", [0.5, -0.3], intercept=0.4)
    q = limit_quantities(design)
    rng = np.random.default_rng(11)
    n = 100_000 if QUICK else 400_000
    X = rng.standard_normal((n, 2))
    mu = np.exp(X @ design.beta0 + 0.4)
    y = rng.poisson(mu)
    Xt = np.hstack([X, np.ones((n, 1))])
    g, h = mu - y, mu  # l' = e^eta - y, l'' = e^eta
    draws = {"kappa": np.abs(g)[:, None], "V": (np.sign(g) * h)[:, None] * Xt,
             "C": h[:, None] * Xt * Xt[:, [0]], "S": (g * g)[:, None] * Xt * Xt[:, [2]]}
    ref = {key: (v.mean(axis=0), v.std(axis=0) / math.sqrt(n)) for key, v in draws.items()}
    assert abs(q.kappa - ref["kappa"][0][0]) <= 5 * ref["kappa"][1][0]
    assert np.all(np.abs(q.V - ref["V"][0]) <= 5 * ref["V"][1])
    assert np.all(np.abs(q.C[:, 0] - ref["C"][0]) <= 5 * ref["C"][1])
    assert np.all(np.abs(q.Sigma_W[:, 2] - ref["S"][0]) <= 5 * ref["S"][1])


def test_limit_quantities_validation():
    design = GLMDesign("gaussian", [1.0])
    with pytest.raises(TypeError, match="design"):
        limit_quantities("gaussian")
    with pytest.raises(ValueError, match="method"):
        limit_quantities(design, method="simpson")
    with pytest.raises(ValueError, match="n_mc"):
        limit_quantities(design, method="mc", n_mc=1)
    with pytest.raises(TypeError, match="fit_intercept"):
        limit_quantities(design, fit_intercept=1)


# ----- the directional derivative and the limit law ------------------------------------------
@pytest.mark.parametrize("penalty", ["l1", "l2", "linf", fc.penalties.WeightedL1([1.0, 2.0, 0.5]),
                                     fc.penalties.Lr(1.5), "ridge", fc.L2()])
@pytest.mark.parametrize("beta0", [[1.0, -0.5, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
def test_directional_derivative_is_the_one_sided_difference_quotient(penalty, beta0):
    beta0 = np.array(beta0)
    deriv = directional_derivative(penalty, beta0)
    P = deriv.penalty.value
    U = np.random.default_rng(0).standard_normal((6, 3))
    t = 1e-10  # L_r at a zero: the quotient is t^(r-1) |u|^r, 1e-5 for r = 1.5
    # P'(beta0; u) = lim_{t -> 0+} (P(beta0 + t u) - P(beta0)) / t, one-sided
    ref = np.array([(P(beta0 + t * u) - P(beta0)) / t for u in U])
    np.testing.assert_allclose(deriv(U), ref, atol=1e-4)
    import cvxpy as cp

    np.testing.assert_allclose(deriv.cvx(cp.Constant(U)).value, ref, atol=1e-4)


def test_directional_derivative_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="convex"):
        directional_derivative(fc.penalties.SCAD(), [1.0, 0.0])
    with pytest.raises(ValueError, match="symmetric"):
        directional_derivative(fc.Box([-1, 0], [1, 1]), [1.0, 0.0])


def test_limit_law_in_one_dimension_is_soft_thresholding():
    # d = 1, no intercept, gaussian noise sigma, x ~ N(0, c): C = c, Sigma_W = sigma^2 c,
    # kappa = sigma sqrt(2/pi), V = 0. beta0 = 0: u* = S(W, lam kappa) / c, so
    # P(u* = 0) = P(|W| <= lam kappa); beta0 > 0: u* = (W - lam kappa) / c.
    c, sigma, lam, alpha = 2.0, 1.5, 1.2, 0.25
    kappa = sigma * math.sqrt(2 / math.pi)
    thr = (1 - alpha) * lam * kappa
    m = 4000
    zero = sample_limit_law(GLMDesign("gaussian", [0.0], feature_cov=[[c]], noise_scale=sigma),
                            lam, alpha=alpha, n_draws=m, seed=3, fit_intercept=False)
    p = 2 * stats.norm.cdf(thr / (sigma * math.sqrt(c))) - 1
    p_hat = np.mean(np.abs(zero[:, 0]) <= 1e-8)
    assert abs(p_hat - p) <= 4 * math.sqrt(p * (1 - p) / m)
    # the nonzero draws are the soft-thresholded W / c: |u| c + thr = |W| ~ folded normal
    nz = np.abs(zero[np.abs(zero[:, 0]) > 1e-8, 0]) * c + thr
    tail = stats.truncnorm(thr / (sigma * math.sqrt(c)), np.inf, scale=sigma * math.sqrt(c))
    assert stats.kstest(nz, tail.cdf).pvalue > 1e-3

    pos = sample_limit_law(GLMDesign("gaussian", [0.8], feature_cov=[[c]], noise_scale=sigma),
                           lam, alpha=alpha, n_draws=m, seed=4, fit_intercept=False)[:, 0]
    se_mean = sigma / math.sqrt(c) / math.sqrt(m)
    assert abs(pos.mean() + thr / c) <= 4 * se_mean
    assert abs(pos.std() - sigma / math.sqrt(c)) <= 4 * sigma / math.sqrt(c) / math.sqrt(2 * m)


@pytest.mark.parametrize("estimator", ["fgsm", "penalized"])
def test_limit_argmin_satisfies_the_kkt_conditions(estimator):
    # Z(u) = 1/2 u^T C u - u^T (W - a) + mu P'(beta0; u_coef), P = L1: at the minimiser
    # C u - W + a + mu g = 0 with g_j = sign(beta0_j) (beta0_j != 0), g_j = sign(u_j) or
    # |g_j| <= 1 (beta0_j = 0, u_j = 0), g = 0 on the intercept.
    design = GLMDesign("logistic", [1.0, -0.5, 0.0, 0.0], intercept=0.5)
    q = limit_quantities(design)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((200, 5)) * 3
    lam = 2.0
    a = lam * 1.5 * q.V if estimator == "fgsm" else np.zeros(5)  # P(beta0) = 1.5
    deriv = directional_derivative("l1", design.beta0)
    U = limit_argmin(q.C, W, a, deriv, lam * q.kappa)
    mu = lam * q.kappa
    r = U @ q.C - W + a  # = -mu g
    s0 = np.sign(design.beta0[:2])
    assert np.max(np.abs(r[:, :2] + mu * s0)) < 1e-6
    assert np.max(np.abs(r[:, 4])) < 1e-6
    zero = np.abs(U[:, 2:4]) <= 1e-7
    assert np.all(np.abs(r[:, 2:4][zero]) <= mu + 1e-6)
    assert np.max(np.abs(r[:, 2:4][~zero] + mu * np.sign(U[:, 2:4][~zero]))) < 1e-6
    assert 0.2 < zero.mean() < 0.9  # both kinds of draws occur


def test_sample_limit_law_validation():
    design = GLMDesign("gaussian", [1.0, 0.0])
    with pytest.raises(ValueError, match="estimator"):
        sample_limit_law(design, 1.0, estimator="ols")
    with pytest.raises(ValueError, match="lam"):
        sample_limit_law(design, -1.0)
    with pytest.raises(ValueError, match="n_draws"):
        sample_limit_law(design, 1.0, n_draws=0)
    with pytest.raises(ValueError, match="shape"):
        sample_limit_law(design, 1.0, quantities=limit_quantities(design, fit_intercept=False))
    with pytest.raises(TypeError, match="quantities"):
        sample_limit_law(design, 1.0, quantities={"C": 1})


# ----- simulate ------------------------------------------------------------------------------
def test_simulate_is_reproducible_and_tidy(tmp_path):
    design = GLMDesign("logistic", [1.0, 0.0], intercept=0.3)
    kw = dict(ns=[60, 120], lam=1.0, reps=6, estimators=("fgsm", "penalized"), seed=42,
              progress=False)
    a = simulate(design, n_jobs=1, path=tmp_path / "sim.csv", **kw)
    b = simulate(design, n_jobs=1, **kw)
    c = simulate(design, n_jobs=2, **kw)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert list(a.columns) == ["n", "estimator", "coordinate", "bias", "sd", "rmse", "p_zero"]
    assert len(a) == 2 * 2 * 3
    assert a[a.coordinate == "intercept"].p_zero.isna().all()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sim.csv"), a, check_dtype=False)
    d = simulate(design, n_jobs=1, **{**kw, "seed": 43})
    assert not np.allclose(a.bias, d.bias)
    # rmse^2 = bias^2 + (reps - 1)/reps sd^2, from the definitions
    np.testing.assert_allclose(a.rmse**2, a.bias**2 + 5 / 6 * a.sd**2, rtol=1e-10)


def test_simulate_draws_are_the_fits_on_the_seeded_samples():
    # replication r at n: sample from the r-th child of the first child of SeedSequence(seed)
    design = GLMDesign("gaussian", [0.8, 0.0], intercept=-0.2)
    n, lam = 80, 1.5
    _, draws = simulate(design, [n], lam, reps=3, estimators=("fgsm", "penalized"), seed=9,
                        progress=False, return_draws=True)
    child = np.random.SeedSequence(9).spawn(1)[0].spawn(3)[2]
    X, y = design.sample(n, np.random.default_rng(child))
    eps = lam / math.sqrt(n)
    tight = dict(backend="cvxpy", solver="CLARABEL", tol=1e-12)  # an independent solver
    fgsm = fc.solve(fc.AdversarialProblem(X, y, "gaussian", "linf", eps=eps), **tight)
    kappa = math.sqrt(2 / math.pi)  # the population kappa of N(0, 1) noise
    twin = fc.penalized_fit(X, y, "gaussian", "l1", eps * kappa, **tight)
    for name, res in (("fgsm", fgsm), ("penalized", twin)):
        got = draws[(draws.rep == 2) & (draws.estimator == name)].set_index("coordinate").error
        ref = math.sqrt(n) * (np.append(res.coef, res.intercept) - [0.8, 0.0, -0.2])
        np.testing.assert_allclose(got[["x0", "x1", "intercept"]].to_numpy(), ref, atol=1e-5)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(ns=[]), ValueError, "ns"),
    (dict(ns=[100.5]), ValueError, "ns"),
    (dict(reps=1), ValueError, "reps"),
    (dict(estimators=("fgsm", "ols")), ValueError, "estimators"),
    (dict(estimators=("fgsm", "fgsm")), ValueError, "estimators"),
    (dict(penalty="l2", estimators=("scad",)), ValueError, "L1-based"),
    (dict(n_jobs=0), ValueError, "n_jobs"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(backend="gpu"), ValueError, "backend"),
    (dict(eps_rate=-0.5), ValueError, "eps_rate"),
    (dict(path=3), TypeError, "path"),
    (dict(progress="yes"), TypeError, "progress"),
])
def test_simulate_validation(kwargs, exc, match):
    base = dict(design=GLMDesign("gaussian", [1.0, 0.0]), ns=[50], lam=1.0, reps=2,
                progress=False)
    with pytest.raises(exc, match=match):
        simulate(**{**base, **kwargs})


# ----- the asymptotic claims (slow; quick mode in CI) ----------------------------------------
def _se_of_sd(x):
    """Standard error of the sample sd by the delta method: Var(s^2) ~ (m4 - s^4) / R."""
    s2 = x.var()
    m4 = np.mean((x - x.mean()) ** 4)
    return math.sqrt(max(m4 - s2 * s2, 0.0) / x.shape[0]) / (2 * math.sqrt(s2))


DESIGNS = {
    "gaussian": GLMDesign("gaussian", [1.0, -0.5, 0.0, 0.0], intercept=0.5, noise_scale=1.0),
    "logistic": GLMDesign("logistic", [1.0, -0.5, 0.0, 0.0], intercept=0.5),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", list(DESIGNS))
def test_monte_carlo_matches_the_limit_law(family):
    """docs/theory.md §4: sqrt(n)(theta_hat - theta0) -> argmin Z, coordinate by coordinate."""
    design, lam = DESIGNS[family], 1.0
    ns = (1600,) if QUICK else (400, 1600, 6400)
    reps = 300 if QUICK else 1000
    _, draws = simulate(design, ns, lam, reps, estimators=("fgsm",), seed=1, n_jobs=2,
                        progress=False, return_draws=True)
    names = ["x0", "x1", "x2", "x3", "intercept"]
    mc = draws[draws.n == max(ns)].pivot(index="rep", columns="coordinate", values="error")
    mc_zero = draws[draws.n == max(ns)].pivot(index="rep", columns="coordinate", values="zero")
    limit = sample_limit_law(design, lam, n_draws=4000, seed=2)
    lim_zero = np.abs(limit) <= fc.theory.zero_threshold(limit[:, :4])
    for j, name in enumerate(names):
        a, b = mc[name].to_numpy(), limit[:, j]
        se = math.hypot(a.std() / math.sqrt(a.size), b.std() / math.sqrt(b.size))
        assert abs(a.mean() - b.mean()) <= 3 * se, (name, a.mean(), b.mean(), se)
        se = math.hypot(_se_of_sd(a), _se_of_sd(b))
        assert abs(a.std() - b.std()) <= 3 * se, (name, a.std(), b.std(), se)
        if name != "intercept":
            p, q = mc_zero[name].to_numpy().mean(), lim_zero[:, j].mean()
            se = math.sqrt(p * (1 - p) / a.size + q * (1 - q) / b.size)
            assert abs(p - q) <= 3 * max(se, 1e-12), (name, p, q, se)
    # the true zeros are exact zeros with a probability strictly between 0 and 1
    assert 0.2 < lim_zero[:, 2].mean() < 0.9


@pytest.mark.slow
@pytest.mark.parametrize("family", list(DESIGNS))
def test_root_n_rmse_is_flat_and_fixed_eps_is_not(family):
    """docs/theory.md §4 item 1: sqrt(n) RMSE bounded along eps_n = lam / sqrt(n); grows
    at fixed eps."""
    design, ns = DESIGNS[family], [400, 1600, 6400]
    reps = 60 if QUICK else 300

    def total(frame):  # sqrt(n) RMSE of the whole vector (coefficients and intercept)
        return frame.assign(ms=frame.rmse**2).groupby("n").ms.sum().pipe(np.sqrt).to_numpy()

    root_n = total(simulate(design, ns, 1.0, reps, estimators=("fgsm",), seed=3, n_jobs=2,
                            progress=False))
    assert root_n.max() / root_n.min() < 1.25, root_n
    if family == "gaussian" or not QUICK:
        fixed = total(simulate(design, ns, 0.1, reps, estimators=("fgsm",), eps_rate=0.0,
                               seed=4, n_jobs=2, progress=False))
        assert np.all(np.diff(fixed) > 0) and fixed[-1] > 2 * fixed[0], fixed


def test_adaptive_and_scad_select_more_zeros_than_fgsm():
    """docs/theory.md §4 item 2: the weighted / LLA versions drop true zeros more often."""
    design = GLMDesign("gaussian", [1.0, -0.5, 0.0, 0.0])
    frame = simulate(design, [400], 0.5, 40, estimators=("fgsm", "adaptive", "scad"), seed=2,
                     progress=False)
    p = frame[frame.coordinate.isin(["x2", "x3"])].groupby("estimator").p_zero.mean()
    assert p["adaptive"] > 0.9 > p["fgsm"] > 0.1
    fast = simulate(design, [400], 0.5, 40, estimators=("scad",), eps_rate=0.25, seed=2,
                    progress=False)
    assert fast[fast.coordinate.isin(["x2", "x3"])].p_zero.mean() > 0.75  # ~0.95 (limit: 1)
    # SCAD leaves the large true coefficients unpenalised: no sqrt(n)-scaled shrinkage bias
    bias = frame.set_index(["estimator", "coordinate"]).bias
    assert abs(bias["scad", "x0"]) < 0.5 * abs(bias["fgsm", "x0"])
