"""Monte Carlo of sqrt(n)(theta_hat - theta0) along eps_n = lam n^(-rate) (docs/theory.md §4).

For every sample size n and every replication, one sample is drawn from the design and
every requested estimator is fitted on it (common random numbers: differences between
estimators are paired). The errors are scaled by sqrt(n) and summarised per n, estimator
and coordinate: bias, sd, rmse and the fraction of exact zeros.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from .._validation import check_bool, check_scalar
from ..lla import adaptive_fgsm
from ..penalized.twin import penalized_fit
from ..penalties import SCAD, DualNorm
from ..perturbations import Lp
from ..problem import AdversarialProblem
from ..solve import check_backend, solve
from .designs import GLMDesign
from .limits import LimitQuantities, limit_quantities, resolve_limit_penalty

__all__ = ["ESTIMATORS", "COLUMNS", "simulate", "summarize", "zero_threshold"]

#: Estimators ``simulate`` knows (see its docstring).
ESTIMATORS = ("fgsm", "penalized", "scad", "adaptive")

#: Columns of the summary frame.
COLUMNS = ("n", "estimator", "coordinate", "bias", "sd", "rmse", "p_zero")

#: Relative threshold of an exact zero: |beta_hat_j| <= ZERO_TOL (1 + max_j |beta_hat_j|).
ZERO_TOL = 1e-6


def zero_threshold(coef, zero_tol=ZERO_TOL):
    """The zero threshold zero_tol (1 + max_j |coef_j|) of each row of ``coef``.

    Solvers render exact zeros as ~1e-10 (interior point) or 0 (proximal steps), while a
    nonzero sqrt(n)-scaled coordinate has a continuous law: at 1e-6 the two are separated
    with room to spare. Works on one vector or on rows.
    """
    coef = np.asarray(coef, dtype=float)
    return zero_tol * (1.0 + np.max(np.abs(coef), axis=-1, keepdims=coef.ndim > 1))


def _check_ns(ns):
    ns = np.atleast_1d(np.asarray(ns))
    if ns.ndim != 1 or ns.size == 0 or not np.issubdtype(ns.dtype, np.integer) \
            or np.any(ns < 2):
        raise ValueError(f"ns must be a non-empty list of integers >= 2, got {ns!r}")
    return [int(n) for n in ns]


def _check_estimators(estimators):
    if isinstance(estimators, str):
        estimators = (estimators,)
    estimators = tuple(estimators)
    bad = [e for e in estimators if e not in ESTIMATORS]
    if not estimators or bad or len(set(estimators)) != len(estimators):
        raise ValueError(f"estimators must be distinct names among {ESTIMATORS}, got "
                         f"{estimators!r}")
    return estimators


def _is_l1(penalty):
    return isinstance(penalty, DualNorm) and isinstance(penalty.perturbation, Lp) \
        and penalty.perturbation.q == 1.0


class _Settings:
    """What every replication needs (picklable, sent once per task to a worker)."""

    def __init__(self, design, lam, alpha, penalty, eps_rate, fit_intercept, estimators,
                 kappa, backend, tol, scad_a, adaptive_gamma):
        self.design, self.lam, self.alpha, self.penalty = design, lam, alpha, penalty
        self.eps_rate, self.fit_intercept, self.estimators = eps_rate, fit_intercept, estimators
        self.kappa, self.backend, self.tol = kappa, backend, tol
        self.scad_a, self.adaptive_gamma = scad_a, adaptive_gamma

    def eps(self, n):
        """eps_n = lam n^(-eps_rate) (lam / sqrt(n) by default)."""
        return self.lam * float(n) ** (-self.eps_rate)

    def problem(self, X, y, eps, penalty=None):
        s = self
        # FGSM proper: the attack set whose dual norm is P (Linf for P = ||.||_1)
        shift = dict(perturbation=s.penalty.perturbation) if isinstance(s.penalty, DualNorm) \
            and penalty is None else dict(penalty=penalty or s.penalty)
        return AdversarialProblem(X, y, family=s.design.family, eps=eps, alpha=s.alpha,
                                  fit_intercept=s.fit_intercept, **shift)

    def fit(self, name, X, y, n):
        """(coef, intercept) of estimator ``name`` on (X, y) at eps_n."""
        eps = self.eps(n)
        kw = dict(backend=self.backend, tol=self.tol)
        if name == "fgsm":
            res = solve(self.problem(X, y, eps), **kw)
        elif name == "penalized":
            # the twin at lam' = (1 - alpha) eps_n kappa, kappa the population value
            res = penalized_fit(X, y, self.design.family, self.penalty,
                                (1.0 - self.alpha) * eps * self.kappa,
                                fit_intercept=self.fit_intercept, **kw)
        elif name == "scad":
            # Fan and Li's SCAD with lambda_n = eps_n (strength and bends): generalized
            # FGSM with P = SCAD(a, lam=eps_n), by the one-step LLA from the MLE (Zou and
            # Li 2008: one majorise-minimise step from a root-n consistent start)
            prob = self.problem(X, y, eps, penalty=SCAD(a=self.scad_a, lam=eps))
            res = adaptive_fgsm(prob, init="mle", **kw)
        else:  # adaptive: weights 1 / |beta_mle_j|^gamma, one weighted-FGSM step
            res = adaptive_fgsm(self.problem(X, y, eps), init="mle",
                                gamma=self.adaptive_gamma, **kw)
        return res.coef, res.intercept


def _replication(settings, n, seed):
    """Estimates (one row per estimator: coef..., intercept) on one sample of size n."""
    rng = np.random.default_rng(seed)
    X, y = settings.design.sample(n, rng)
    rows = []
    for name in settings.estimators:
        coef, b = settings.fit(name, X, y, n)
        rows.append(np.append(coef, b) if settings.fit_intercept else np.asarray(coef))
    return np.array(rows)


def summarize(errors, zeros, names, n, estimator):
    """Rows of the summary frame from draws of sqrt(n)-scaled errors.

    Parameters
    ----------
    errors : ndarray, shape (reps, k)
        sqrt(n)(theta_hat - theta0) per replication (coefficients, then intercept).
    zeros : ndarray of bool, shape (reps, k)
        Whether each coefficient is an exact zero (the intercept column is ignored).
    names : list of str
        Coordinate names; "intercept" gets p_zero = NaN (it is never penalised).
    n : int or float
        The sample size (inf for the limit law).
    estimator : str

    Returns
    -------
    list of dict
        bias = mean, sd = standard deviation (ddof 1), rmse = sqrt(mean of squares),
        p_zero = fraction of zeros, per coordinate.
    """
    errors = np.asarray(errors, dtype=float)
    out = []
    for j, name in enumerate(names):
        e = errors[:, j]
        out.append({"n": n, "estimator": estimator, "coordinate": name,
                    "bias": float(np.mean(e)),
                    "sd": float(np.std(e, ddof=1)) if e.shape[0] > 1 else float("nan"),
                    "rmse": float(np.sqrt(np.mean(e * e))),
                    "p_zero": float("nan") if name == "intercept"
                    else float(np.mean(zeros[:, j]))})
    return out


def simulate(design, ns, lam, reps, estimators=("fgsm", "penalized"), seed=0, alpha=0.0,
             penalty=None, eps_rate=0.5, fit_intercept=True, n_jobs=1, progress=True,
             path=None, backend="fast", tol=1e-10, quantities=None, scad_a=3.7,
             adaptive_gamma=1.0, zero_tol=ZERO_TOL, return_draws=False):
    """Monte Carlo of sqrt(n)(theta_hat - theta0) for eps_n = lam / sqrt(n).

    For each n in ``ns`` and each of ``reps`` replications: draw (X, y) of size n from
    ``design``, fit every estimator, and record

    .. math:: e = \\sqrt{n}\\,(\\hat\\theta - \\theta_0), \\qquad \\theta = (\\beta, b),

    then summarise per (n, estimator, coordinate): ``bias`` = mean(e), ``sd`` (ddof 1),
    ``rmse`` = sqrt(mean(e^2)), all on the sqrt(n) scale (divide by sqrt(n) for the
    error itself), and ``p_zero`` = the fraction of replications with
    |beta_hat_j| <= zero_tol (1 + max_j |beta_hat_j|) (NaN for the intercept).

    Estimators (``eps_n = lam n^(-eps_rate)``, P the penalty):

    * ``"fgsm"``: the exact FGSM / adversarial estimator with shift eps_n P(beta) (the
      attack set whose dual norm is P; the Linf box for P = L1);
    * ``"penalized"``: its penalised-likelihood twin ``fc.penalized_fit`` at
      lam' = (1 - alpha) eps_n kappa, with kappa the *population* value from
      ``limit_quantities`` (docs/theory.md §4 item 3: the two limits then differ only by
      (1 - alpha) lam P(beta0) V^T u);
    * ``"scad"`` (P = L1 only): generalized FGSM with Fan and Li's SCAD, strength and bend
      lambda_n = eps_n (``penalties.SCAD(a=scad_a, lam=eps_n)``), by the one-step local
      linear approximation from the maximum-likelihood fit (Zou and Li 2008;
      ``fc.adaptive_fgsm`` with the SCAD penalty): weights p'(|beta_mle_j|), 1 on a true
      zero. Selection is consistent when sqrt(n) eps_n -> inf (eps_rate < 1/2); at
      eps_rate = 1/2 it stays weakly oracle (the true nonzeros are left unpenalised);
    * ``"adaptive"`` (P = L1 only): adaptive FGSM (``fc.adaptive_fgsm``), weights
      |beta_mle_j|^(-gamma): at eps_rate = 1/2 the weights of the true zeros grow like
      n^(gamma/2), so P(beta_hat_j = 0) -> 1.

    Parameters
    ----------
    design : GLMDesign
    ns : sequence of int
        Sample sizes.
    lam : float >= 0
        eps_n = lam n^(-eps_rate).
    reps : int >= 2
        Replications per n.
    estimators : sequence of str, default ("fgsm", "penalized")
    seed : int, default 0
        Replication r at the i-th n uses the r-th child of the i-th child of
        ``np.random.SeedSequence(seed)``: the result does not depend on ``n_jobs``.
    alpha : float in [0, 1], default 0
    penalty : None, str, Penalty or Perturbation
        P, the dual norm of the attack set; None is "l1" (FGSM's Linf box).
    eps_rate : float >= 0, default 0.5
        0 gives a fixed eps = lam (the biased contrast of docs/theory.md §4 item 1).
    fit_intercept : bool, default True
    n_jobs : int, default 1
        Worker processes (joblib); 1 runs in this process.
    progress : bool, default True
        A tqdm bar (shown only on a terminal: tqdm's ``disable=None``).
    path : str or os.PathLike or None
        Also write the summary frame there as CSV.
    backend : {"fast", "cvxpy", "auto"}, default "fast"
        The solver backend (``fc.solve``); the fast path ends with exact zeros from its
        projection step and is certified to ``tol``. Use "cvxpy" for ECOS.
    tol : float, default 1e-10
        Solver tolerance (accuracy matters for p_zero and for paired differences).
    quantities : LimitQuantities or None
        Population quantities (for the twin's kappa); computed exactly when None.
    scad_a, adaptive_gamma : float
        SCAD's a (> 2) and the adaptive exponent gamma (> 0).
    zero_tol : float, default 1e-6
        Relative zero threshold (see above).
    return_draws : bool, default False
        Also return the per-replication frame with columns n, rep, estimator, coordinate,
        error (sqrt(n)-scaled) and zero.

    Returns
    -------
    pandas.DataFrame
        Columns n, estimator, coordinate, bias, sd, rmse, p_zero (one row per n,
        estimator and coordinate, coefficients then the intercept); with
        ``return_draws``, the pair (summary, draws).
    """
    import pandas as pd
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    if not isinstance(design, GLMDesign):
        raise TypeError(f"design must be a GLMDesign, got {type(design).__name__}")
    ns = _check_ns(ns)
    lam = check_scalar(lam, "lam", lower=0.0)
    if isinstance(reps, bool) or not isinstance(reps, numbers.Integral) or reps < 2:
        raise ValueError(f"reps must be an integer >= 2, got {reps!r}")
    estimators = _check_estimators(estimators)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a nonnegative integer, got {seed!r}")
    alpha = check_scalar(alpha, "alpha", lower=0.0, upper=1.0)
    penalty = resolve_limit_penalty(penalty)
    penalty.check_dim(design.n_features)
    if {"scad", "adaptive"} & set(estimators) and not _is_l1(penalty):
        raise ValueError("estimators 'scad' and 'adaptive' are L1-based: they need "
                         f"penalty='l1', got {penalty!r}")
    eps_rate = check_scalar(eps_rate, "eps_rate", lower=0.0)
    fit_intercept = check_bool(fit_intercept, "fit_intercept")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a nonzero integer (-1: all cores), got {n_jobs!r}")
    progress = check_bool(progress, "progress")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    backend = check_backend(backend)
    tol = check_scalar(tol, "tol", lower=0.0, upper=1.0, lower_inclusive=False,
                       upper_inclusive=False)
    scad_a = check_scalar(scad_a, "scad_a", lower=2.0, lower_inclusive=False)
    adaptive_gamma = check_scalar(adaptive_gamma, "adaptive_gamma", lower=0.0,
                                  lower_inclusive=False)
    zero_tol = check_scalar(zero_tol, "zero_tol", lower=0.0)
    return_draws = check_bool(return_draws, "return_draws")
    if quantities is None:
        quantities = limit_quantities(design, fit_intercept=fit_intercept)
    if not isinstance(quantities, LimitQuantities):
        raise TypeError(f"quantities must be LimitQuantities, got {type(quantities).__name__}")

    settings = _Settings(design, lam, alpha, penalty, eps_rate, fit_intercept, estimators,
                         quantities.kappa, backend, tol, scad_a, adaptive_gamma)
    theta0 = np.append(design.beta0, design.intercept) if fit_intercept else design.beta0
    names = quantities.names
    d = design.n_features
    seeds = [child.spawn(reps) for child in np.random.SeedSequence(seed).spawn(len(ns))]
    rows, draws = [], []
    block = max(1, 4 * (n_jobs if n_jobs > 0 else os.cpu_count() or 1))
    with tqdm(total=len(ns) * reps, disable=None if progress else True, desc="simulate",
              unit="rep") as bar, Parallel(n_jobs=n_jobs) as parallel:
        for i, n in enumerate(ns):
            est = []
            for start in range(0, reps, block):
                part = seeds[i][start:start + block]
                est.extend(parallel(delayed(_replication)(settings, n, s) for s in part))
                bar.update(len(part))
            est = np.stack(est)  # (reps, n_estimators, k)
            for e, name in enumerate(estimators):
                theta = est[:, e, :]
                errors = np.sqrt(n) * (theta - theta0)
                coef = theta[:, :d]
                zeros = np.zeros_like(theta, dtype=bool)
                zeros[:, :d] = np.abs(coef) <= zero_threshold(coef, zero_tol)
                rows.extend(summarize(errors, zeros, names, n, name))
                if return_draws:
                    draws.append(pd.DataFrame({
                        "n": n, "rep": np.repeat(np.arange(reps), len(names)),
                        "estimator": name, "coordinate": np.tile(names, reps),
                        "error": errors.ravel(), "zero": zeros.ravel()}))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if path is not None:
        frame.to_csv(path, index=False)
    if return_draws:
        return frame, pd.concat(draws, ignore_index=True)
    return frame
