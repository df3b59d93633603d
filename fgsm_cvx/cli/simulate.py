"""Run the theory experiments: Monte Carlo of FGSM against its limit law (THEORY.md §4).

With eps_n = lam / sqrt(n), sqrt(n) (beta_hat - beta0) converges in law to the minimiser of

    Z(u) = u^T C u / 2 - u^T W + (1 - alpha) lam [kappa P'(beta0; u) + P(beta0) V^T u],

W ~ N(0, Sigma_W). The experiments (fgsm_cvx.theory.simulate) fit FGSM and the matched
penalised-likelihood twin on data drawn from a GLM design at growing n, and write one row
per (n, replicate, estimator) to --out (CSV): sqrt(n)-scaled errors, selected supports,
and the limit-law quantities. --mode quick is a smoke run (seconds), --mode full the
figures' run (minutes).

Examples
--------
  fgsm-cvx simulate --mode quick --out sim.csv
  fgsm-cvx simulate --family logistic --lam 1.0 --mode full --out sim.csv --seed 1
"""

from __future__ import annotations

from ._args import add_output_arguments
from ._io import UsageError, parse_family, positive_float, print_json

HELP = "the theory experiments (Monte Carlo vs the limit law), quick or full"

MODES = {
    # sample sizes and replicates per mode
    "quick": {"ns": (200, 800), "reps": 20},
    "full": {"ns": (250, 1000, 4000, 16000), "reps": 500},
}
NOT_AVAILABLE = "fgsm_cvx.theory is not available in this installation"


def add_arguments(parser):
    parser.add_argument("--mode", choices=tuple(MODES), default="quick",
                        help="quick: a smoke run in seconds; full: the figures' run")
    parser.add_argument("--family", "-f", default="gaussian", metavar="F",
                        help="family of the simulated GLM")
    parser.add_argument("--lam", default="1.0", metavar="L",
                        help="eps_n = lam / sqrt(n)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", "-o", metavar="CSV", help="write the results table here")
    add_output_arguments(parser)


def run(args):
    try:
        from fgsm_cvx import theory
    except ImportError:
        raise UsageError(NOT_AVAILABLE) from None
    family = parse_family(args.family)
    lam = positive_float(args.lam, "--lam")
    mode = MODES[args.mode]
    try:
        design = theory.GLMDesign(family=family.name)
        simulate = theory.simulate
    except AttributeError as exc:
        raise UsageError(f"{NOT_AVAILABLE} ({exc})") from None
    frame = simulate(design, ns=mode["ns"], lam=lam, reps=mode["reps"],
                     estimators=("fgsm", "penalized"), seed=args.seed)
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
