"""Attack a saved model on a table: its exact robust score at radius eps.

Loads MODEL (the JSON written by `fgsm-cvx fit --output`, or by a model's to_dict),
reads DATA, takes the model's feature columns by name and scores it twice: on the clean
inputs and under the worst attack in the ball eps S. For a linear model the worst case is
closed-form: sample i's decision value ranges over

    [eta_i - eps sigma_S(-beta), eta_i + eps sigma_S(beta)],

so the robust accuracy counts the samples whose worst end is still on the correct side
(robust R^2 moves each prediction to the end farther from y_i). No sampled attack does
worse. --method fgsm scores the literal fast-gradient-sign inputs instead
(x + eps sign(l'_i) argmax_S delta^T beta), which are never stronger.

Examples
--------
  fgsm-cvx attack model.json cancer.csv --eps 0.1
  fgsm-cvx attack model.json test.csv --target diagnosis --eps 0.2 --perturbation l2
  fgsm-cvx attack model.json test.csv --eps 0.1 --method fgsm --json
"""

from __future__ import annotations

import json
from pathlib import Path

from ._args import add_output_arguments
from ._io import UsageError, design, parse_perturbation, positive_float, print_json, read_table

HELP = "robust score of a saved model on data (exact worst case, or literal FGSM)"


def add_arguments(parser):
    parser.add_argument("model", metavar="MODEL", help="model JSON (fgsm-cvx fit --output)")
    parser.add_argument("data", metavar="DATA", help="CSV or Parquet file with the features "
                                                     "the model was fitted on and the target")
    parser.add_argument("--target", "-t", metavar="COL",
                        help="the response column (default: the one recorded by "
                             "`fgsm-cvx fit`)")
    parser.add_argument("--eps", "-e", required=True, metavar="E", help="attack radius")
    parser.add_argument("--perturbation", "-p", metavar="P",
                        help="the attacker's set: linf, l2, l1, lp:P (default: the one the "
                             "model was trained against)")
    parser.add_argument("--method", choices=("exact", "fgsm"), default="exact",
                        help="exact worst case, or the literal FGSM move")
    parser.add_argument("--metric", choices=("accuracy", "r2", "loss"),
                        help="score: accuracy (classifiers), r2 (regressors) or the mean "
                             "worst-case loss (default: accuracy or r2)")
    add_output_arguments(parser)


def load_model(filename):
    """Read a model JSON file; UsageError on anything but a saved fgsm_cvx model."""
    import fgsm_cvx as fc

    path = Path(filename)
    if not path.exists():
        raise UsageError(f"no such file: {filename}")
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{filename} is not JSON ({' '.join(str(exc).split())})") from None
    try:
        model = fc.model_from_dict(description)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{filename}: {' '.join(str(exc).split())}") from None
    if not hasattr(model, "coef_"):
        raise UsageError(f"{filename} holds an unfitted model")
    return model, description


def run(args):
    import numpy as np
    import pandas as pd

    import fgsm_cvx as fc

    eps = positive_float(args.eps, "--eps")
    if args.method == "fgsm" and args.metric == "loss":
        raise UsageError("--metric loss is for --method exact (the worst-case loss is "
                         "closed-form; the literal FGSM loss is not a score)")
    model, description = load_model(args.model)
    target = args.target or description.get("target")
    if not isinstance(target, str):
        raise UsageError(f"{args.model} does not record its target column: pass --target")
    perturbation = parse_perturbation(args.perturbation) if args.perturbation else \
        model.perturbation
    label = args.perturbation or (model.perturbation if isinstance(model.perturbation, str)
                                  else repr(model.perturbation))
    frame = read_table(args.data)
    names = getattr(model, "feature_names_in_", None)
    if names is None:  # fitted on an array: the columns in file order
        names = [c for c in frame.columns if c != target]
        if len(names) != model.n_features_in_:
            raise UsageError(f"the model has {model.n_features_in_} features but "
                             f"{args.data} has {len(names)} columns besides '{target}'")
    X, y, names = design(frame, target, list(names), classification=hasattr(model, "classes_"),
                         fitted=args.model)
    if hasattr(model, "classes_"):
        known = np.isin(y.astype(str), np.asarray(model.classes_).astype(str))
        if not np.all(known):
            raise UsageError(f"target column '{target}' holds labels the model does not know: "
                             f"{sorted(str(v) for v in set(y[~known].astype(str)))[:5]} "
                             f"(model classes: {np.asarray(model.classes_).tolist()})")
        y = np.asarray(model.classes_)[
            (y.astype(str) == str(model.classes_[1])).astype(np.intp)]
    metric = args.metric or ("accuracy" if hasattr(model, "classes_") else "r2")
    frame_X = pd.DataFrame(X, columns=names)  # (the fitted names, in the fitted order)
    if metric == "loss":
        clean = fc.robust_score(model, frame_X, y, 0.0, perturbation, metric="loss")
    else:
        clean = float(model.score(frame_X, y))
    if args.method == "exact":
        robust = fc.robust_score(model, frame_X, y, eps, perturbation, metric=args.metric)
    else:
        X_adv = fc.perturb(model, frame_X, y, eps, perturbation, method="fgsm")
        robust = float(model.score(pd.DataFrame(X_adv, columns=names), y))
    if args.json:
        print_json({"metric": metric, "clean_score": clean, "robust_score": robust,
                    "eps": eps, "perturbation": label, "method": args.method,
                    "n_samples": int(X.shape[0]), "target": target})
        return 0
    worse = "higher" if metric == "loss" else "lower"
    print(f"{type(model).__name__} from {args.model} on {args.data} ({X.shape[0]} samples, "
          f"target '{target}')")
    print(f"clean {metric}:  {clean:.4f}")
    what = "exact worst case" if args.method == "exact" else "literal FGSM"
    print(f"robust {metric}: {robust:.4f}  ({what}, eps={eps:g}, {label}; "
          f"{worse} is worse)")
    return 0
