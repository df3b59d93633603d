"""Run the theory experiments: Monte Carlo of FGSM next to its limit law (docs/theory.md §4).

With eps_n = lam / sqrt(n), sqrt(n) (beta_hat - beta0) converges in law to the minimiser of

    Z(u) = u^T C u / 2 - u^T W + (1 - alpha) lam [kappa P'(beta0; u) + P(beta0) V^T u],

W ~ N(0, Sigma_W). The experiments (fgsm_cvx.theory.simulate) fit FGSM and the matched
penalised-likelihood twin on data drawn from a GLM design at growing n, and write one row
per (n, estimator, coordinate) to --out (CSV): bias, sd and rmse of the sqrt(n)-scaled
error, and p_zero, the fraction of replications with that coefficient at zero. The rows
with n = inf are the same summaries of draws of the limit law (fgsm_cvx.theory.
sample_limit_law) for the estimators that have one (fgsm, penalized): the finite-n rows
approach them as n grows. --mode quick is a smoke run (seconds), --mode full a larger
one (minutes; the figures of docs/theory_simulations.md come from examples/theory_*.py).

Examples
--------
  fgsm-cvx simulate --mode quick --out sim.csv
  fgsm-cvx simulate --family logistic --lam 1.0 --mode full --n-jobs 2 --out sim.csv
  fgsm-cvx simulate --estimators fgsm,adaptive --beta0 1,0,0 --json
"""

from __future__ import annotations

from ._args import add_output_arguments, progress
from ._io import UsageError, parse_family, positive_float, print_json

HELP = "the theory experiments (Monte Carlo next to the limit law), quick or full"

MODES = {
    # sample sizes, replicates and draws of the limit law per mode
    "quick": {"ns": (200, 800), "reps": 20, "draws": 200},
    "full": {"ns": (250, 1000, 4000, 16000), "reps": 500, "draws": 4000},
}
NOT_AVAILABLE = "fgsm_cvx.theory is not available in this installation"
ESTIMATORS = ("fgsm", "penalized", "adaptive", "scad")
#: Two true signals and two true zeros: selection (p_zero) and bias are both visible.
DEFAULT_BETA0 = "1,-0.5,0,0"


def add_arguments(parser):
    parser.add_argument("--mode", choices=tuple(MODES), default="quick",
                        help="quick: a smoke run in seconds; full: larger n and more "
                             "replications (minutes)")
    parser.add_argument("--family", "-f", default="gaussian", metavar="F",
                        help="family of the simulated GLM: gaussian, logistic, poisson")
    parser.add_argument("--beta0", default=DEFAULT_BETA0, metavar="B",
                        help="true coefficients, comma-separated")
    parser.add_argument("--lam", default="1.0", metavar="L",
                        help="eps_n = lam / sqrt(n)")
    parser.add_argument("--estimators", default="fgsm,penalized", metavar="E",
                        help=f"comma-separated, from {', '.join(ESTIMATORS)}")
    parser.add_argument("--n-jobs", type=int, default=1, metavar="J",
                        help="worker processes for the replications (joblib)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", "-o", metavar="CSV", help="write the results table here")
    add_output_arguments(parser)


def _beta0(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--beta0 {text!r}: write comma-separated numbers, e.g. "
                         f"{DEFAULT_BETA0}") from None
    if not values:
        raise UsageError("--beta0 needs at least one coefficient")
    return values


def run(args):
    try:
        from fgsm_cvx import theory
    except ImportError:
        raise UsageError(NOT_AVAILABLE) from None
    try:
        family = parse_family(args.family)
    except UsageError:  # (its list of valid names is the package's, not the designs')
        family = None
    if not isinstance(family, theory.designs.DESIGN_FAMILIES):
        raise UsageError(f"--family {args.family!r}: the theory's designs are gaussian, "
                         f"logistic (binomial) and poisson")
    lam = positive_float(args.lam, "--lam")
    estimators = tuple(e.strip().lower() for e in args.estimators.split(",") if e.strip())
    unknown = sorted(set(estimators) - set(ESTIMATORS))
    if unknown or not estimators:
        raise UsageError(f"unknown estimator(s) {', '.join(unknown) or '(none)'}; valid: "
                         f"{', '.join(ESTIMATORS)}")
    if args.n_jobs < 1:
        raise UsageError("--n-jobs must be >= 1")
    mode = MODES[args.mode]
    design = theory.GLMDesign(family.name, _beta0(args.beta0))
    frame = theory.simulate(design, ns=mode["ns"], lam=lam, reps=mode["reps"],
                            estimators=estimators, seed=args.seed, n_jobs=args.n_jobs,
                            progress=progress(args) is not False)
    frame = _with_limit_law(theory, frame, design, lam, estimators, mode["draws"], args.seed)
    if args.out:
        frame.to_csv(args.out, index=False)
    if args.json:
        print_json({"mode": args.mode, "out": args.out,
                    "rows": frame.to_dict(orient="records")})
    else:
        print(frame.to_string(max_rows=40))
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _with_limit_law(theory, frame, design, lam, estimators, n_draws, seed):
    """``frame`` with rows n = inf: the summaries (``theory.summarize``) of ``n_draws``
    draws of the limit law of each estimator that has one, sqrt(n)(theta_hat - theta0)'s
    limit, so bias, sd, rmse and p_zero compare column by column."""
    import numpy as np
    import pandas as pd

    quantities = theory.limit_quantities(design)
    rows = []
    for estimator in (e for e in estimators if e in theory.limits.ESTIMATORS):
        draws = theory.sample_limit_law(design, lam, n_draws=n_draws, seed=seed,
                                        estimator=estimator, quantities=quantities)
        d = design.n_features
        zeros = np.zeros_like(draws, dtype=bool)
        zeros[:, :d] = np.abs(draws[:, :d]) <= theory.zero_threshold(draws[:, :d])
        rows.extend(theory.summarize(draws, zeros, quantities.names, float("inf"),
                                     estimator))
    return pd.concat([frame, pd.DataFrame(rows, columns=frame.columns)],
                     ignore_index=True) if rows else frame
