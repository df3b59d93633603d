"""Exact worst case vs literal FGSM (docs/theory.md §2), and basic objective invariants."""

import numpy as np
import pytest
from conftest import FAMILY_CASES, PERTURBATION_CASES, SYMMETRIC_IDS, D, make_y
from hypothesis import given, settings
from hypothesis import strategies as st

import fgsm_cvx as fc


def _problem(family_id, perturbation, eps, seed=0, n=40, alpha=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    y = make_y(family_id, X @ np.array([1.0, -1.0, 0.5, 0.0]), rng)
    return fc.AdversarialProblem(X, y, family=FAMILY_CASES[family_id](),
                                 perturbation=perturbation, eps=eps, alpha=alpha)


@pytest.mark.parametrize("family_id", ["gaussian", "huber", "binomial"])
@pytest.mark.parametrize("perturbation_id", SYMMETRIC_IDS)
def test_fgsm_is_exact_for_symmetric_and_logistic_losses(family_id, perturbation_id):
    prob = _problem(family_id, PERTURBATION_CASES[perturbation_id][0](), eps=0.5, alpha=0.3)
    rng = np.random.default_rng(1)
    for _ in range(5):
        beta, b = rng.standard_normal(D), float(rng.standard_normal())
        assert fc.fgsm_objective(prob, beta, b) == pytest.approx(
            fc.robust_objective(prob, beta, b), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("family_id", ["poisson", "hinge"])
def test_exact_dominates_fgsm_and_strictly_somewhere(family_id):
    prob = _problem(family_id, fc.Linf(), eps=0.8)
    rng = np.random.default_rng(2)
    for _ in range(20):
        beta, b = rng.standard_normal(D), float(rng.standard_normal())
        assert fc.robust_objective(prob, beta, b) >= fc.fgsm_objective(prob, beta, b) - 1e-14
    # A sample where the sign of l' picks the wrong endpoint:
    #  poisson: e^eta slightly below y (l' < 0, FGSM lowers eta) but e^eta sinh(c) > y c;
    #  hinge: margin > 1 (l' = 0, FGSM does nothing) yet the margin minus c is < 1.
    X = np.array([[1.0, 0.0, 0.0, 0.0]] * 2)
    if family_id == "poisson":
        y, beta, b = np.array([2.0, 1.0]), np.array([np.log(1.9), 0, 0, 0]), 0.0
    else:
        y, beta, b = np.array([1, -1]), np.array([1.5, 0, 0, 0]), 0.0
    prob = fc.AdversarialProblem(X, y, family=family_id, perturbation="linf", eps=1.5,
                                 fit_intercept=False)
    assert fc.robust_objective(prob, beta, b) > fc.fgsm_objective(prob, beta, b) + 1e-3


def test_fgsm_perturbation_is_goodfellows_sign_step():
    """For Linf, x_adv = x + eps * sign(grad_x l) with grad_x l = l'(eta) beta."""
    prob = _problem("binomial", "linf", eps=0.3)
    rng = np.random.default_rng(3)
    beta, b = rng.standard_normal(D), 0.1
    eta = prob.X @ beta + b
    grad_x = prob.family.grad(prob.y, eta)[:, None] * beta[None, :]
    np.testing.assert_array_equal(fc.fgsm_perturbation(prob, beta, b), 0.3 * np.sign(grad_x))
    # and the FGSM objective is the loss at exactly these inputs
    adv = prob.family.loss(prob.y, (prob.X + 0.3 * np.sign(grad_x)) @ beta + b)
    assert fc.fgsm_objective(prob, beta, b) == pytest.approx(float(np.mean(adv)), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(family_id=st.sampled_from(list(FAMILY_CASES)),
       perturbation_id=st.sampled_from([k for k in PERTURBATION_CASES if k != "custom_polytope"]),
       eps=st.floats(0.0, 3.0), alpha=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_robust_objective_invariants(family_id, perturbation_id, eps, alpha, seed):
    """robust >= fgsm >= ... and robust >= clean, nondecreasing in eps."""
    prob = _problem(family_id, PERTURBATION_CASES[perturbation_id][0](), eps=eps, alpha=alpha,
                    seed=seed, n=15)
    rng = np.random.default_rng(seed)
    beta, b = rng.standard_normal(D), float(rng.standard_normal())
    clean = fc.robust_objective(prob.with_params(eps=0.0), beta, b)
    robust = fc.robust_objective(prob, beta, b)
    bigger = fc.robust_objective(prob.with_params(eps=eps * 1.5 + 0.1), beta, b)
    tol = 1e-12 * (1 + abs(robust))
    assert robust >= clean - tol
    assert bigger >= robust - tol
    assert robust >= fc.fgsm_objective(prob, beta, b) - tol


def test_generalized_penalty_noise_scheme_realises_the_shift():
    """With P = L_r, delta^T beta = +-eps P(beta) for the worst-case rows (docs/theory.md §3)."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((10, D))
    y = X @ np.ones(D) + rng.standard_normal(10)
    prob = fc.AdversarialProblem(X, y, family="gaussian", eps=0.2,
                                 penalty=fc.penalties.Lr(1.5))
    beta = rng.standard_normal(D)
    deltas = fc.worst_case_perturbation(prob, beta, 0.3)
    p = np.sum(np.abs(beta) ** 1.5)
    np.testing.assert_allclose(np.abs(deltas @ beta), 0.2 * p, rtol=1e-12)
    eta = X @ beta + 0.3
    expected = np.mean(0.5 * (np.abs(y - eta) + 0.2 * p) ** 2)  # symmetric loss: rho(|r| + c)
    assert fc.robust_objective(prob, beta, 0.3) == pytest.approx(expected, rel=1e-12)
