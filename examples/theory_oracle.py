"""Weakly oracle: P(beta_hat_j = 0) for a true zero tends to the limit-law value, not to 1.

docs/theory.md §4, item 2. Along eps_n = lam / sqrt(n), FGSM sets a true-zero coefficient to
exactly 0 with a probability that converges to P(u*_j = 0) under the limit law
argmin_u Z(u), strictly between 0 and 1. Selection becomes consistent when the penalty on
a true zero, times sqrt(n), diverges:

* adaptive FGSM (weights 1 / |beta_mle_j|, ``fc.adaptive_fgsm``) at the same eps_n: the
  weight of a true zero grows like sqrt(n), so P(zero) -> 1;
* SCAD (generalized FGSM, Fan and Li's lambda_n = eps_n, by the one-step LLA from the
  MLE) at eps_n = lam n^(-1/4): sqrt(n) eps_n -> inf, so P(zero) -> 1; at
  eps_n = lam / sqrt(n) it stays weakly oracle, with the true nonzeros left unpenalised
  (no sqrt(n)-scaled bias, unlike FGSM and adaptive FGSM).

Design: gaussian, sigma = 1, x ~ N(0, I_4), beta0 = (1, -0.5, 0, 0), b0 = 0; lam = 0.5.
P(zero) is averaged over the two true zeros. Run::

    python examples/theory_oracle.py [--quick] [--out-dir DIR]

writes ``theory_oracle.png`` in DIR (default examples/figures/).
"""

import os
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _figures import run, save_figure  # noqa: E402

from fgsm_cvx.theory import GLMDesign, sample_limit_law, simulate, zero_threshold  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "figures"
LAM = 0.5
DESIGN = GLMDesign("gaussian", [1.0, -0.5, 0.0, 0.0])
ZEROS, NONZEROS = ["x2", "x3"], ["x0", "x1"]
RUNS = (  # label, estimator, eps_rate
    ("FGSM, eps_n = lam/sqrt(n)", "fgsm", 0.5),
    ("adaptive FGSM, eps_n = lam/sqrt(n)", "adaptive", 0.5),
    ("SCAD (one-step LLA), eps_n = lam/sqrt(n)", "scad", 0.5),
    ("SCAD (one-step LLA), eps_n = lam n^(-1/4)", "scad", 0.25),
)


def main(quick=False, out_dir=DEFAULT_OUT):
    ns = [100, 400] if quick else [100, 400, 1600, 6400]
    reps = 12 if quick else 100
    n_jobs = 1 if quick else min(2, os.cpu_count() or 1)  # workers cost seconds to start
    frames = {}
    for label, estimator, rate in RUNS:
        frames[label] = simulate(DESIGN, ns, LAM, reps, estimators=(estimator,),
                                 eps_rate=rate, seed=5, n_jobs=n_jobs)
    m = 400 if quick else 4000
    draws = sample_limit_law(DESIGN, LAM, n_draws=m, seed=6)
    zero = np.abs(draws[:, 2:4]) <= zero_threshold(draws[:, :4])
    p_limit = float(zero.mean())
    se_limit = float(zero.mean(axis=1).std() / np.sqrt(m))

    print(f"limit law (FGSM): P(zero) = {p_limit:.3f} (se {se_limit:.3f})")
    print(f"{'estimator':>41} {'n':>6} {'P(zero), true 0':>16} {'sqrt(n)|bias|, true != 0':>25}")
    summary = {}
    for label, frame in frames.items():
        p = frame[frame.coordinate.isin(ZEROS)].groupby("n").p_zero.mean()
        bias = frame[frame.coordinate.isin(NONZEROS)].assign(b=lambda f: f.bias.abs()) \
            .groupby("n").b.mean()
        summary[label] = (p, bias)
        for n in ns:
            print(f"{label:>41} {n:6d} {p[n]:16.3f} {bias[n]:25.3f}")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for k, (label, (p, bias)) in enumerate(summary.items()):
        # binomial standard error of a mean over 2 coordinates x reps draws (upper bound)
        se = np.sqrt(p * (1 - p) / reps)
        axes[0].errorbar(p.index, p.values, yerr=2 * se, fmt="-o", color=f"C{k}", label=label,
                         capsize=3)
        axes[1].plot(bias.index, bias.values, "-o", color=f"C{k}", label=label)
    axes[0].axhspan(p_limit - 2 * se_limit, p_limit + 2 * se_limit, color="0.8")
    axes[0].axhline(p_limit, color="k", lw=1, ls=":", label="limit law of FGSM")
    axes[0].set(xscale="log", ylim=(0, 1.05), xlabel="n", ylabel="P(beta_hat_j = 0), true zeros",
                title="selection of the true zeros")
    axes[1].set(xscale="log", xlabel="n", ylabel="sqrt(n) |bias|, true nonzeros",
                title="sqrt(n)-scaled bias of the kept coefficients")
    for ax in axes:
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].legend(fontsize=7, loc="center right")
    fig.tight_layout()
    save_figure(fig, out_dir, "theory_oracle.png")
    return summary, p_limit


if __name__ == "__main__":
    run(main, __doc__, DEFAULT_OUT)
