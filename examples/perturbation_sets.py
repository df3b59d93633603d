"""The attacker's set decides the penalty: Linf, L2, L1 and group attacks on one data set.

Against perturbations delta in eps S the worst case shifts every linear predictor by
eps sigma_S(beta), the support function of S (docs/theory.md §2):

    Linf box      -> eps ||beta||_1            (Lasso-like: sparse coefficients)
    L2 ball       -> eps ||beta||_2            (shrinks all coefficients together)
    L1 ball       -> eps ||beta||_inf          (pulls the largest ones to a common size)
    group L2 sets -> eps sum_g ||beta_g||_2    (group-Lasso-like: whole groups vanish)

This script fits exact adversarial least squares with each set on the same sparse data
(n = 300, d = 9 in three groups of three, only the first group and one feature of the
second active), each at 30% of its own eps_max (the radius where all coefficients
vanish), prints the coefficients and writes perturbation_sets.png.
Run: ``python examples/perturbation_sets.py [--quick] [--out-dir DIR]``.
"""

import argparse
from pathlib import Path

import numpy as np

import fgsm_cvx as fc

GROUPS = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
BETA = np.array([1.5, -1.0, 0.8, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0])
SETS = {
    "Linf (FGSM)": fc.Linf(),
    "L2 (FGM)": fc.L2(),
    "L1": fc.L1(),
    "group L2": fc.Group(GROUPS, p=2),
}


def fit_all(n=300, fraction=0.3, seed=0):
    """{set name: (eps, Result)} on one draw of the data."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, BETA.shape[0]))
    y = X @ BETA + rng.standard_normal(n)
    fits = {}
    for name, pert in SETS.items():
        prob = fc.AdversarialProblem(X, y, family="gaussian", perturbation=pert, eps=0.0)
        eps = fraction * fc.eps_max(prob)
        fits[name] = (eps, fc.solve(prob.with_params(eps=eps)))
    return fits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (n = 150)")
    parser.add_argument("--out-dir", default=".", help="folder for the figure")
    args = parser.parse_args(argv)
    fits = fit_all(n=150 if args.quick else 300)
    print(f"{'set':<12} {'eps':>7} " + " ".join(f"{f'b{j}':>6}" for j in range(9))
          + "  certificate")
    print(f"{'truth':<12} {'':>7} " + " ".join(f"{b:6.2f}" for b in BETA))
    for name, (eps, res) in fits.items():
        coef = np.where(np.abs(res.coef) < 5e-7, 0.0, res.coef)
        print(f"{name:<12} {eps:7.4f} " + " ".join(f"{c:6.2f}" for c in coef)
              + f"  gap {res.certificate.gap:.1e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.16
    x = np.arange(BETA.shape[0])
    ax.bar(x - 2 * width, BETA, width, color="0.6", label="truth")
    for k, (name, (_, res)) in enumerate(fits.items()):
        ax.bar(x + (k - 1) * width, res.coef, width, label=name)
    for boundary in (2.5, 5.5):
        ax.axvline(boundary, color="0.8", lw=0.8)
    ax.axhline(0.0, color="0.3", lw=0.6)
    ax.set_xticks(x, [f"b{j}" for j in x])
    ax.set_ylabel("coefficient")
    ax.set_title("Adversarial least squares at 30% of eps_max, per attack set "
                 "(groups separated by lines)", fontsize=10)
    ax.legend(fontsize=8, ncol=5)
    fig.tight_layout()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "perturbation_sets.png", dpi=100)
    print(f"wrote {out / 'perturbation_sets.png'}")


if __name__ == "__main__":
    main()
