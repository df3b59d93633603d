"""The attacker's moves: exact worst-case and literal FGSM perturbations.

For a linear predictor the attacker's best move over eps*S is closed-form: it shifts
eta_i to the endpoint of [eta_i - eps sigma_S(-beta), eta_i + eps sigma_S(beta)] with
the larger loss, through delta = argmax_{delta in eps S} +-delta^T beta (THEORY.md §2).
Literal FGSM picks the endpoint by sign(l'(eta_i)) instead.
"""

from __future__ import annotations

import numpy as np

from .problem import check_problem


def _moves(prob, coef):
    """The two candidate perturbations: raising eta (up) and lowering it (down)."""
    up = prob.eps * prob.unit_noise(coef, +1.0)
    down = prob.eps * prob.unit_noise(coef, -1.0)
    return up, down


def worst_case_perturbation(prob, coef, intercept=0.0):
    """The exact maximiser delta_i in eps*S of l(y_i, (x_i + delta_i)^T beta + b).

    Returns an array of shape (n_samples, n_features); row i attains the worst-case
    loss max(l(eta_i + eps sigma_S(beta)), l(eta_i - eps sigma_S(-beta))). With a
    generalized penalty the rows are the penalty's noise scheme (delta^T beta = +-eps P).
    """
    coef, intercept = check_problem(prob).check_coef(coef, intercept)
    eta = prob.linear_predictor(coef, intercept)
    c_up, c_down = prob.unit_shift(coef)
    fam, y = prob.family, prob.y
    go_up = fam.loss(y, eta + prob.eps * c_up) >= fam.loss(y, eta - prob.eps * c_down)
    up, down = _moves(prob, coef)
    return np.where(go_up[:, None], up[None, :], down[None, :])


def fgsm_perturbation(prob, coef, intercept=0.0):
    """Literal FGSM: delta_i = eps * argmax_{delta in S} delta^T (sign(l'_i) beta).

    For S the Linf box this is eps * sign(l'(eta_i)) * sign(beta), Goodfellow's
    x + eps sign(grad_x l). Samples with l' = 0 are not moved.
    """
    coef, intercept = check_problem(prob).check_coef(coef, intercept)
    eta = prob.linear_predictor(coef, intercept)
    s = np.sign(prob.family.grad(prob.y, eta))[:, None]
    up, down = _moves(prob, coef)
    return np.where(s > 0, up[None, :], np.where(s < 0, down[None, :], 0.0))
