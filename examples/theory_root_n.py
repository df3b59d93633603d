"""Root-n consistency of FGSM along eps_n = lam / sqrt(n), and the biased limit at fixed eps.

docs/theory.md §4, item 1. With eps_n = lam / sqrt(n), sqrt(n)(theta_hat - theta0) converges in
law to argmin_u Z(u), so sqrt(n) * RMSE is flat in n (at the limit-law value) while the
RMSE itself falls like 1 / sqrt(n). With eps fixed, theta_hat converges to the minimiser of
the population robust objective, which is not theta0: the RMSE levels off at that bias and
sqrt(n) * RMSE grows like sqrt(n).

Designs: gaussian (normal noise, sigma = 1) and logistic, x ~ N(0, I_4),
beta0 = (1, -0.5, 0, 0), b0 = 0.5; lam = 1; fixed eps = 0.1. RMSE is that of the whole
vector (coefficients and intercept). Run::

    python examples/theory_root_n.py [--quick] [--out-dir DIR]

writes ``theory_root_n.png`` in DIR (default examples/figures/).
"""

import os
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _figures import run, save_figure  # noqa: E402

from fgsm_cvx.theory import GLMDesign, sample_limit_law, simulate  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "figures"
LAM, FIXED_EPS = 1.0, 0.1
DESIGNS = {
    "gaussian": GLMDesign("gaussian", [1.0, -0.5, 0.0, 0.0], intercept=0.5),
    "logistic": GLMDesign("logistic", [1.0, -0.5, 0.0, 0.0], intercept=0.5),
}


def total_rmse(frame):
    """sqrt(n) RMSE of the whole vector: sqrt(sum_j rmse_j^2), per n."""
    return frame.assign(ms=frame.rmse**2).groupby("n").ms.sum().pipe(np.sqrt)


def main(quick=False, out_dir=DEFAULT_OUT):
    ns = [200, 800] if quick else [400, 1600, 6400]
    reps = 16 if quick else 150
    n_jobs = 1 if quick else min(2, os.cpu_count() or 1)  # workers cost seconds to start
    rows = []
    for family, design in DESIGNS.items():
        for label, lam, rate in (("eps = lam/sqrt(n)", LAM, 0.5), ("fixed eps", FIXED_EPS, 0.0)):
            frame = simulate(design, ns, lam, reps, estimators=("fgsm",), eps_rate=rate,
                             seed=1, n_jobs=n_jobs)
            for n, value in total_rmse(frame).items():
                rows.append((family, label, n, value, value / np.sqrt(n)))
    limit = {f: float(np.sqrt(np.mean(np.sum(sample_limit_law(
        d, LAM, n_draws=300 if quick else 3000, seed=2) ** 2, axis=1))))
        for f, d in DESIGNS.items()}

    print(f"{'family':>9} {'schedule':>18} {'n':>6} {'sqrt(n) RMSE':>13} {'RMSE':>9}")
    for family, label, n, s, r in rows:
        print(f"{family:>9} {label:>18} {n:6d} {s:13.3f} {r:9.4f}")
    for family, value in limit.items():
        print(f"{family:>9} {'limit law':>18} {'inf':>6} {value:13.3f}")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colors = {"gaussian": "C0", "logistic": "C1"}
    for family, color in colors.items():
        for label, style in (("eps = lam/sqrt(n)", "-o"), ("fixed eps", "--s")):
            pts = np.array([(n, s, r) for f, lb, n, s, r in rows if f == family and lb == label])
            axes[0].plot(pts[:, 0], pts[:, 1], style, color=color, label=f"{family}, {label}")
            axes[1].plot(pts[:, 0], pts[:, 2], style, color=color, label=f"{family}, {label}")
        axes[0].axhline(limit[family], color=color, lw=0.8, ls=":")
    n_grid = np.array([ns[0], ns[-1]], dtype=float)
    ref = [r for f, lb, n, s, r in rows if lb == "eps = lam/sqrt(n)" and n == ns[0]]
    axes[1].plot(n_grid, max(ref) * np.sqrt(ns[0] / n_grid), "k:", lw=1, label="1/sqrt(n)")
    axes[0].set(xscale="log", yscale="log", xlabel="n", ylabel="sqrt(n) * RMSE",
                title="sqrt(n) RMSE: flat (dotted: limit law) vs growing")
    axes[1].set(xscale="log", yscale="log", xlabel="n", ylabel="RMSE",
                title="RMSE: 1/sqrt(n) vs a biased limit")
    for ax in axes:
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_dir, "theory_root_n.png")
    return rows


if __name__ == "__main__":
    run(main, __doc__, DEFAULT_OUT)
