"""The main job on a bundled data set: FGSM logistic regression on breast cancer.

Run with ``python -m fgsm_cvx.demo``. Standardises scikit-learn's bundled
breast-cancer data, fits exact FGSM (Linf) adversarial logistic regression at a
radius of a quarter of eps_max, and prints the coefficients with their certificate.
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv=None):
    from sklearn.datasets import load_breast_cancer

    import fgsm_cvx as fc

    parser = argparse.ArgumentParser(prog="python -m fgsm_cvx.demo", description=__doc__)
    parser.add_argument("--eps-fraction", type=float, default=0.25,
                        help="attack radius as a fraction of eps_max (default 0.25)")
    args = parser.parse_args(argv)

    data = load_breast_cancer()
    X = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    prob = fc.AdversarialProblem(X, data.target, family="binomial", perturbation="linf",
                                 eps=0.0)
    top = fc.eps_max(prob)
    prob = prob.with_params(eps=args.eps_fraction * top)
    res = fc.solve(prob)
    eta = prob.linear_predictor(res.coef, res.intercept)
    clean_acc = np.mean((eta > 0) == (prob.y > 0.5))
    print(f"FGSM (Linf) logistic regression on breast cancer (n={X.shape[0]}, d={X.shape[1]})")
    print(f"eps_max = {top:.4g}; eps = {prob.eps:.4g}; nonzero coefficients: "
          f"{int(np.sum(np.abs(res.coef) > 1e-6))}/{X.shape[1]}; training accuracy "
          f"{clean_acc:.3f}")
    width = max(len(n) for n in data.feature_names)
    print(f"{'feature':<{width}}  coefficient")
    for name, c in zip(data.feature_names, res.coef, strict=True):
        c = 0.0 if abs(c) < 5e-7 else c  # below the printed precision: show 0, not -0
        print(f"{name:<{width}}  {c: .6f}")
    print(f"{'(intercept)':<{width}}  {res.intercept: .6f}")
    print(f"certificate: {res.certificate}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
