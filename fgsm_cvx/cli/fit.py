"""Fit an adversarially trained GLM on a table and print it with its certificate.

Reads DATA (CSV, or Parquet with pyarrow), uses every column but --target as a feature
(or those listed in --features), fits the exact FGSM / adversarial objective

    sum_i w_i [alpha l(y_i, eta_i) + (1 - alpha) max_{delta in eps S} l(y_i, eta_i + delta^T beta)]

with fgsm_cvx.AdversarialClassifier (logistic, hinge: any two labels) or
fgsm_cvx.AdversarialRegressor (gaussian, huber, poisson), and prints the coefficients
with their feature names, the training and robust scores and the solver's certificate.
--output saves the model as JSON (read back by `fgsm-cvx attack` or
fgsm_cvx.model_from_dict). --json prints one JSON object with the keys coef (a list in
column order), intercept, feature_names and certificate, among others.

Examples
--------
  fgsm-cvx fit cancer.csv --target diagnosis --family logistic --perturbation linf --eps 0.1
  fgsm-cvx fit houses.parquet -t price -f huber -p l2 -e 0.05 --alpha 0.5 -o model.json
  fgsm-cvx fit data.csv -t y -f gaussian -e 0.2 --features x1,x2,x5 --json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._args import add_data_arguments, add_output_arguments
from ._io import UsageError, format_number, load_data, positive_float, print_json

HELP = "fit one model at one radius; print coefficients and certificate; save as JSON"


def add_arguments(parser):
    add_data_arguments(parser)
    parser.add_argument("--penalty", metavar="NAME",
                        help="generalized FGSM: the shift eps P(beta) with P = l1, l2, linf "
                             "or ridge instead of the dual norm of the set")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="save the fitted model as JSON to FILE")
    add_output_arguments(parser)


def fit_model(data, eps, penalty=None, backend="auto", solver="ECOS"):
    """The fitted estimator for ``load_data``'s dictionary (a DataFrame keeps the names)."""
    import pandas as pd

    import fgsm_cvx as fc

    estimator = fc.AdversarialClassifier if data["family"].is_classifier else \
        fc.AdversarialRegressor
    model = estimator(family=data["family_name"], perturbation=data["perturbation"], eps=eps,
                      alpha=data["alpha"], fit_intercept=data["fit_intercept"],
                      penalty=penalty, backend=backend, solver=solver)
    return model.fit(pd.DataFrame(data["X"], columns=data["names"]), data["y"])


def run(args):
    import pandas as pd

    import fgsm_cvx as fc

    eps = positive_float(args.eps, "--eps")
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise UsageError(f"--output {args.output}: the folder does not exist")
    data = load_data(args)
    model = fit_model(data, eps, args.penalty, args.backend, args.solver)
    X = pd.DataFrame(data["X"], columns=data["names"])
    score = float(model.score(X, data["y"]))
    robust = fc.robust_score(model, data["X"], data["y"], eps, model.perturbation)
    metric = "accuracy" if data["family"].is_classifier else "R^2"
    saved = None
    if args.output:
        description = model.to_dict()
        description["target"] = args.target  # read by `fgsm-cvx attack` (from_dict ignores it)
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(description, fh, indent=1, allow_nan=False)
        saved = args.output
    res = model.result_
    if args.json:
        print_json({
            "coef": [float(c) for c in model.coef_],
            "intercept": float(model.intercept_),
            "feature_names": data["names"],
            "certificate": res.certificate.to_dict(),
            "classes": (model.classes_.tolist() if hasattr(model, "classes_") else None),
            "family": data["family"].name, "perturbation": str(args.perturbation),
            "eps": eps, "alpha": data["alpha"], "penalty": args.penalty,
            "objective": res.objective, "status": res.status, "backend": res.backend,
            "n_samples": int(data["X"].shape[0]),
            "n_nonzero": int(np.sum(np.abs(model.coef_) > 1e-8)),
            "metric": metric, "score": score, "robust_score": robust,
            "model_file": saved})
        return 0
    n, d = data["X"].shape
    print(f"FGSM-trained {data['family_name']} GLM, perturbation {args.perturbation} "
          f"(eps={eps:g}, alpha={data['alpha']:g}) on {data['source']}: {n} samples, "
          f"{d} features, target '{args.target}'")
    if hasattr(model, "classes_"):
        negative, positive = (c.item() if isinstance(c, np.generic) else c
                              for c in model.classes_)  # (numpy 2 reprs: np.int64(0))
        print(f"classes: {negative!r} (negative), {positive!r} (positive)")
    width = max(11, *(len(s) for s in data["names"]))
    print(f"{'feature':<{width}}  {'coefficient':>13}")
    for name, c in zip(data["names"], model.coef_, strict=True):
        c = 0.0 if abs(c) < 5e-9 else c  # below the printed precision: 0, not -0
        print(f"{name:<{width}}  {c:13.6g}")
    if data["fit_intercept"]:
        print(f"{'(intercept)':<{width}}  {model.intercept_:13.6g}")
    nnz = int(np.sum(np.abs(model.coef_) > 1e-8))
    print(f"nonzero coefficients: {nnz} of {d}; training {metric} {score:.4f}, robust "
          f"{metric} at eps={eps:g} ({args.perturbation}) {robust:.4f}")
    print(f"objective {res.objective:.10g}; certificate: {res.certificate}")
    gap = res.certificate.suboptimality_bound
    if gap is not None and gap < 0.0:  # (the dual bound above the point: rounding)
        print(f"suboptimality bound 0 (the solver's dual bound lies "
              f"{format_number(-gap, '.2e')} above the objective, within its tolerance)")
    elif gap is not None:
        print(f"suboptimality bound {format_number(gap, '.2e')}")
    if saved:
        print(f"model saved to {saved} (try: fgsm-cvx attack {saved} {args.data} "
              f"--eps {eps:g})")
    return 0
