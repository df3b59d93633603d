"""The evidence for backend="auto"'s size rule: one solve per shape, fast path vs cvxpy.

For each shape n x d and family, solves one problem (eps = 0.2 eps_max, each set of
``--perturbations``) with the fast path (best of ``--repeat`` solves of the same problem)
and with the cvxpy backend (``--solver``, ECOS by default as in ``fc.solve``), and prints
both times, their ratio cvxpy / fast, the relative objective difference and the backend
``auto`` picks for the shape (``fgsm_cvx.solve``'s rule). Problems without a minimiser
(separable classes) print as such.

    python benchmarks/bench_auto.py
    python benchmarks/bench_auto.py --shapes 100x10 500x20 --families gaussian hinge
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from bench_fast import SETS, make_data

import fgsm_cvx as fc
from fgsm_cvx.solve import resolve_backend

SHAPES = ["50x5", "100x10", "200x10", "250x20", "100x50", "500x20", "1000x10", "2500x2",
          "200x100", "100x100", "100x200", "50x200", "200x500", "300x300"]


def timed(prob, **kwargs):
    """(fc.solve(prob, **kwargs), seconds)."""
    t0 = time.perf_counter()
    out = fc.solve(prob, **kwargs)
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=SHAPES, help="n x d, e.g. 200x10")
    ap.add_argument("--families", nargs="+",
                    default=["gaussian", "binomial", "huber", "poisson", "hinge"])
    ap.add_argument("--perturbations", nargs="+", default=["linf", "l2"])
    ap.add_argument("--solver", default="ECOS", help="the cvxpy backend's conic solver")
    ap.add_argument("--repeat", type=int, default=2, help="fast solves per problem")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(1)
    print(f"{'n x d':>9s} {'family':9s} {'set':5s} {'fast ms':>8s} {'iters':>6s} "
          f"{args.solver + ' ms':>9s} {'ratio':>6s} {'rel diff':>9s} auto")
    for shape in args.shapes:
        n, d = (int(v) for v in shape.split("x"))
        for family in args.families:
            X, y = make_data(family, n, d, rng)
            for set_id in args.perturbations:
                prob = fc.AdversarialProblem(X, y, family=family,
                                             perturbation=SETS[set_id](d))
                prob = prob.with_params(eps=0.2 * fc.eps_max(prob))
                label = f"{shape:>9s} {family:9s} {set_id:5s}"
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fast, t_fast = timed(prob, backend="fast")
                        for _ in range(args.repeat - 1):
                            t_fast = min(t_fast, timed(prob, backend="fast")[1])
                        ref, t_ref = timed(prob, backend="cvxpy", solver=args.solver)
                except fc.SolverError as err:
                    print(f"{label}  no solution ({err.status})")
                    continue
                diff = (fast.objective - ref.objective) / (1.0 + abs(ref.objective))
                print(f"{label} {1e3 * t_fast:8.1f} {fast.n_iter:6d} {1e3 * t_ref:9.1f} "
                      f"{t_ref / t_fast:6.1f} {diff:9.1e} {resolve_backend(prob, 'auto')}",
                      flush=True)


if __name__ == "__main__":
    main()
