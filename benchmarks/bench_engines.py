"""The fast path on each engine: the same problem on numpy, dask (a local cluster of 2
workers) and, when a GPU is present, CuPy and torch.

Prints, per engine, the time of one X^T (X v) pass on that engine (its own products,
measured in the same run: the cost unit), the solve time, the iterations, and the time
per iteration in passes (FISTA does two passes over X per iteration, plus backtracking;
the rest is per-iteration overhead: the per-sample maps, the epigraph projection on the
host, and for dask the scheduling of one graph per evaluation). The last column is the
objective's difference from the numpy solve, relative.

    python benchmarks/bench_engines.py                         # n = 200 000, d = 50
    python benchmarks/bench_engines.py --n 2000000 --chunks 16 --family gaussian
    python benchmarks/bench_engines.py --engines numpy dask-threads array_api_strict
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

import fgsm_cvx as fc
from fgsm_cvx.engine import make_engine


def make_data(family, n, d, rng):
    X = rng.standard_normal((n, d))
    beta = rng.standard_normal(d) * (rng.random(d) < 0.3) / np.sqrt(d) * 3
    eta = X @ beta
    if family == "gaussian":
        y = eta + rng.standard_normal(n)
    else:
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return X, y


def _sync(name):
    """Wait for the GPU (timings of asynchronous device work)."""
    if name == "torch":
        import torch

        torch.cuda.synchronize()
    elif name == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def pass_time(X, name, repeats):
    """Median seconds of one X^T (X v) with the engine's own products, fetched to numpy."""
    engine = make_engine(X)
    v = np.ones(engine.shape[1])
    times = []
    for k in range(repeats + 2):  # two warm-up passes
        _sync(name)
        t0 = time.perf_counter()
        engine.fetch(engine.rmatvec(engine.matvec(v)))
        _sync(name)
        if k >= 2:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def engines(X, args):
    """(name, X on that engine) for every engine asked for and available (a dask cluster
    lives while its entry is being used)."""
    for name in args.engines:
        if name == "numpy":
            yield name, X
        elif name in ("dask", "dask-threads"):
            import dask.array as da

            chunks = (-(-X.shape[0] // args.chunks), X.shape[1])
            if name == "dask-threads":
                yield name, da.from_array(X, chunks=chunks)
                continue
            from dask.distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            with cluster, Client(cluster), warnings.catch_warnings():
                # sending X to the workers once is the point here (real data would be
                # read by the workers from storage): not a warning
                warnings.filterwarnings("ignore", "Sending large graph")
                # the chunks live on the workers; only O(d) travels per evaluation
                yield name, da.from_array(X, chunks=chunks).persist()
        elif name == "array_api_strict":
            import array_api_strict

            yield name, array_api_strict.asarray(X)
        elif name in ("torch", "cupy"):
            try:
                if name == "torch":
                    import torch

                    if not torch.cuda.is_available():
                        raise RuntimeError("no CUDA device")
                    Xg = torch.asarray(X, device="cuda")
                else:
                    import cupy

                    Xg = cupy.asarray(X)
            except Exception as exc:  # not installed, or no device
                print(f"# {name}: skipped ({type(exc).__name__}: {exc})", flush=True)
                continue
            yield name, Xg
        else:
            raise ValueError(f"unknown engine {name!r}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--chunks", type=int, default=8, help="row chunks of the dask array")
    ap.add_argument("--family", default="binomial", choices=["binomial", "gaussian"])
    ap.add_argument("--perturbation", default="linf")
    ap.add_argument("--eps-fraction", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--engines", nargs="+", default=["numpy", "dask", "cupy", "torch"])
    args = ap.parse_args(argv)
    X, y = make_data(args.family, args.n, args.d, np.random.default_rng(0))
    prob = fc.AdversarialProblem(X, y, family=args.family, perturbation=args.perturbation,
                                 eps=0.0)
    eps = args.eps_fraction * fc.eps_max(prob)
    header = (f"{'engine':16s} {'n':>9s} {'d':>4s} {'pass ms':>8s} {'fast s':>8s} "
              f"{'iters':>6s} {'ms/iter':>8s} {'passes/iter':>11s} {'rel obj':>9s}")
    print(f"# {args.family}, {args.perturbation}, eps = {args.eps_fraction} eps_max, "
          f"dask: {args.chunks} row chunks")
    print(header)
    print("-" * len(header))
    reference = None
    for name, Xe in engines(X, args):
        unit = pass_time(Xe, name, args.repeats)
        problem = fc.AdversarialProblem(Xe, y, family=args.family,
                                        perturbation=args.perturbation, eps=eps)
        t0 = time.perf_counter()
        res = fc.solve(problem, backend="fast")
        elapsed = time.perf_counter() - t0
        if reference is None:
            reference = res.objective
        per_iter = elapsed / res.n_iter
        rel = (res.objective - reference) / abs(reference)
        print(f"{res.engine + (' (threads)' if name == 'dask-threads' else ''):16s} "
              f"{args.n:9d} {args.d:4d} {1e3 * unit:8.2f} {elapsed:8.2f} {res.n_iter:6d} "
              f"{1e3 * per_iter:8.2f} {per_iter / unit:11.1f} {rel:9.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
