"""BLAS threads for the fast path: one thread against the machine's default, idle and busy.

For each size (n, d) prints the time of one X^T (X v) pass and of a fast solve
(``--families``, `linf`, eps = 0.2 eps_max) with BLAS limited to one thread and with
BLAS as configured (the package's own rule, ``engine.blas_threads``, switched off for
the measurement), and their ratio default / one thread (> 1: one thread is faster).
``--load K`` runs K busy processes meanwhile, as another user's work on a shared
machine would. The rule takes one thread for dense X of at most
``engine.SINGLE_THREAD_ENTRIES`` entries: where the idle ratio is about 1 or more.

    python benchmarks/bench_threads.py                     # idle
    python benchmarks/bench_threads.py --load 1            # one core busy
    python benchmarks/bench_threads.py --sizes 1000000x50 --families binomial
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np
from bench_fast import make_data, radius_scale
from threadpoolctl import ThreadpoolController

import fgsm_cvx as fc
from fgsm_cvx import engine as fc_engine


def _busy():  # another user's work: one core, until terminated
    while True:
        pass


def fastest(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+",
                        default=["10000x50", "20000x20", "100000x50", "400000x50"])
    parser.add_argument("--families", nargs="+", default=["binomial", "gaussian", "hinge"])
    parser.add_argument("--load", type=int, default=0, help="busy processes meanwhile")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rule = fc_engine.SINGLE_THREAD_ENTRIES
    fc_engine.SINGLE_THREAD_ENTRIES = 0  # the rule off: the two settings chosen here
    controller = ThreadpoolController()
    busy = [mp.Process(target=_busy, daemon=True) for _ in range(args.load)]
    for p in busy:
        p.start()
    blas = controller.select(user_api="blas").info()
    print(f"BLAS: {[(b['internal_api'], b['num_threads']) for b in blas]}, "
          f"busy processes: {args.load}, rule threshold "
          f"{rule} entries")
    print(f"{'n':>8} {'d':>5} {'what':>9} {'1 thread ms':>12} {'default ms':>11} "
          f"{'default/1':>9}")
    try:
        rng = np.random.default_rng(0)
        for size in args.sizes:
            n, d = (int(float(v)) for v in size.split("x"))
            X = rng.standard_normal((n, d))
            v = rng.standard_normal(d)
            rows = [("pass", lambda X=X, v=v: X.T @ (X @ v), 10)]
            for family in args.families:
                if family == "hinge" and n > 20_000:
                    continue  # (its radius needs a conic program per size: slow)
                Xf, y = make_data(family, n, d, np.random.default_rng(1))
                eps = 0.2 * radius_scale(Xf, y, family, fc.Linf())
                rows.append((family, lambda Xf=Xf, y=y, f=family, e=eps: fc.solve(
                    fc.AdversarialProblem(Xf, y, family=f, eps=e), backend="fast"),
                    args.repeat))
            for what, fn, repeat in rows:
                fn()  # warm-up
                with controller.limit(limits=1, user_api="blas"):
                    one = fastest(fn, repeat)
                default = fastest(fn, repeat)
                print(f"{n:>8} {d:>5} {what:>9} {one * 1e3:12.2f} {default * 1e3:11.2f} "
                      f"{default / one:9.2f}", flush=True)
    finally:
        for p in busy:
            p.terminate()


if __name__ == "__main__":
    main()
