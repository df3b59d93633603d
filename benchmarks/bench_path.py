"""Warm-started eps path vs independent cold solves at the same radii.

For each family and backend, times ``fc.adversarial_path`` over ``--n-eps`` radii and
the same radii solved one by one from scratch (a new AdversarialProblem per radius:
a fresh cvxpy canonicalisation, or a fast-path solve without warm start), and prints
the ratio cold / path and the largest relative objective difference between them. Each
is timed ``--repeat`` times on fresh problems (no shared caches) and the fastest counts.
For the fast backend it also prints two floors, each radius solved again from its own
solution: on a new problem per radius (``floor``, the set-up paid as by a cold solve),
and on the path's own problem (``own``: ``with_params`` shares the problem's caches, as
the path's radii do), what no warm start of a solve along the path can beat; cold /
own is the most such a path could save. ``followed`` counts the radii answered by the
gaussian path's active-set method (``fgsm_cvx/fast/active_set.py``), which follows the
solutions from radius to radius without a solve and so can go below that floor.

    python benchmarks/bench_path.py                    # n = 2000, d = 20, 50 radii
    python benchmarks/bench_path.py --n 20000 --backends fast
    python benchmarks/bench_path.py --d 50 --rho 0.9 --backends fast   # correlated columns
    python benchmarks/bench_path.py --dataset breast_cancer --families binomial hinge \
        --backends fast                         # scikit-learn's bundled data, standardised
    python benchmarks/bench_path.py --dataset regression --n 1000 --n-eps 20 \
        --families gaussian huber --backends fast   # high signal-to-noise least squares
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_fast import make_data

import fgsm_cvx as fc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--n-eps", type=int, default=50)
    parser.add_argument("--rho", type=float, default=0.0,
                        help="AR(1) correlation between neighbouring features (default 0)")
    parser.add_argument("--families", nargs="+", default=["gaussian", "binomial", "poisson"])
    parser.add_argument("--backends", nargs="+", default=["cvxpy", "fast"])
    parser.add_argument("--dataset", choices=["synthetic", "regression", "breast_cancer",
                                              "digits", "diabetes"], default="synthetic",
                        help="synthetic (n, d, rho as given); regression: scikit-learn's "
                             "make_regression (n, d, half the features informative, noise "
                             "5: high signal-to-noise, gaussian/huber); or a bundled "
                             "scikit-learn data set, standardised (digits: labels >= 5 "
                             "against the rest, diabetes: the response standardised; "
                             "binomial/hinge and gaussian/huber respectively)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each (path and cold solves, on fresh problems); the "
                             "fastest counts")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.dataset}: n={args.n} d={args.d} rho={args.rho} radii={args.n_eps}"
          if args.dataset in ("synthetic", "regression")
          else f"{args.dataset}: radii={args.n_eps}")
    print(f"{'family':>9} {'backend':>7} {'path s':>8} {'cold s':>8} {'cold/path':>9} "
          f"{'max rel obj diff':>16} {'floor s':>8} {'cold/floor':>10} {'own s':>7} "
          f"{'cold/own':>8} {'followed':>8}")
    for family in args.families:
        if args.dataset == "synthetic":
            X, y = make_data(family, args.n, args.d, rng, rho=args.rho)
        elif args.dataset == "regression":
            from sklearn.datasets import make_regression

            X, y = make_regression(args.n, args.d, n_informative=max(args.d // 2, 1),
                                   noise=5.0, random_state=0)
        else:
            X, y = bundled(args.dataset)
        prob = fc.AdversarialProblem(X, y, family=family)
        grid = fc.eps_grid(prob, args.n_eps)
        for backend in args.backends:
            t_path = t_cold = t_floor = t_own = np.inf
            for _ in range(args.repeat):  # the fastest run: slower ones measure other users
                t0 = time.perf_counter()
                path = fc.adversarial_path(fc.AdversarialProblem(X, y, family=family),
                                           eps=grid, backend=backend, verbose=False)
                t_path = min(t_path, time.perf_counter() - t0)
                # radii answered by the gaussian path's active-set method
                followed = sum(r.solver == "active-set" for r in path.results)
                t0 = time.perf_counter()
                cold = [fc.solve(fc.AdversarialProblem(X, y, family=family, eps=e),
                                 backend=backend).objective for e in grid]
                t_cold = min(t_cold, time.perf_counter() - t0)
                if backend == "fast":  # (an interior-point solve cannot be warm started)
                    t_floor = min(t_floor, floor(X, y, family, path))
                    t_own = min(t_own, floor(X, y, family, path, shared=True))
            diff = np.max(np.abs(path.objectives - cold) / np.maximum(1e-12, np.abs(cold)))
            print(f"{family:>9} {backend:>7} {t_path:8.2f} {t_cold:8.2f} "
                  f"{t_cold / t_path:9.1f} {diff:16.1e} {t_floor:8.2f} "
                  f"{t_cold / t_floor:10.1f} {t_own:7.2f} {t_cold / t_own:8.1f} "
                  f"{followed:8d}")


def floor(X, y, family, path, shared=False):
    """Seconds to solve each radius of ``path`` again from its own solution: the fast
    path's least cost for a radius however good its warm start (the exact step or a
    first-order step certifies the given solution; the certificate's objective and the
    Result are paid as by any solve). One new problem per radius, as the cold solves
    have (the set-up paid each time); with ``shared``, the radii of one problem
    (``with_params``), whose caches (the Gram matrix, X^T w, the step size) they share
    as the path's radii do: that floor bounds what any warm-started path can gain. The
    first radius is solved cold, as the path solves it (no radius before it): at the
    grid's eps_max a hinge solve from its own solution took 0.7-0.9 s at n = 2e4,
    d = 20, against 24 ms cold (the solution there is not unique: the cold solve's
    coefficients were ~0.1, and from them the last try's program grew to 7700
    samples), most of the floor."""
    base = fc.AdversarialProblem(X, y, family=family) if shared else None
    t0 = time.perf_counter()
    for k, (e, res) in enumerate(zip(path.eps, path.results, strict=True)):
        prob = base.with_params(eps=e) if shared else \
            fc.AdversarialProblem(X, y, family=family, eps=e)
        fc.solve(prob, backend="fast", warm_start=res if k else None)
    return time.perf_counter() - t0


def bundled(name):
    """(X standardised, y) of a scikit-learn data set shipped with the package."""
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X = X[:, X.std(axis=0) > 0]  # (digits: constant pixels)
    if name == "digits":
        y = (y >= 5).astype(float)
    elif name == "diabetes":
        y = (y - y.mean()) / y.std()
    return StandardScaler().fit_transform(X), y


if __name__ == "__main__":
    main()
