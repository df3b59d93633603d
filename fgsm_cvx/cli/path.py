"""Solve along a path of attack radii and print (or plot) it.

By default the radii are --n-eps values log-spaced from eps_max, the smallest radius at
which every coefficient is zero (the adversarial analogue of glmnet's lambda_max,

    eps_max = || sum_i w_i l'_i x_i || / ((1 - alpha) sum_i w_i |l'_i|)

at the intercept-only fit), down to --eps-min-ratio * eps_max; --eps takes an explicit
list instead. Each solve is warm-started from the previous one
(fgsm_cvx.adversarial_path). The table lists eps, the robust objective, the number of
nonzero coefficients and the certificate (the relative duality gap for the cvxpy
backend, the gradient-mapping residual for the fast one). --plot draws the coefficient paths (needs
matplotlib).

Examples
--------
  fgsm-cvx path cancer.csv --target diagnosis --family logistic --n-eps 20
  fgsm-cvx path data.csv -t y -f gaussian -p l2 --eps 0.5,0.2,0.1,0.05 --json
  fgsm-cvx path data.csv -t y -f huber --plot huber_path.png
"""

from __future__ import annotations

import numpy as np

from ._args import add_data_arguments, add_output_arguments, progress
from ._io import UsageError, float_list, format_number, load_data, positive_float, print_json

HELP = "solve along a path of radii from eps_max down; table, --plot, --json"


def add_arguments(parser):
    add_data_arguments(parser, eps=False)
    parser.add_argument("--eps", "-e", metavar="E1,E2,...",
                        help="explicit radii (comma-separated) instead of the default grid")
    parser.add_argument("--n-eps", type=int, default=20, metavar="N",
                        help="number of radii in the default grid")
    parser.add_argument("--eps-min-ratio", default="1e-2", metavar="R",
                        help="smallest radius of the default grid, as a fraction of eps_max")
    parser.add_argument("--plot", metavar="PNG", help="write the coefficient paths to PNG")
    add_output_arguments(parser)


def certificate_value(cert):
    """The number that certifies a solution, scale-free.

    The relative duality gap |gap| / max(1, |objective|) (cvxpy backend), else the
    fast path's gradient-mapping residual.
    """
    return cert.relative_gap if cert.relative_gap is not None else cert.residual


def run(args):
    import fgsm_cvx as fc

    eps = None if args.eps is None else float_list(args.eps, "--eps")
    if args.n_eps < 1:
        raise UsageError(f"--n-eps must be a positive integer, got {args.n_eps}")
    ratio = positive_float(args.eps_min_ratio, "--eps-min-ratio", allow_zero=False)
    if ratio >= 1.0:
        raise UsageError(f"--eps-min-ratio must be in (0, 1), got {args.eps_min_ratio!r}")
    data = load_data(args)
    prob = fc.AdversarialProblem(data["X"], data["y"], family=data["family"],
                                 perturbation=data["perturbation"], eps=0.0,
                                 alpha=data["alpha"], fit_intercept=data["fit_intercept"])
    try:
        path = fc.adversarial_path(prob, eps=eps, n_eps=args.n_eps, eps_min_ratio=ratio,
                                   backend=args.backend, solver=args.solver,
                                   verbose=progress(args))
    except ValueError as err:  # (eps_grid's message names its Python argument)
        if eps is not None or "no default grid" not in str(err):
            raise
        raise UsageError(str(err).replace("with eps=[...]", "with --eps E1,E2,...")) from None
    if args.plot:
        save_path_plot(path, data["names"], args.plot,
                       f"{data['family'].name}, {args.perturbation}: coefficient paths")
    rows = [{"eps": float(e), "objective": float(o), "n_nonzero": int(k),
             "certificate": certificate_value(r.certificate), "gap": r.certificate.gap,
             "residual": r.certificate.residual, "status": r.status,
             "intercept": float(b), "coef": [float(c) for c in coefs]}
            for e, o, k, r, b, coefs in zip(path.eps, path.objectives, path.n_nonzero,
                                            path.results, path.intercepts, path.coefs,
                                            strict=True)]
    if args.json:
        print_json({"eps_max": path.eps_max, "feature_names": data["names"], "path": rows,
                    "plot": args.plot})
        return 0
    n, d = data["X"].shape
    top = "" if not np.isfinite(path.eps_max) else f"; eps_max = {path.eps_max:.6g}"
    print(f"eps path: {data['family'].name}, perturbation {args.perturbation}, "
          f"{n} samples, {d} features{top}")
    # (the label of the solved radii: the eps_max point, solved by no solver, carries a
    # residual of 0 whatever the backend)
    solved = [r for r in path.results if r.solver != "eps_max"] or path.results
    label = "rel. gap" if solved[-1].certificate.gap is not None else "residual"
    print(f"{'eps':>12} {'objective':>14} {'nonzeros':>9} {label:>10}  status")
    for row in rows:
        print(f"{row['eps']:12.6g} {row['objective']:14.8g} {row['n_nonzero']:>5d}/{d:<3d} "
              f"{format_number(row['certificate'], '10.2e')}  {row['status']}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def save_path_plot(path, names, filename, title):
    """Write ``path.plot()`` to ``filename``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    path.plot(ax=ax, feature_names=names)
    log_axis(ax)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(filename, dpi=100)
    plt.close(fig)


def pyplot():
    """matplotlib.pyplot with a non-interactive backend; UsageError if not installed."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("plotting needs matplotlib: pip install 'fgsm_cvx[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_axis(ax):
    """Plain decimal labels on a log x axis, without the crowded minor-tick labels."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
