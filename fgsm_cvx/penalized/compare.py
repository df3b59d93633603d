"""FGSM against its penalised-likelihood twin, with certificates (docs/theory.md §4, §6).

Expanding the FGSM objective to first order in the shift,

.. math::

    \\sum_i w_i [\\alpha l_i + (1-\\alpha) l(y_i, \\eta_i + \\epsilon s_i P(\\beta))]
    \\approx \\sum_i w_i l_i + (1-\\alpha)\\,\\epsilon\\,P(\\beta)\\,\\kappa(\\beta, b),
    \\qquad \\kappa = \\sum_i w_i |l'_i|,

(s_i = sign(l'_i), so s_i l'_i = |l'_i|): FGSM is penalised likelihood with the matched
level lam = (1 - alpha) eps kappa_hat, except that kappa moves with (beta, b). Its gradient
sum_i w_i sign(l'_i) l''_i x~_i = V adds (1 - alpha) eps P(beta) V to the FGSM estimating
equation, hence the first-order difference

.. math:: \\hat\\beta_{FGSM} - \\hat\\beta_{PL} \\approx
          -(1-\\alpha)\\,\\epsilon\\,P(\\hat\\beta)\\,\\hat C^{-1} \\hat V.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import check_scalar
from ..penalties import DualNorm
from ..problem import AdversarialProblem
from ..result import Result, _json_float
from ..solve import check_backend, solve
from .diagnostics import SignNeutrality, curvature, kappa_hat, labels, sign_neutrality_at
from .twin import PenalizedProblem, resolve_convex_penalty, solve_penalized


def _vector(v):
    return None if v is None else [_json_float(x) for x in v]


def stacked(result, fit_intercept):
    """(coef..., intercept) as one vector (the intercept only when fitted)."""
    coef = np.asarray(result.coef, dtype=float)
    return np.append(coef, result.intercept) if fit_intercept else coef.copy()


def coef_error_bound(certificate, modulus):
    """Coefficient error implied by a certificate, by strong convexity with ``modulus``.

    cvxpy: an objective within delta of the optimum of an m-strongly convex function is
    within sqrt(2 delta / m) of the minimiser (delta = the certificate's suboptimality
    bound). fast: a gradient-mapping norm G bounds the distance by 2 G / m (G in absolute
    units, residual * (1 + |F|)). m is estimated by the smallest eigenvalue of C_hat, so
    this is an estimate, not a guarantee; inf when C_hat is singular.
    """
    if modulus <= 0.0 or not np.isfinite(modulus):
        return math.inf
    if certificate.residual is not None:
        g = certificate.residual * (1.0 + abs(certificate.objective_numpy))
        return 2.0 * g / modulus
    bound = certificate.suboptimality_bound
    if bound is None:
        return math.inf
    return math.sqrt(2.0 * max(bound, 0.0) / modulus)


def predicted_difference(C, V, shift, active):
    """-(shift) C_AA^{-1} V_A on the active set A (zero elsewhere); None if singular.

    ``shift`` = (1 - alpha) eps P(beta_hat). Restricting to the coordinates the FGSM
    solution keeps nonzero (and the intercept) is the first-order expansion with the zero
    pattern held fixed, exact to first order for L1-type penalties; with no zeros it is
    the full formula -(1 - alpha) eps P C^{-1} V.
    """
    out = np.zeros_like(V)
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return out
    C_aa = C[np.ix_(idx, idx)]
    if np.linalg.cond(C_aa) > 1e12:
        return None
    out[idx] = -shift * np.linalg.solve(C_aa, V[idx])
    return out


@dataclass(frozen=True)
class Comparison:
    """The report of ``compare``: FGSM and its penalised twin side by side.

    .. math::

        \\text{observed} = \\hat\\theta_{FGSM} - \\hat\\theta_{PL}, \\qquad
        \\text{predicted} = -(1-\\alpha)\\,\\epsilon\\,P(\\hat\\beta)\\,
            \\hat C^{-1}\\hat V, \\qquad \\lambda = (1-\\alpha)\\,\\epsilon\\,\\hat\\kappa.

    Vectors list the coefficients followed by the intercept (when fitted); differences
    are FGSM minus twin.

    Attributes
    ----------
    names : list of str
    fgsm, penalized : Result
        The two fits (their certificates included).
    eps, alpha, lam, kappa : float
        lam = (1 - alpha) eps kappa, kappa = sum_i w_i |l'_i| at the FGSM solution.
    penalty : Penalty
        The twin's penalty (the dual norm of the attack set, or the generalized penalty).
    observed_difference, predicted_difference : ndarray (predicted None if C_hat is
        singular on the active set, e.g. hinge)
    support_fgsm, support_penalized : ndarray of bool
        |coef_j| > support_tol.
    sign : SignNeutrality
        V_hat, its standard errors and the Wald test, at the FGSM solution.
    error_bound_fgsm, error_bound_penalized : float
        Coefficient errors implied by the certificates (``coef_error_bound``).
    """

    names: list
    fit_intercept: bool
    fgsm: Result
    penalized: Result
    eps: float
    alpha: float
    lam: float
    kappa: float
    penalty: object
    observed_difference: np.ndarray
    predicted_difference: np.ndarray | None
    support_fgsm: np.ndarray
    support_penalized: np.ndarray
    sign: SignNeutrality
    error_bound_fgsm: float
    error_bound_penalized: float

    @property
    def coef_fgsm(self):
        """FGSM coefficients, then the intercept (when fitted)."""
        return stacked(self.fgsm, self.fit_intercept)

    @property
    def coef_penalized(self):
        """The twin's coefficients, then the intercept (when fitted)."""
        return stacked(self.penalized, self.fit_intercept)

    @property
    def V(self):
        """The sign-neutrality vector V_hat = sum_i w_i sign(l'_i) l''_i x~_i."""
        return self.sign.V

    @property
    def V_se(self):
        """Standard errors of the entries of V_hat."""
        return self.sign.se

    @property
    def supports_agree(self):
        """Whether FGSM and the twin select the same coefficients."""
        return bool(np.array_equal(self.support_fgsm, self.support_penalized))

    @property
    def max_difference(self):
        """max_j |observed_difference_j|."""
        return float(np.max(np.abs(self.observed_difference)))

    @property
    def l2_difference(self):
        """||observed_difference||_2."""
        return float(np.linalg.norm(self.observed_difference))

    @property
    def error_bound(self):
        """Error bound on the difference: the sum of the two fits' bounds."""
        return self.error_bound_fgsm + self.error_bound_penalized

    @property
    def certificates(self):
        """{'fgsm': Certificate, 'penalized': Certificate}."""
        return {"fgsm": self.fgsm.certificate, "penalized": self.penalized.certificate}

    def to_dict(self):
        """A JSON-safe dictionary (plain floats, lists and None)."""
        return {
            "names": list(self.names),
            "coef_fgsm": _vector(self.coef_fgsm),
            "coef_penalized": _vector(self.coef_penalized),
            "observed_difference": _vector(self.observed_difference),
            "predicted_difference": _vector(self.predicted_difference),
            "max_difference": _json_float(self.max_difference),
            "l2_difference": _json_float(self.l2_difference),
            "support_fgsm": [int(j) for j in np.flatnonzero(self.support_fgsm)],
            "support_penalized": [int(j) for j in np.flatnonzero(self.support_penalized)],
            "supports_agree": self.supports_agree,
            "eps": _json_float(self.eps),
            "alpha": _json_float(self.alpha),
            "lam": _json_float(self.lam),
            "kappa": _json_float(self.kappa),
            "penalty": repr(self.penalty),
            "V": _vector(self.V),
            "V_se": _vector(self.V_se),
            "sign_neutrality": self.sign.to_dict(),
            "error_bound": {"fgsm": _json_float(self.error_bound_fgsm),
                            "penalized": _json_float(self.error_bound_penalized)},
            "certificates": {k: c.to_dict() for k, c in self.certificates.items()},
        }

    def _columns(self):
        pred = self.predicted_difference
        return {
            "fgsm": self.coef_fgsm,
            "penalized": self.coef_penalized,
            "observed_difference": self.observed_difference,
            "predicted_difference": (np.full(len(self.names), np.nan) if pred is None
                                     else pred),
            "V": self.V,
            "V_se": self.V_se,
        }

    def to_frame(self):
        """The per-coefficient table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("Comparison.to_frame needs pandas (pip install pandas); "
                              "to_dict() gives the same numbers without it") from exc
        return pd.DataFrame(self._columns(), index=list(self.names))

    def __str__(self):
        cols = self._columns()
        head = ["FGSM", "twin", "observed", "predicted", "V_hat", "se(V_hat)"]
        lines = [f"FGSM vs penalised likelihood: eps={self.eps:g}, alpha={self.alpha:g}, "
                 f"penalty {self.penalty!r}",
                 f"kappa_hat = {self.kappa:.6g}, lam = (1 - alpha) eps kappa_hat = "
                 f"{self.lam:.6g}",
                 f"{'':>12}" + "".join(f"{h:>13}" for h in head)]
        for k, name in enumerate(self.names):
            lines.append(f"{name:>12}" + "".join(f"{cols[c][k]:13.5e}" for c in cols))
        sup = ", ".join(f"{label} {{{', '.join(self.names[j] for j in np.flatnonzero(s))}}}"
                        for label, s in (("FGSM", self.support_fgsm),
                                         ("twin", self.support_penalized)))
        lines.append(f"supports: {sup}; agree: {'yes' if self.supports_agree else 'no'}")
        lines.append(f"difference: max {self.max_difference:.3e}, L2 {self.l2_difference:.3e}; "
                     f"optimisation error bound {self.error_bound:.3e} "
                     f"(FGSM {self.error_bound_fgsm:.2e}, twin {self.error_bound_penalized:.2e})")
        lines.append(f"certificate FGSM: {self.fgsm.certificate}")
        lines.append(f"certificate twin: {self.penalized.certificate}")
        lines.append(f"sign neutrality: Wald {self.sign.statistic:.4g} on {self.sign.df} df, "
                     f"p-value {self.sign.p_value:.4g}")
        return "\n".join(lines)


def compare(X, y, family, perturbation="linf", eps=0.1, alpha=0.0, penalty=None,
            fit_intercept=True, sample_weight=None, constraints=None, backend="auto",
            solver="ECOS", tol=1e-8, support_tol=1e-6, feature_names=None):
    """Fit FGSM and its penalised-likelihood twin at the matched level; report both.

    The FGSM estimator solves the ``AdversarialProblem`` (exact worst case). With
    kappa_hat = sum_i w_i |l'(y_i, eta_i)| at its solution (clean predictor), the twin
    solves

    .. math::

        \\min_{\\beta, b} \\sum_i w_i l(y_i, \\eta_i) + \\lambda P(\\beta), \\qquad
        \\lambda = (1-\\alpha)\\,\\epsilon\\,\\hat\\kappa,

    P the dual norm of the perturbation set (``penalty`` = the generalized penalty if
    given). The report holds both fits and certificates, the difference next to the
    first-order prediction -(1 - alpha) eps P(beta_hat) C_hat^{-1} V_hat (on the FGSM
    active set, see ``predicted_difference``) and the sign-neutrality vector with standard
    errors (``sign_neutrality``).

    Parameters
    ----------
    X, y, family, perturbation, eps, alpha, penalty, fit_intercept, sample_weight,
    constraints
        As in ``AdversarialProblem``; the set must be symmetric (its support function is
        then a norm) and a penalty convex.
    backend, solver, tol
        As in ``fc.solve``, for both fits.
    support_tol : float
        A coefficient is in the support when |coef_j| > support_tol.
    feature_names : list of str or None

    Returns
    -------
    Comparison
    """
    check_backend(backend)
    support_tol = check_scalar(support_tol, "support_tol", lower=0.0)
    prob = AdversarialProblem(X, y, family=family, perturbation=perturbation, eps=eps,
                              alpha=alpha, fit_intercept=fit_intercept,
                              sample_weight=sample_weight, penalty=penalty,
                              constraints=constraints)
    if prob.penalty is not None:
        twin_penalty = resolve_convex_penalty(prob.penalty, "compare")
    elif prob.perturbation.symmetric:
        twin_penalty = DualNorm(prob.perturbation)
    else:
        raise ValueError(f"perturbation {prob.perturbation!r} is not symmetric: its support "
                         "function is not a norm and FGSM has no penalised-likelihood twin "
                         "(compare needs a symmetric set or a convex penalty)")
    names = labels(prob.n_features, prob.fit_intercept, feature_names)
    fgsm = solve(prob, backend=backend, solver=solver, tol=tol)
    coef, b = fgsm.coef, fgsm.intercept
    kappa = kappa_hat(prob, coef, b)
    lam = (1.0 - prob.alpha) * prob.eps * kappa
    # the twin shares the validated data (labels already encoded, weights normalised)
    pp = PenalizedProblem(prob.X, prob.y, prob.family, twin_penalty, lam,
                          fit_intercept=prob.fit_intercept, sample_weight=prob.sample_weight,
                          constraints=constraints)
    twin = solve_penalized(pp, backend=backend, solver=solver, tol=tol)
    sign = sign_neutrality_at(prob, coef, b, feature_names)
    C = curvature(prob, coef, b)
    shift = (1.0 - prob.alpha) * prob.eps * twin_penalty.value(coef)
    active = np.append(np.abs(coef) > support_tol, [True] if prob.fit_intercept else [])
    predicted = predicted_difference(C, sign.V, shift, active.astype(bool))
    modulus = float(np.linalg.eigvalsh(C)[0]) if C.size else 0.0
    return Comparison(
        names=names, fit_intercept=prob.fit_intercept, fgsm=fgsm, penalized=twin,
        eps=prob.eps, alpha=prob.alpha, lam=lam, kappa=kappa, penalty=twin_penalty,
        observed_difference=stacked(fgsm, prob.fit_intercept) - stacked(twin, prob.fit_intercept),
        predicted_difference=predicted,
        support_fgsm=np.abs(fgsm.coef) > support_tol,
        support_penalized=np.abs(twin.coef) > support_tol,
        sign=sign, error_bound_fgsm=coef_error_bound(fgsm.certificate, modulus),
        error_bound_penalized=coef_error_bound(twin.certificate, modulus))



