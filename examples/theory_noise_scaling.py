"""Automatic noise scaling: FGSM's selection does not depend on the noise level; the Lasso's does.

docs/theory.md §4, item 3. FGSM at eps_n = lam / sqrt(n) behaves like a Lasso with penalty
lam kappa / sqrt(n), where kappa = E|l'| = sigma sqrt(2/pi) for gaussian noise of sd sigma:
the effective penalty grows with the noise, as the square-root Lasso's does. The score W
grows with sigma too, so the limit law of sqrt(n)(beta_hat - beta0) / sigma, and with it
P(beta_hat_j = 0), is the same for every sigma. A Lasso at a fixed penalty (here matched to
FGSM at sigma = 1: lam' = lam sqrt(2/pi) / sqrt(n)) selects more and more noise variables as
sigma grows (its penalty falls behind the score) and drops nearly all of them as sigma
shrinks (its penalty is then large): its selection depends on a noise level it is not told.

Design: gaussian, x ~ N(0, I_6), beta0 = (1, -0.5, 0, 0, 0, 0), b0 = 0; n = 400; lam = 1;
sigma in {0.5, 1, 2, 4}. Run::

    python examples/theory_noise_scaling.py [--quick] [--out-dir DIR]

writes ``theory_noise_scaling.png`` in DIR (default examples/figures/).
"""

import os
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _figures import run, save_figure  # noqa: E402

from fgsm_cvx.theory import GLMDesign, limit_quantities, sample_limit_law, simulate  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "figures"
LAM, N = 1.0, 400
BETA0 = [1.0, -0.5, 0.0, 0.0, 0.0, 0.0]
ZEROS = ["x2", "x3", "x4", "x5"]


def main(quick=False, out_dir=DEFAULT_OUT):
    sigmas = [0.5, 4.0] if quick else [0.5, 1.0, 2.0, 4.0]
    reps = 16 if quick else 200
    n_jobs = 1 if quick else min(2, os.cpu_count() or 1)  # workers cost seconds to start
    # the Lasso's fixed level: the twin's kappa at sigma = 1, whatever the true sigma
    fixed = limit_quantities(GLMDesign("gaussian", BETA0))
    rows = []
    for sigma in sigmas:
        design = GLMDesign("gaussian", BETA0, noise_scale=sigma)
        frame = simulate(design, [N], LAM, reps, estimators=("fgsm", "penalized"), seed=11,
                         n_jobs=n_jobs, quantities=fixed)
        for est, label in (("fgsm", "FGSM (eps = lam/sqrt(n))"),
                           ("penalized", "Lasso, fixed penalty")):
            part = frame[frame.estimator == est].set_index("coordinate")
            # P(zero) over the true zeros; sqrt(n) RMSE of the coefficient vector / sigma
            coefs = [c for c in part.index if c != "intercept"]
            rows.append((sigma, label, float(part.loc[ZEROS].p_zero.mean()),
                         float(np.sqrt(np.sum(part.loc[coefs].rmse ** 2))) / sigma))
    draws = sample_limit_law(GLMDesign("gaussian", BETA0), LAM, n_draws=400 if quick else 3000,
                             seed=12)
    p_limit = float(np.mean(np.abs(draws[:, 2:6]) <= 1e-6 * (1 + np.abs(draws[:, :6]).max(
        axis=1, keepdims=True))))

    print(f"limit law of FGSM (any sigma): P(zero) = {p_limit:.3f}")
    print(f"{'sigma':>6} {'estimator':>26} {'P(zero), true zeros':>20} "
          f"{'sqrt(n) RMSE / sigma':>21}")
    for sigma, label, p0, err in rows:
        print(f"{sigma:6.2f} {label:>26} {p0:20.3f} {err:21.3f}")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for k, label in enumerate(("FGSM (eps = lam/sqrt(n))", "Lasso, fixed penalty")):
        pts = np.array([(s, p0, err) for s, lb, p0, err in rows if lb == label])
        se0 = np.sqrt(pts[:, 1] * (1 - pts[:, 1]) / reps)  # upper bound (4 coordinates)
        axes[0].errorbar(pts[:, 0], pts[:, 1], yerr=2 * se0, fmt="-o", color=f"C{k}",
                         capsize=3, label=label)
        axes[1].plot(pts[:, 0], pts[:, 2], "-o", color=f"C{k}", label=label)
    axes[0].axhline(p_limit, color="k", ls=":", lw=1, label="limit law of FGSM")
    axes[0].set(xscale="log", ylim=(-0.02, 1.02), xlabel="noise sd sigma",
                ylabel="P(beta_hat_j = 0), true zeros", title=f"noise variables dropped (n = {N})")
    axes[1].set(xscale="log", xlabel="noise sd sigma", ylabel="sqrt(n) RMSE / sigma",
                title="coefficient error in units of the noise", ylim=(0, None))
    for ax in axes:
        ax.set_xticks(sigmas, [str(s) for s in sigmas])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_dir, "theory_noise_scaling.png")
    return rows, p_limit


if __name__ == "__main__":
    run(main, __doc__, DEFAULT_OUT)
