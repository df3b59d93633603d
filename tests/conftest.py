"""Registries of families and perturbation sets shared by the tests.

Each perturbation case carries an independent description of its set, written here from
the definition (not from the package's support functions), for brute-force checks:

* ("polytope", G, h): S = {delta : G delta <= h}, maximised by vertex enumeration;
* ("smooth", k, to_delta, constraints): S = {to_delta(u) : constraints(u) >= 0}, u in R^k,
  maximised by SLSQP from many starts.
"""

from __future__ import annotations

import itertools
import os

import cvxpy as cp
import numpy as np
import pytest

import fgsm_cvx as fc

D = 4  # number of features in the small brute-force problems
QUICK = os.environ.get("FGSM_CVX_QUICK", "") not in ("", "0")


def make_y(family_id, eta, rng):
    """A response for family ``family_id`` given linear predictors ``eta``."""
    n = eta.shape[0]
    if family_id in ("gaussian", "huber"):
        y = eta + rng.standard_normal(n)
        if family_id == "huber":
            y[: max(1, n // 10)] += 8.0  # a few outliers
        return y
    if family_id in ("binomial", "hinge"):
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
        y[0], y[1] = 0, 1  # both classes present
        return y
    if family_id == "poisson":
        y = rng.poisson(np.exp(np.clip(eta, -3, 3))).astype(float)
        y[0] = max(y[0], 1.0)
        return y
    raise KeyError(family_id)


FAMILY_CASES = {
    "gaussian": lambda: fc.Gaussian(),
    "binomial": lambda: fc.Binomial(),
    "poisson": lambda: fc.Poisson(),
    "hinge": lambda: fc.Hinge(),
    "huber": lambda: fc.Huber(threshold=1.0),
}


def survey_draw(family_id, seed):
    """A problem of the randomized surveys (docs/reliability.md, "A survey of the fast
    path on fresh draws") from its seed: (X, y, scale, rng), n in [200, 1500), d in
    [2, 13),
    features of one of five scales, in 30% of the draws the first column 20 times the
    others' scale and off centre; ``rng`` goes on to the survey's next draws (weights,
    alpha, ...)."""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(200, 1500)), int(rng.integers(2, 13))
    scale = float(rng.choice([0.1, 0.3, 1.0, 3.0, 10.0]))
    X = scale * rng.standard_normal((n, d))
    if rng.random() < 0.3:
        X[:, 0] = X[:, 0] * 20 + 5
    return X, make_y(family_id, X @ (rng.standard_normal(d) / scale), rng), scale, rng


def _sign_rows(d):
    return np.array(list(itertools.product([-1.0, 1.0], repeat=d)))


def _box_h(lower, upper):
    G = np.vstack([np.eye(D), -np.eye(D)])
    return G, np.concatenate([upper, -lower])


_SCALES = np.array([0.5, 1.0, 2.0, 0.0])
_LOWER = np.array([-1.0, -0.5, 0.0, -2.0])
_UPPER = np.array([0.5, 1.0, 2.0, 0.0])
_MASK = np.array([True, False, True, True])
_A = np.array([[1.0, 0.2, 0.0], [0.3, 1.5, 0.1], [0.0, -0.4, 0.7], [0.5, 0.0, 0.3]])
_CUSTOM_G = np.vstack([-np.eye(D), np.ones((1, D)), np.array([[1.0, -1.0, 0.0, 0.5]])])
_CUSTOM_H = np.concatenate([np.full(D, 0.5), [1.0], [0.8]])


def _custom_build(delta):
    return [_CUSTOM_G @ delta <= _CUSTOM_H]


def _lp_smooth(p, mask=None):
    idx = np.arange(D) if mask is None else np.flatnonzero(mask)

    def to_delta(u):
        delta = np.zeros(D)
        delta[idx] = u
        return delta

    return ("smooth", idx.shape[0], to_delta, lambda u: [1.0 - np.sum(np.abs(u) ** p)])


PERTURBATION_CASES = {
    "linf": (lambda: fc.Linf(), ("polytope", *_box_h(-np.ones(D), np.ones(D)))),
    "l1": (lambda: fc.L1(), ("polytope", _sign_rows(D), np.ones(2**D))),
    "l2": (lambda: fc.L2(), _lp_smooth(2.0)),
    "lp3": (lambda: fc.Lp(3), _lp_smooth(3.0)),
    "lp1.5": (lambda: fc.Lp(1.5), _lp_smooth(1.5)),
    "weighted_linf": (lambda: fc.WeightedLinf(_SCALES), ("polytope", *_box_h(-_SCALES, _SCALES))),
    "group_l2": (
        lambda: fc.Group([[0, 1], [2, 3]], p=2),
        ("smooth", D, lambda u: u,
         lambda u: [1.0 - u[0] ** 2 - u[1] ** 2, 1.0 - u[2] ** 2 - u[3] ** 2]),
    ),
    "group_linf_labels": (
        lambda: fc.Group(np.array([0, 0, 1, -1]), p=np.inf),
        ("polytope", *_box_h(np.array([-1.0, -1, -1, 0]), np.array([1.0, 1, 1, 0]))),
    ),
    "ellipsoid": (lambda: fc.Ellipsoid(_A), ("smooth", 3, lambda u: _A @ u,
                                             lambda u: [1.0 - u @ u])),
    "box": (lambda: fc.Box(_LOWER, _UPPER), ("polytope", *_box_h(_LOWER, _UPPER))),
    "masked_linf": (lambda: fc.Masked("linf", _MASK),
                    ("polytope", *_box_h(-_MASK.astype(float), _MASK.astype(float)))),
    "masked_l2": (lambda: fc.Masked(fc.L2(), np.flatnonzero(_MASK)), _lp_smooth(2.0, _MASK)),
    "custom_polytope": (lambda: fc.CustomSet(_custom_build), ("polytope", _CUSTOM_G, _CUSTOM_H)),
}

SYMMETRIC_IDS = [k for k in PERTURBATION_CASES if k not in ("box", "custom_polytope")]


@pytest.fixture(params=list(FAMILY_CASES), ids=list(FAMILY_CASES))
def family_id(request):
    return request.param


@pytest.fixture(params=list(PERTURBATION_CASES), ids=list(PERTURBATION_CASES))
def perturbation_id(request):
    return request.param


def small_problem(family_id, perturbation, n=30, eps=0.3, alpha=0.0, seed=0, **kwargs):
    """A small random problem with d = D features."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    beta = np.array([1.0, -0.5, 0.0, 0.8])
    y = make_y(family_id, X @ beta + 0.2, rng)
    return fc.AdversarialProblem(X, y, family=FAMILY_CASES[family_id](),
                                 perturbation=perturbation, eps=eps, alpha=alpha, **kwargs)


def polytope_vertices(G, h, tol=1e-9):
    """All vertices of {x : G x <= h} by brute force over d-subsets of the rows."""
    d = G.shape[1]
    verts = []
    for rows in itertools.combinations(range(G.shape[0]), d):
        Gs = G[list(rows)]
        if abs(np.linalg.det(Gs)) < 1e-12:
            continue
        x = np.linalg.solve(Gs, h[list(rows)])
        if np.all(G @ x <= h + tol):
            verts.append(x)
    return np.array(verts)


def in_set(spec, delta, eps, tol=1e-8):
    """Is ``delta`` in eps*S, by the independent description ``spec``?"""
    if spec[0] == "polytope":
        _, G, h = spec
        return bool(np.all(G @ delta <= eps * h + tol))
    _, k, to_delta, cons = spec
    # Recover u from delta by least squares on the linear map to_delta.
    M = np.column_stack([to_delta(e) for e in np.eye(k)])
    u, *_ = np.linalg.lstsq(M, delta, rcond=None)
    if np.linalg.norm(M @ u - delta) > tol:
        return False
    return bool(np.all(np.asarray(cons(u / eps)) >= -1e-7)) if eps > 0 else np.allclose(delta, 0)


def cvx_value(expr_builder, *values):
    """Evaluate a cvxpy expression built from constants (checks the cvx forms numerically)."""
    return np.asarray(expr_builder(*[cp.Constant(v) for v in values]).value, dtype=float)


# The perturbation sets with a Newton manifold (fast/newton.py, fast/kinks.py), by name
MANIFOLD_SETS = {
    "linf": lambda d: fc.Linf(),
    "l2": lambda d: fc.L2(),
    "weighted_linf": lambda d: fc.WeightedLinf(np.linspace(0.5, 2.0, d)),
    "ellipsoid": lambda d: fc.Ellipsoid(np.eye(d) + 0.3 * np.diag(np.ones(d - 1), 1)),
    "masked": lambda d: fc.Masked("linf", np.arange(d) % 3 != 0),
    "group": lambda d: fc.Group(np.arange(d) // 3, p=2),
    "l1": lambda d: fc.L1(),
    "masked_l1": lambda d: fc.Masked("l1", np.arange(d) % 3 != 0),
    # the dual q-norms, q = 3 (smooth at zero coordinates; q < 2: ``test_newton.py``)
    "lp1.5": lambda d: fc.Lp(1.5),
    "group_p1.5": lambda d: fc.Group(np.arange(d) // 3, p=1.5),
    # sum_g ||beta_g||_1 (p = inf): the weighted l1 of the grouped features, one free
    "group_linf": lambda d: fc.Group(np.r_[np.arange(d - 1) // 3, -1], p=np.inf),
    "masked_ellipsoid": lambda d: fc.Masked(
        fc.Ellipsoid(np.eye(_n_masked(d)) + 0.3 * np.eye(_n_masked(d), k=1)), _mask(d)),
    "masked_group_p1.5": lambda d: fc.Masked(fc.Group(np.arange(_n_masked(d)) // 2, p=1.5),
                                             _mask(d)),
    # sum_g ||beta_g||_inf (p = 1): the l-inf tie manifold per group, one feature free
    "group_p1": lambda d: fc.Group(np.r_[np.arange(d - 1) // 3, -1], p=1.0),
    "masked_group_p1": lambda d: fc.Masked(fc.Group(np.arange(_n_masked(d)) // 2, p=1.0),
                                           _mask(d)),
}


def _mask(d):
    """The masked sets' mask: every feature but every third."""
    return np.arange(d) % 3 != 0


def _n_masked(d):
    return int(np.count_nonzero(_mask(d)))



def manifold_problem(family, set_name, rng, n=1500, d=8, offset=0.0, weights=False, **kw):
    """A problem of ``family`` with the set ``MANIFOLD_SETS[set_name]`` at 0.3 eps_max:
    features N(offset, 1), a sparse truth, labels from the family (Poisson at a third of
    the predictor's scale), optional positive weights."""
    X = rng.standard_normal((n, d)) + offset
    beta = rng.standard_normal(d) * (rng.random(d) < 0.6)
    eta = (X - offset) @ beta
    if family == "binomial":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    elif family == "poisson":
        y = rng.poisson(np.exp(0.3 * eta)).astype(float)
    else:
        y = eta + rng.standard_normal(n)
    w = rng.random(n) + 0.5 if weights else None
    prob = fc.AdversarialProblem(X, y, family=family, perturbation=MANIFOLD_SETS[set_name](d),
                                 eps=1.0, sample_weight=w, **kw)
    top = fc.eps_max(prob)
    if not np.isfinite(top):  # a masked set: the free coordinates never all vanish
        top = fc.eps_max(fc.AdversarialProblem(X, y, family=family, eps=1.0,
                                               sample_weight=w, **kw))
    return prob.with_params(eps=0.3 * top)


def record_step_sizes(monkeypatch, module, name):
    """The list to which each call of ``module.name`` (a Newton or pinned step, whose
    fifth argument is the state (beta, b, t, X beta) it starts from) appends
    (converged, nonzero coefficients of that state)."""
    calls, original = [], getattr(module, name)

    def recorded(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append((out[4], int(np.count_nonzero(args[4][0]))))
        return out

    monkeypatch.setattr(module, name, recorded)
    return calls
