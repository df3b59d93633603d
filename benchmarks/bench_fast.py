"""Fast path vs cvxpy: time ratios, objective gaps, and time in X^T(X v) passes.

Prints one row per family x perturbation x n: the fast-path time, the cvxpy times with
ECOS and Clarabel (where feasible: n * d up to --cvxpy-max-size), the ratio
cvxpy/fast, the relative objective gap (fast - best cvxpy) / |best cvxpy|, and the fast
time in units of one X^T (X v) pass measured in the same run on the same X.

    python benchmarks/bench_fast.py                       # d = 50, n = 1e3 .. 1e5
    python benchmarks/bench_fast.py --n 1000000 --perturbations linf l2
    python benchmarks/bench_fast.py --d 1000 --n 10000 --cvxpy-solvers CLARABEL --cvxpy-max-size 2e7
    python benchmarks/bench_fast.py --n 10000 --alpha 0.9999 --perturbations linf l2 box
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import warnings

import numpy as np

import fgsm_cvx as fc

SETS = {
    "linf": lambda d: fc.Linf(),
    "l2": lambda d: fc.L2(),
    "l1": lambda d: fc.L1(),
    "weighted_linf": lambda d: fc.WeightedLinf(np.linspace(0.5, 1.5, d)),
    "group": lambda d: fc.Group(np.arange(d) // 5, p=2),
    "ellipsoid": lambda d: fc.Ellipsoid(np.eye(d) + 0.2 * np.diag(np.ones(d - 1), 1)),
    "masked": lambda d: fc.Masked("linf", np.arange(d) % 4 != 0),
    # asymmetric: two shifts (t_up, t_dn) on the fast path
    "box": lambda d: fc.Box(-0.5, 1.0),
    "masked_box": lambda d: fc.Masked(fc.Box(-0.5, 1.0), np.arange(d) % 4 != 0),
}


def make_data(family, n, d, rng, rho=0.0):
    """Standard normal features (AR(1) across columns with correlation rho), a sparse
    true coefficient vector, and a response of the family."""
    X = rng.standard_normal((n, d))
    for j in range(1, d if rho else 0):  # x_j = rho x_{j-1} + sqrt(1 - rho^2) z_j
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1.0 - rho * rho) * X[:, j]
    beta = rng.standard_normal(d) * (rng.random(d) < 0.3) / np.sqrt(d) * 3
    eta = X @ beta
    if family in ("gaussian", "huber"):
        y = eta + rng.standard_normal(n)
    elif family in ("binomial", "hinge"):
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(np.clip(eta, -4, 4))).astype(float)
    return X, y


def radius_scale(X, y, family, perturbation, alpha=0.0):
    """eps_max of the problem, the radius the eps fractions refer to. For hinge above
    n = 2e4 that of the logistic problem on the same data instead: hinge's eps_max is a
    conic program with a term per sample of the heavier class (``fc.eps_max``; 100 s at
    n = 1e5, d = 50 with Clarabel), and any radius of the same order serves here."""
    if family == "hinge" and X.shape[0] > 20_000:
        family = "binomial"
    return fc.eps_max(fc.AdversarialProblem(X, y, family=family, perturbation=perturbation,
                                            eps=0.0, alpha=alpha))


def pass_time(X, repeats=30):
    """Fastest seconds of one X^T (X v) over ``repeats``, after three warm-up passes
    (the fastest: on a shared machine the slower runs measure the other users)."""
    v = np.ones(X.shape[1])
    for _ in range(3):
        X.T @ (X @ v)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        X.T @ (X @ v)
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


def fast_solve(make_problem, repeats):
    """(Result, fastest seconds, peak traced memory in bytes) of the fast path, each run on
    a fresh problem (no cached step size or centring), then one more under tracemalloc."""
    best, res = np.inf, None
    for _ in range(repeats):
        prob = make_problem()
        res, secs = timed(lambda prob=prob: fc.solve(prob, backend="fast"))
        best = min(best, secs)
    prob = make_problem()
    tracemalloc.start()
    fc.solve(prob, backend="fast")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return res, best, peak


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--families", nargs="+",
                    default=["binomial", "gaussian", "huber", "poisson", "hinge"])
    ap.add_argument("--perturbations", nargs="+", default=list(SETS))
    ap.add_argument("--eps-fraction", type=float, default=0.2,
                    help="eps as a fraction of eps_max (default 0.2)")
    ap.add_argument("--alpha", type=float, default=0.0,
                    help="Goodfellow's clean/adversarial mix (default 0; eps_max is that "
                         "alpha's)")
    ap.add_argument("--rho", type=float, default=0.0,
                    help="AR(1) correlation between neighbouring features (default 0)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="fast-path solves per row, on fresh problems; the fastest counts")
    ap.add_argument("--cvxpy-max-size", type=float, default=5e5,
                    help="run cvxpy only when n * d is at most this (default 5e5)")
    ap.add_argument("--cvxpy-solvers", nargs="+", default=["ECOS", "CLARABEL"],
                    choices=["ECOS", "CLARABEL"],
                    help="conic solvers to compare with (default both; ECOS takes many "
                         "minutes at d = 1000, n = 1e4)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    header = (f"{'family':9s} {'set':13s} {'n':>8s} {'d':>5s} {'fast s':>8s} {'iters':>6s} "
              f"{'passes':>7s} {'mem/X':>6s} {'ECOS s':>8s} {'Clar. s':>8s} {'Clar/fast':>9s} "
              f"{'rel gap':>9s}")
    print(header)
    print("-" * len(header))
    for n in args.n:
        for family in args.families:
            X, y = make_data(family, n, args.d, rng, rho=args.rho)
            for set_id in args.perturbations:
                prob = fc.AdversarialProblem(X, y, family=family, perturbation=SETS[set_id](args.d),
                                             eps=0.0, alpha=args.alpha)
                top = radius_scale(X, y, family, SETS[set_id](args.d), args.alpha)
                eps = args.eps_fraction * (top if np.isfinite(top) else 1)
                try:
                    fast, t_fast, peak = fast_solve(
                        lambda X=X, y=y, family=family, set_id=set_id, eps=eps:
                        fc.AdversarialProblem(X, y, family=family,
                                              perturbation=SETS[set_id](args.d), eps=eps,
                                              alpha=args.alpha),
                        args.repeat)
                except fc.SolverError as exc:  # e.g. separable classes when n <= d
                    print(f"{family:9s} {set_id:13s} {n:8d} {args.d:5d}  no solution: "
                          f"{exc.status}", flush=True)
                    continue
                prob = prob.with_params(eps=eps)
                unit = pass_time(X)  # after the solves: the same state of the machine
                row = (f"{family:9s} {set_id:13s} {n:8d} {args.d:5d} {t_fast:8.3f} "
                       f"{fast.n_iter:6d} {t_fast / unit:7.1f} {peak / X.nbytes:6.2f}")
                if n * args.d <= args.cvxpy_max_size:
                    objectives, cells = [], []
                    for solver in ("ECOS", "CLARABEL"):
                        if solver not in args.cvxpy_solvers:
                            cells.append(f"{'-':>8s}")
                            continue
                        try:
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore")
                                res, secs = timed(lambda prob=prob, solver=solver: fc.solve(
                                    prob, backend="cvxpy", solver=solver))
                            objectives.append(res.objective)
                            cells.append(f"{secs:8.3f}")
                        except fc.SolverError:
                            secs = np.nan
                            cells.append(f"{'failed':>8s}")
                    best = min(objectives) if objectives else np.nan
                    gap = (fast.objective - best) / abs(best)
                    # the ratio to the last solver run (Clarabel unless it was left out)
                    row += f" {cells[0]} {cells[1]} {secs / t_fast:9.1f} {gap:9.1e}"
                else:
                    row += f" {'-':>8s} {'-':>8s} {'-':>9s} {'-':>9s}"
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
