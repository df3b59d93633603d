"""The main job on bundled data: FGSM logistic regression and its Lasso twin.

Classification: scikit-learn's breast-cancer data (569 tumours, 30 features), split
70/30 (stratified), standardised on the training part. Exact FGSM (Linf) adversarial
logistic regression is solved along a path of radii from eps_max, where every
coefficient vanishes, down (fgsm_cvx.adversarial_path); at each radius its
penalised-likelihood twin, the L1-penalised (Lasso) logistic regression at the matched
level

    lam = eps kappa_hat,   kappa_hat = mean_i |l'(y_i, eta_i)| at the FGSM fit,

is fitted too (fgsm_cvx.penalized_fit). The table lists, per radius and model, the
held-out clean accuracy, the held-out robust accuracy under the worst Linf attack of the
training radius (exact, fgsm_cvx.robust_score), the number of nonzero coefficients and
the certificate (the solver's relative duality gap). Regression: the same on the
diabetes data (gaussian loss, R^2), at four radii.

Writes coefficient_paths.png (both coefficient paths), accuracy.png (robust and clean
accuracy against eps) and the tables as CSV into --out-dir.

Examples
--------
  fgsm-cvx demo
  fgsm-cvx demo --out-dir results --quick
  fgsm-cvx demo --json > demo.json
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import numpy as np

from ._args import progress

HELP = "the main job on bundled data (breast cancer, diabetes): table and figures"

DEFAULT_OUT_DIR = "fgsm_cvx_demo"
# |coef_j| above this counts as nonzero: interior-point zeros are ~1e-10, but at a
# degenerate point (the twin at lam = lam_max, the first row) the solver approaches 0 only
# to ~1e-6 (about sqrt(tol) relative)
SUPPORT_TOL = 1e-5
# The training split is separable with a small margin: below that radius the robust
# logistic loss has no minimiser, so the path stops at this fraction of eps_max.
EPS_MIN_RATIO = 0.04
REGRESSION_FRACTIONS = (0.5, 0.2, 0.05, 0.01)


def add_arguments(parser):
    parser.add_argument("--out-dir", "-o", default=DEFAULT_OUT_DIR, metavar="DIR",
                        help="folder for the figures and tables (created if needed)")
    parser.add_argument("--quick", action="store_true",
                        help="a short path (4 radii; 2 for diabetes): a few seconds")
    parser.add_argument("--n-eps", type=int, default=10, metavar="N",
                        help="radii on the breast-cancer path (ignored with --quick)")
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (tables and file names) instead")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _split(X, y, stratify):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y if stratify else None)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def _as_model(estimator, result, n_features):
    """A fitted estimator holding ``result``'s (coef, intercept), for scoring."""
    estimator.coef_, estimator.intercept_ = np.asarray(result.coef), float(result.intercept)
    estimator.n_features_in_ = n_features
    return estimator


def _rel_gap(result):
    cert = result.certificate
    return cert.relative_gap if cert.relative_gap is not None else cert.residual


def _nonzero(result):
    return int(np.sum(np.abs(result.coef) > SUPPORT_TOL))


def _twin_rows(prob, path, X_test, y_test, family, make_model, verbose):
    """Score every path point and its Lasso twin on the test data: two rows per radius."""
    from tqdm.auto import tqdm

    import fgsm_cvx as fc
    from fgsm_cvx.penalized.diagnostics import kappa_hat

    rows, twins = [], []
    d = prob.n_features
    bar = tqdm(list(zip(path.eps, path.results, strict=True)), desc="Lasso twins",
               unit="fit", leave=False, disable=True if verbose is False else None,
               delay=1.0)
    for eps, fgsm in bar:
        # lam = (1 - alpha) eps kappa_hat at the FGSM solution (alpha = 0 here)
        lam = float(eps) * kappa_hat(prob, fgsm.coef, fgsm.intercept)
        twin = fc.penalized_fit(prob.X, prob.y, family, "l1", lam)
        twins.append(twin)
        for name, res in (("FGSM", fgsm), ("Lasso twin", twin)):
            model = _as_model(make_model(), res, d)
            rows.append({"eps": float(eps), "model": name, "lam": lam,
                         "clean": fc.robust_score(model, X_test, y_test, 0.0),
                         "robust": fc.robust_score(model, X_test, y_test, float(eps)),
                         "nonzeros": _nonzero(res), "n_features": d,
                         "rel_gap": _rel_gap(res), "status": res.status})
    return rows, twins


