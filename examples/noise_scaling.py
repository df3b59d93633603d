"""FGSM scales its own penalty with the noise level: a fixed radius suits every sigma.

To first order FGSM training is the Lasso at lam = eps kappa, with kappa the mean
absolute score (docs/theory.md §4); for gaussian noise of standard deviation sigma,

    kappa = E|y - x^T beta| = sigma sqrt(2 / pi),

so a fixed attack radius eps yields a penalty proportional to sigma, as the square-root
Lasso does, while a Lasso with a fixed lam is tuned for one noise level only. For
sigma = 0.25 ... 4 this script fits, on sparse gaussian data (n = 1000, d = 20, 4 true
features), FGSM at a fixed eps and the Lasso at the fixed lam = eps sqrt(2/pi) (the
level matched at sigma = 1); it prints the matched level eps kappa_hat next to
eps sigma sqrt(2/pi) and the false positives of both, and writes noise_scaling.png.
Run: ``python examples/noise_scaling.py [--quick] [--out-dir DIR]``.
"""

import argparse
from pathlib import Path

import numpy as np

import fgsm_cvx as fc
from fgsm_cvx.penalized.diagnostics import kappa_hat

EPS = 0.08
BETA = np.concatenate([[2.0, -1.5, 1.0, 0.75], np.zeros(16)])
SUPPORT_TOL = 1e-6


def experiment(sigmas, reps, n=1000, eps=EPS):
    """Per sigma: mean matched level, mean false positives of FGSM and of the fixed Lasso."""
    lam_fixed = eps * np.sqrt(2.0 / np.pi)  # FGSM's matched level at sigma = 1
    true = np.abs(BETA) > 0
    rows = []
    for sigma in sigmas:
        lam_hat, fp_fgsm, fp_lasso, tp_fgsm, tp_lasso = [], [], [], [], []
        for rep in range(reps):
            rng = np.random.default_rng(rep)
            X = rng.standard_normal((n, BETA.shape[0]))
            y = X @ BETA + sigma * rng.standard_normal(n)
            prob = fc.AdversarialProblem(X, y, family="gaussian", perturbation="linf", eps=eps)
            fgsm = fc.solve(prob)
            lasso = fc.penalized_fit(X, y, "gaussian", "l1", lam_fixed)
            lam_hat.append(eps * kappa_hat(prob, fgsm.coef, fgsm.intercept))
            for res, fp, tp in ((fgsm, fp_fgsm, tp_fgsm), (lasso, fp_lasso, tp_lasso)):
                selected = np.abs(res.coef) > SUPPORT_TOL
                fp.append(np.sum(selected & ~true))
                tp.append(np.sum(selected & true))
        rows.append({"sigma": sigma, "lam_hat": np.mean(lam_hat),
                     "lam_theory": eps * sigma * np.sqrt(2.0 / np.pi),
                     "fp_fgsm": np.mean(fp_fgsm), "fp_lasso": np.mean(fp_lasso),
                     "tp_fgsm": np.mean(tp_fgsm), "tp_lasso": np.mean(tp_lasso)})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 noise levels, 2 replicates")
    parser.add_argument("--out-dir", default=".", help="folder for the figure")
    args = parser.parse_args(argv)
    sigmas = [0.25, 1.0, 4.0] if args.quick else [0.25, 0.5, 1.0, 2.0, 4.0]
    rows = experiment(sigmas, reps=2 if args.quick else 10)
    print(f"fixed eps = {EPS}; Lasso at the fixed lam = eps sqrt(2/pi) = "
          f"{EPS * np.sqrt(2 / np.pi):.4f}; 4 true features of 20")
    print(f"{'sigma':>6} {'eps kappa_hat':>14} {'eps sigma sqrt(2/pi)':>21} "
          f"{'false pos. FGSM':>16} {'false pos. Lasso':>17}")
    for r in rows:
        print(f"{r['sigma']:6.2f} {r['lam_hat']:14.4f} {r['lam_theory']:21.4f} "
              f"{r['fp_fgsm']:16.1f} {r['fp_lasso']:17.1f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sig = np.array([r["sigma"] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].plot(sig, [r["lam_theory"] for r in rows], color="0.5",
                 label="eps sigma sqrt(2/pi)")
    axes[0].plot(sig, [r["lam_hat"] for r in rows], "o", label="eps kappa_hat (FGSM fit)")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("noise sigma")
    axes[0].set_ylabel("matched Lasso level lam")
    axes[0].set_title("FGSM's implied penalty grows with sigma", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].plot(sig, [r["fp_fgsm"] for r in rows], "o-", label=f"FGSM, fixed eps = {EPS}")
    axes[1].plot(sig, [r["fp_lasso"] for r in rows], "s--",
                 label="Lasso, fixed lam (matched at sigma = 1)")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("noise sigma")
    axes[1].set_ylabel("false positives (of 16 null features)")
    axes[1].set_title("Selection at a fixed tuning parameter", fontsize=10)
    axes[1].legend(fontsize=8)
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    for ax in axes:  # plain decimal labels at the noise levels, no minor-tick clutter
        ax.set_xticks(sig)
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_yticks([0.02, 0.05, 0.1, 0.2])
    axes[0].yaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes[0].yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "noise_scaling.png", dpi=100)
    print(f"wrote {out / 'noise_scaling.png'}")


if __name__ == "__main__":
    main()
