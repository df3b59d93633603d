"""FGSM training as practitioners run it reaches the exact convex solution where FGSM is exact.

docs/theory.md §5. ``fc.fgsm_train`` runs the deep-learning recipe on the one-layer model: at
each step, FGSM examples x + eps sign(l') sign(beta) at the current weights, then a
(mini-batch) gradient step on the loss at those examples. By Danskin's theorem this is a
stochastic subgradient method on the exact robust objective R whenever the FGSM point is
the exact maximiser (gaussian, logistic): with decaying steps the objective gap to the
cvxpy solution goes to 0. For poisson (near l' = 0 the far endpoint can be worse) and hinge
(points beyond the margin are not attacked) the step is not a subgradient of R and the
loop settles at a point whose robust objective stays above the optimum.

Data: n = 2000, x ~ N(0, I_5), beta = (1, -0.5, 0, 0, 0.3), b = 0.2 (poisson: b = 1, mean
count ~ 4), Linf attack eps = 0.3. Mini-batches of 100 with lr / (1 + t / t0) (t0 = one
epoch); left, the relative gap of the exact robust objective; right, the distance of the
iterates (coefficients and intercept) to the exact solution. Run::

    python examples/theory_fgsm_training.py [--quick] [--out-dir DIR]

writes ``theory_fgsm_training.png`` in DIR (default examples/figures/).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _figures import run, save_figure  # noqa: E402
from scipy.special import expit  # noqa: E402

import fgsm_cvx as fc  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "figures"
EPS, N = 0.3, 2000
LR = {"gaussian": 0.5, "logistic": 1.0, "poisson": 0.05, "hinge": 0.3}


def problem(family, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, 5))
    eta = X @ np.array([1.0, -0.5, 0.0, 0.0, 0.3]) + 0.2
    if family == "gaussian":
        y = eta + rng.standard_normal(N)
    elif family == "poisson":
        y = rng.poisson(np.exp(eta + 0.8)).astype(float)
    else:
        y = (rng.random(N) < expit(eta)).astype(float)
    return fc.AdversarialProblem(X, y, family=family, perturbation="linf", eps=EPS)


def wrong_endpoints(prob, coef, intercept):
    """Fraction of samples where sign(l') does not pick the worse end of the interval."""
    eta = prob.linear_predictor(coef, intercept)
    c = prob.eps * np.abs(coef).sum()  # eps ||beta||_1, the Linf box's shift
    loss = prob.family.loss
    worst_up = loss(prob.y, eta + c) >= loss(prob.y, eta - c)
    return float(np.mean(worst_up != (prob.family.grad(prob.y, eta) > 0)))


def main(quick=False, out_dir=DEFAULT_OUT):
    epochs = 5 if quick else 300
    gaps, dists = {}, {}
    print(f"{'family':>9} {'FGSM exact':>10} {'wrong ends':>10} {'R(train) - R*':>14} "
          f"{'relative':>9} {'FGSM obj - R*':>14} {'max|theta - theta*|':>20}")
    for family, lr in LR.items():
        prob = problem(family)
        exact = fc.solve(prob, backend="cvxpy", solver="ECOS", tol=1e-10)
        res = fc.fgsm_train(prob, lr=lr, epochs=epochs, batch_size=100, schedule="inverse",
                            seed=1)
        theta = np.column_stack([res.coef_history, res.intercept_history])
        gaps[family] = res.gap(exact)
        dists[family] = np.max(np.abs(theta - np.append(exact.coef, exact.intercept)), axis=1)
        print(f"{family:>9} {str(res.fgsm_is_exact):>10} "
              f"{wrong_endpoints(prob, exact.coef, exact.intercept):10.2%} "
              f"{res.objective - exact.objective:14.3e} {gaps[family][-1]:9.2e} "
              f"{res.fgsm_history[-1] - exact.objective:14.3e} {dists[family][-1]:20.3e}")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for k, family in enumerate(LR):
        style = "-" if family in ("gaussian", "logistic") else "--"
        label = family + ("" if style == "-" else " (FGSM not exact)")
        epochs_axis = np.arange(gaps[family].shape[0])
        axes[0].plot(epochs_axis[1:], np.maximum(gaps[family][1:], 1e-12), style,
                     color=f"C{k}", label=label)
        axes[1].plot(epochs_axis[1:], dists[family][1:], style, color=f"C{k}", label=label)
    axes[0].axhline(1e-3, color="0.6", lw=0.8, ls=":")
    axes[0].set(xscale="log", yscale="log", xlabel="epoch", ylabel="(R(train) - R*) / R*",
                title="gap of the exact robust objective")
    axes[1].set(xscale="log", yscale="log", xlabel="epoch", ylabel="max |theta_t - theta*|",
                title="distance to the exact (cvxpy) solution")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("FGSM training, batch 100, lr / (1 + t/t0), eps = 0.3", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_dir, "theory_fgsm_training.png")
    return gaps, dists


if __name__ == "__main__":
    run(main, __doc__, DEFAULT_OUT, quick_help="a few seconds, few epochs")