def classification(n_eps, verbose):
    """Breast cancer: the FGSM path, the twins, the table rows."""
    from sklearn.datasets import load_breast_cancer

    import fgsm_cvx as fc

    data = load_breast_cancer()
    X_train, X_test, y_train, y_test = _split(data.data, data.target, stratify=True)
    prob = fc.AdversarialProblem(X_train, y_train, family="logistic", perturbation="linf",
                                 eps=0.0)
    # the interior-point backend: its certificate is the duality gap the table reports
    # (at this size "auto" takes the fast path, which certifies by a gradient-mapping
    # residual instead)
    path = fc.adversarial_path(prob, n_eps=n_eps, eps_min_ratio=EPS_MIN_RATIO,
                               backend="cvxpy", verbose=verbose)

    def make_model():
        model = fc.AdversarialClassifier()
        model.classes_ = np.array([0, 1])
        return model

    rows, twins = _twin_rows(prob, path, X_test, y_test, "logistic", make_model, verbose)
    return {"rows": rows, "path": path, "twins": twins,
            "names": [str(s) for s in data.feature_names],
            "n_train": int(X_train.shape[0]), "n_test": int(X_test.shape[0])}


def regression(fractions, verbose):
    """Diabetes: FGSM (gaussian, Linf) at a few fractions of eps_max, and the twins."""
    from sklearn.datasets import load_diabetes

    import fgsm_cvx as fc

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = _split(X, y, stratify=False)
    prob = fc.AdversarialProblem(X_train, y_train, family="gaussian", perturbation="linf",
                                 eps=0.0)
    top = fc.eps_max(prob)
    path = fc.adversarial_path(prob, eps=top * np.asarray(fractions), backend="cvxpy",
                               verbose=verbose)
    rows, _ = _twin_rows(prob, path, X_test, y_test, "gaussian", fc.AdversarialRegressor,
                         verbose)
    return {"rows": rows, "eps_max": top, "n_train": int(X_train.shape[0]),
            "n_test": int(X_test.shape[0])}


def format_table(rows, score):
    """The printed table: one line per (radius, model)."""
    lines = [f"{'eps':>8}  {'model':<10} {'lam':>9} {'clean ' + score:>14} "
             f"{'robust ' + score:>15} {'nonzeros':>9} {'rel. gap':>9}"]
    for row in rows:
        # eps on the FGSM row, the twin's matched level lam on the twin's row
        fgsm = row["model"] == "FGSM"
        eps = f"{row['eps']:8.4g}" if fgsm else " " * 8
        lam = " " * 9 if fgsm else f"{row['lam']:9.4g}"
        lines.append(f"{eps}  {row['model']:<10} {lam} {row['clean']:14.3f} "
                     f"{row['robust']:15.3f} {row['nonzeros']:>5d}/{row['n_features']:<3d} "
                     f"{row['rel_gap']:9.1e}")
    return "\n".join(lines)


def _save_table(rows, filename):
    import csv

    with open(filename, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_paths(cls, filename):
    """Coefficient paths of FGSM and of its Lasso twin, against eps (log scale)."""
    from .path import log_axis, pyplot

    plt = pyplot()
    path = cls["path"]
    twin_coefs = np.array([t.coef for t in cls["twins"]])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    # the six features with the largest coefficient at the smallest radius get a label
    top = np.argsort(-np.abs(path.coefs[-1]))[:6]
    colors = plt.cm.tab10(np.arange(10))
    for ax, coefs, title in ((axes[0], path.coefs, "FGSM (Linf) logistic regression"),
                             (axes[1], twin_coefs, "Lasso twin, lam = eps kappa_hat")):
        for j in range(coefs.shape[1]):
            k = np.flatnonzero(top == j)
            style = {"color": colors[k[0]], "lw": 1.6, "label": cls["names"][j]} if k.size \
                else {"color": "0.75", "lw": 0.8}
            ax.plot(path.eps, coefs[:, j], **style)
        ax.set_xscale("log")
        log_axis(ax)
        ax.axhline(0.0, color="0.4", lw=0.6)
        ax.set_xlabel("eps (Linf attack radius, standardised features)")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("coefficient")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Breast cancer: coefficient paths", fontsize=11)
    fig.tight_layout()
    fig.savefig(filename, dpi=100)
    plt.close(fig)


def plot_accuracy(cls, filename):
    """Held-out clean and robust accuracy against eps, for FGSM and its twin."""
    from .path import log_axis, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for model, color in (("FGSM", "C0"), ("Lasso twin", "C1")):
        rows = [r for r in cls["rows"] if r["model"] == model]
        eps = [r["eps"] for r in rows]
        ax.plot(eps, [r["clean"] for r in rows], color=color, marker="o", ms=3,
                label=f"{model}: clean")
        ax.plot(eps, [r["robust"] for r in rows], color=color, marker="s", ms=3, ls="--",
                label=f"{model}: robust at eps")
    ax.set_xscale("log")
    log_axis(ax)
    ax.set_xlabel("eps (training radius = attack radius)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Breast cancer: clean vs robust accuracy", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(filename, dpi=100)
    plt.close(fig)


def run(args):
    from ._io import UsageError, print_json

    if args.n_eps < 2:
        raise UsageError(f"--n-eps must be at least 2, got {args.n_eps}")
    verbose = False if (args.quiet or args.json) else progress(args)
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out-dir {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    cls = classification(4 if args.quick else args.n_eps, verbose)
    reg = regression(REGRESSION_FRACTIONS[1:3] if args.quick else REGRESSION_FRACTIONS,
                     verbose)
    files = {"breast_cancer_table": str(out / "breast_cancer.csv"),
             "diabetes_table": str(out / "diabetes.csv")}
    _save_table(cls["rows"], files["breast_cancer_table"])
    _save_table(reg["rows"], files["diabetes_table"])
    skipped = None
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        skipped = "figures skipped: matplotlib is not installed (pip install 'fgsm_cvx[plot]')"
    elif not args.no_plots:
        files["coefficient_paths"] = str(out / "coefficient_paths.png")
        files["accuracy"] = str(out / "accuracy.png")
        plot_paths(cls, files["coefficient_paths"])
        plot_accuracy(cls, files["accuracy"])
    if args.json:
        print_json({"out_dir": str(out), "files": files, "note": skipped,
                    "eps_max": float(cls["path"].eps_max),
                    "breast_cancer": cls["rows"], "diabetes": reg["rows"]})
        return 0
    path = cls["path"]
    print(textwrap.fill(
        f"Breast cancer ({cls['n_train']} training / {cls['n_test']} held-out tumours, 30 "
        f"standardised features): FGSM (Linf) logistic regression along {len(path)} radii "
        f"from eps_max = {path.eps_max:.4g}, and its Lasso twin: L1-penalised logistic "
        "regression at lam = eps kappa_hat, the penalty FGSM's objective behaves like "
        "(kappa_hat = mean |loss'| at the FGSM fit; docs/comparison.md). Accuracies are "
        "held out; robust = under the worst Linf attack of radius eps; rel. gap = the "
        "solver's relative duality gap.",
        width=92))
    print(format_table(cls["rows"], "acc."))
    print()
    print(textwrap.fill(
        f"Diabetes ({reg['n_train']} training / {reg['n_test']} held-out patients, 10 "
        f"standardised features): FGSM (Linf) least squares at fractions of eps_max = "
        f"{reg['eps_max']:.4g}, and its Lasso twin; R^2 held out.", width=92))
    print(format_table(reg["rows"], "R^2"))
    print()
    for key, filename in files.items():
        print(f"wrote {filename}" + ("" if key.endswith("table") else "  (figure)"))
    if skipped:
        print(skipped)
    print(f"output folder: {out.resolve()}")
    return 0
