"""The attacker's moves: exact worst-case and literal FGSM perturbations.

For a linear predictor the attacker's best move over eps*S is closed-form: it shifts
eta_i to the endpoint of [eta_i - eps sigma_S(-beta), eta_i + eps sigma_S(beta)] with
the larger loss, through delta = argmax_{delta in eps S} +-delta^T beta (docs/theory.md §2).
Literal FGSM picks the endpoint by sign(l'(eta_i)) instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._validation import check_sample_weight, check_scalar, check_X, check_y
from .problem import check_problem, resolve_family, resolve_perturbation


def _moves(prob, coef):
    """The two candidate perturbations: raising eta (up) and lowering it (down)."""
    up = prob.eps * prob.unit_noise(coef, +1.0)
    down = prob.eps * prob.unit_noise(coef, -1.0)
    return up, down


def worst_case_perturbation(prob, coef, intercept=0.0):
    """The exact maximiser delta_i in eps*S of l(y_i, (x_i + delta_i)^T beta + b).

    Returns an array of shape (n_samples, n_features); row i attains the worst-case
    loss max(l(eta_i + eps sigma_S(beta)), l(eta_i - eps sigma_S(-beta))). With a
    generalized penalty the rows are the penalty's noise scheme (delta^T beta = +-eps P).
    """
    coef, intercept = check_problem(prob).check_coef(coef, intercept)
    eta = prob.linear_predictor(coef, intercept)
    c_up, c_down = prob.unit_shift(coef)
    fam, y = prob.family, prob.y
    go_up = fam.loss(y, eta + prob.eps * c_up) >= fam.loss(y, eta - prob.eps * c_down)
    up, down = _moves(prob, coef)
    return np.where(go_up[:, None], up[None, :], down[None, :])


def fgsm_perturbation(prob, coef, intercept=0.0):
    """Literal FGSM: delta_i = eps * argmax_{delta in S} delta^T (sign(l'_i) beta).

    For S the Linf box this is eps * sign(l'(eta_i)) * sign(beta), Goodfellow's
    x + eps sign(grad_x l). Samples with l' = 0 are not moved.
    """
    coef, intercept = check_problem(prob).check_coef(coef, intercept)
    eta = prob.linear_predictor(coef, intercept)
    s = np.sign(prob.family.grad(prob.y, eta))[:, None]
    up, down = _moves(prob, coef)
    return np.where(s > 0, up[None, :], np.where(s < 0, down[None, :], 0.0))


# ---------------------------------------------------------------------------------
# attacks on any fitted linear model (coef_, intercept_), and robust scores
# ---------------------------------------------------------------------------------
METRICS = ("accuracy", "r2", "loss")


#: Elementwise affine transformers a Pipeline may put before its linear model: x' =
#: a * x + c, read from their fitted attributes (None: that part is the identity)
#: ((x - m) / s: a = 1 / s, c = -m / s, each only where the scaler applies it; a
#: clipping MinMaxScaler is not affine)
_AFFINE = {
    "StandardScaler": lambda t: _centre_scale(t.mean_ if t.with_mean else None,
                                              t.scale_ if t.with_std else None),
    "RobustScaler": lambda t: _centre_scale(t.center_ if t.with_centering else None,
                                            t.scale_ if t.with_scaling else None),
    "MaxAbsScaler": lambda t: _centre_scale(None, t.scale_),
    "MinMaxScaler": lambda t: None if t.clip else (t.scale_, t.min_),
}


def _centre_scale(m, s):
    """(a, c) of x' = (x - m) / s (None: no centre, or unit scale)."""
    a = None if s is None else 1.0 / np.asarray(s, dtype=np.float64)
    c = None if m is None else -np.asarray(m, dtype=np.float64) * (1.0 if a is None else a)
    return a, c


def _linear_part(model):
    """(final step, [(a, c) of each preprocessing step]) of a scikit-learn Pipeline whose
    steps before the last are elementwise affine scalers (``_AFFINE``) or passthrough;
    (model, []) for anything else. TypeError naming a step that is not affine: the
    exact attack needs the inputs' map to the linear predictor to be affine."""
    steps = getattr(model, "steps", None)
    if steps is None or not hasattr(model, "named_steps"):
        return model, []
    maps = []
    for name, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        affine = _AFFINE.get(type(step).__name__)
        affine = None if affine is None else affine(step)
        if affine is None:
            raise TypeError(f"attacks cover Pipelines whose steps before the model are "
                            f"{', '.join(_AFFINE)} (not clipping) or 'passthrough' (an "
                            f"affine map of the inputs); step {name!r} is {step!r}")
        maps.append(affine)
    return steps[-1][1], maps


def _fitted_linear(model):
    """(coef, intercept) of a fitted binary/single-output linear model, in the inputs'
    units: through a Pipeline's affine scalers x' = a x + c (``_linear_part``),
    beta^T x' + b = (a beta)^T x + (c^T beta + b)."""
    final, maps = _linear_part(model)
    coef, intercept = _final_linear(final)
    for a, c in reversed(maps):
        if c is not None:
            intercept += float(np.asarray(c, dtype=np.float64) @ coef)
        if a is not None:
            coef = np.asarray(a, dtype=np.float64) * coef
    return coef, intercept


def _final_linear(model):
    """(coef, intercept) of a fitted binary/single-output linear model itself."""
    coef = getattr(model, "coef_", None)
    if coef is None:
        if hasattr(model, "fit"):  # an estimator: scikit-learn's error if it is not fitted
            try:
                check_is_fitted(model)
            except NotFittedError:
                raise NotFittedError(f"this {type(model).__name__} is not fitted yet: fit "
                                     f"it before attacking it") from None
        raise TypeError(f"model must be a fitted linear model exposing coef_ and intercept_, "
                        f"got {type(model).__name__} without coef_")
    if sp.issparse(coef):  # (scikit-learn's ``sparsify()``)
        coef = coef.toarray()
    coef = np.asarray(coef, dtype=np.float64)
    if coef.ndim == 2 and coef.shape[0] == 1:
        coef = coef[0]
    if coef.ndim != 1:
        raise ValueError(f"model.coef_ must describe one linear predictor (binary or "
                         f"single-output), got shape {coef.shape}")
    intercept = np.ravel(np.asarray(getattr(model, "intercept_", 0.0), dtype=np.float64))
    if intercept.shape[0] > 1:
        raise ValueError(f"model.intercept_ must be a scalar, got shape {intercept.shape}")
    return coef, float(intercept[0]) if intercept.shape[0] else 0.0


def _check_feature_names(model, X):
    """scikit-learn's rule for the names of X's columns against the model's
    ``feature_names_in_``: a DataFrame must carry the fitted names in the fitted order
    (ValueError otherwise: the attack would move and score the wrong columns); X
    without names, for a model fitted with them, gets scikit-learn's warning."""
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None:
        return
    fitted = [str(c) for c in fitted]
    columns = getattr(X, "columns", None)
    # (non-string column labels are no feature names, as in scikit-learn)
    if columns is None or not all(isinstance(c, str) for c in columns):
        warnings.warn(f"X does not have valid feature names, but {type(model).__name__} "
                      "was fitted with feature names", UserWarning, stacklevel=3)
    elif list(columns) != fitted:
        raise ValueError(f"the feature names of X should match those that were passed "
                         f"during fit (in the same order): X has {list(columns)[:5]}"
                         f"{' ...' if len(columns) > 5 else ''}, the model {fitted[:5]}"
                         f"{' ...' if len(fitted) > 5 else ''}")


def _is_classifier(model):
    return is_classifier(model) or hasattr(model, "classes_")


def _default_family(model, family):
    """The loss the attacker maximises: the given one, the model's own, or the usual one."""
    if family is None:
        # this package's estimators (a Pipeline's last step)
        family = getattr(_linear_part(model)[0], "family", None)
        if family is None:
            family = "logistic" if _is_classifier(model) else "gaussian"
    return resolve_family(family)


class _Attack:
    """The validated pieces of an attack on a fitted linear model.

    Attributes: X (a float array, or sparse as given), coef, intercept, eta = X beta + b, the two
    candidate moves ``up``/``down`` (rows of length d) and the shifts they cause,
    ``c_up = up^T beta = eps sigma_S(beta)`` and ``c_down = -down^T beta = eps sigma_S(-beta)``,
    the sample weights, and for classifiers the signed labels ``z`` (+1 = classes_[1]).
    """

    def __init__(self, model, X, y, eps, perturbation, family, sample_weight):
        self.coef, self.intercept = _fitted_linear(model)
        _check_feature_names(model, X)
        X = check_X(X)
        if X.shape[1] != self.coef.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features but the model was fitted with "
                             f"{self.coef.shape[0]}")
        # sparse X stays sparse: only the moved inputs are dense (``moved``), and the
        # scores form them a block of rows at a time (``_moved_predictions``)
        self.X = X if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        self.y = check_y(y, X.shape[0])
        self.eps = check_scalar(eps, "eps", lower=0.0)
        pert = resolve_perturbation(perturbation)
        pert.check_dim(X.shape[1])
        self.family = _default_family(model, family)
        self.w = check_sample_weight(sample_weight, X.shape[0])
        self.classifier = _is_classifier(model)
        if self.classifier:
            classes = np.asarray(getattr(model, "classes_", [0, 1]))
            if classes.shape[0] != 2:
                raise ValueError(f"attacks cover binary classifiers; the model has "
                                 f"{classes.shape[0]} classes")
            unknown = ~np.isin(self.y, classes)
            if np.any(unknown):
                raise ValueError(f"y holds labels the model does not know: "
                                 f"{np.unique(self.y[unknown])[:5].tolist()} (classes_ = "
                                 f"{classes.tolist()})")
            self.z = np.where(self.y == classes[1], 1.0, -1.0)
        self.eta = np.asarray(self.X @ self.coef, dtype=np.float64).ravel() + self.intercept
        # argmax over eps*S of +-delta^T beta: delta^T beta = eps sigma_S(+-beta)
        self.up = self.eps * pert.unit_argmax(self.coef)
        self.down = self.eps * pert.unit_argmax(-self.coef)
        self.c_up, self.c_down = float(self.up @ self.coef), float(-(self.down @ self.coef))

    def family_y(self):
        """y in the family's internal coding (classifiers: from the model's classes_)."""
        if self.classifier:
            if not self.family.is_classifier:
                raise ValueError(f"family '{self.family.name}' is not a classification loss")
            return self.family._code(self.z > 0)
        return self.family.encode_y(self.y)[0]

    def moved(self, go_up, stay=None, rows=slice(None)):
        """X + delta_i with delta_i = up where go_up, down elsewhere (0 where stay), for
        the samples ``rows`` (a slice): a dense array (a move of an l-inf ball changes
        every feature)."""
        go_up = go_up[rows]
        delta = np.where(go_up[:, None], self.up[None, :], self.down[None, :])
        if stay is not None:
            delta = np.where(stay[rows][:, None], 0.0, delta)
        X = self.X[rows]
        return (X.toarray() if sp.issparse(X) else X) + delta


# The moved inputs are formed this many entries at a time for a score
# (``_moved_predictions``): a sparse X of 2e4 x 1e4 was densified whole (1.5 GB)
_BLOCK_ENTRIES = 2**22


def _moved_predictions(model, att, go_up):
    """model.predict on the moved inputs (``_Attack.moved``), a block of rows at a time."""
    n, d = att.X.shape
    step = max(1, _BLOCK_ENTRIES // max(d, 1))
    with warnings.catch_warnings():
        # (the moved inputs are arrays in the fitted column order, checked by
        # ``_check_feature_names``: scikit-learn's warning about their missing names is
        # no news)
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return np.concatenate([np.ravel(model.predict(att.moved(go_up,
                                                                rows=slice(i, i + step))))
                               for i in range(0, n, step)]) if n else np.zeros(0)


def _resolve_metric(metric, classifier):
    if metric is None:
        return "accuracy" if classifier else "r2"
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS} or None, got {metric!r}")
    if metric == "accuracy" and not classifier:
        raise ValueError("metric 'accuracy' needs a classifier")
    if metric == "r2" and classifier:
        raise ValueError("metric 'r2' needs a regressor")
    return metric


def _worst_sides(model, att, metric):
    """go_up[i]: whether raising eta_i (rather than lowering it) is the worst case."""
    if metric == "accuracy":
        # the margin z (eta + shift) is lowest when the shift opposes z
        return att.z < 0
    if metric == "r2":
        # |y - f(eta)| is quasi-convex in eta for a monotone inverse link f, so the worst
        # point of the interval is an endpoint; compare both through the model's predict.
        err_up = (att.y - _moved_predictions(model, att, np.ones(att.y.shape[0], bool))) ** 2
        err_down = (att.y - _moved_predictions(model, att,
                                               np.zeros(att.y.shape[0], bool))) ** 2
        return err_up >= err_down
    y = att.family_y()
    fam = att.family
    # a convex loss in eta is largest over the interval at one of its endpoints
    return fam.loss(y, att.eta + att.c_up) >= fam.loss(y, att.eta - att.c_down)


def perturb(model, X, y, eps, perturbation="linf", method="exact", metric=None, family=None):
    """Adversarial inputs for a fitted linear model: X + delta_i, delta_i in eps*S.

    Parameters
    ----------
    model : fitted linear model
        Anything exposing ``coef_`` and ``intercept_`` (this package's estimators,
        scikit-learn's LogisticRegression, LinearSVC, Lasso, Ridge, ...), or a Pipeline
        of elementwise affine scalers (StandardScaler, RobustScaler, MaxAbsScaler,
        MinMaxScaler, 'passthrough') ending in one: the attack acts on the Pipeline's
        inputs, through the composed linear predictor. Classifiers must be binary.
    X, y : data to attack.
    eps : float >= 0
        Attack radius.
    perturbation : Perturbation or str, default "linf"
        The set S ("linf" = FGSM, "l2", "l1", or an object).
    method : {"exact", "fgsm"}
        "exact": the move that maximises ``metric``'s per-sample loss (for the
        default metrics, the worst-case margin for classifiers and the worst-case
        squared error for regressors; for ``metric="loss"`` the family loss),
        delta_i = eps argmax_{d in S} +-d^T beta. "fgsm": the literal fast gradient
        sign move delta_i = eps argmax_{d in S} d^T (sign(l'_i) beta) of the family
        loss (samples with l'_i = 0 are not moved).
    metric : {"accuracy", "r2", "loss"} or None
        What "exact" attacks (default: accuracy for classifiers, r2 for regressors).
    family : Family or str or None
        Loss for ``method="fgsm"`` and ``metric="loss"``: the model's own family for
        this package's estimators, else logistic for classifiers and gaussian for
        regressors.

    Returns
    -------
    X_adv : ndarray of shape (n_samples, n_features)
    """
    att = _Attack(model, X, y, eps, perturbation, family, None)
    if method == "exact":
        return att.moved(_worst_sides(model, att, _resolve_metric(metric, att.classifier)))
    if method == "fgsm":
        g = att.family.grad(att.family_y(), att.eta)
        return att.moved(g > 0, stay=g == 0)
    raise ValueError(f"method must be 'exact' or 'fgsm', got {method!r}")


def robust_score(model, X, y, eps, perturbation="linf", metric=None, family=None,
                 sample_weight=None):
    """Exact worst-case score of a fitted linear model under attacks in eps*S.

    .. math::

        \\text{accuracy: } \\frac{1}{n}\\sum_i 1\\{\\min_{\\delta \\in \\epsilon S}
        z_i ((x_i + \\delta)^\\top\\beta + b) > 0\\},\\quad
        \\min_{\\delta} z\\,\\delta^\\top\\beta = -\\epsilon\\,\\sigma_S(-z\\beta)

    (a sample labelled classes_[0] counts as correct when its worst decision value is
    <= 0, scikit-learn's rule); R^2 with each prediction moved to the end of its
    interval farther from y_i; or the mean worst-case family loss (``metric="loss"``,
    docs/theory.md §2). Each equals the metric of the model's predictions on
    ``perturb(...)``'s inputs (the same ``metric``): ``accuracy_score`` or ``r2_score``,
    which is ``model.score`` for classifiers and least-squares regressors but not for a
    GLM regressor whose ``score`` is a deviance D^2 (scikit-learn's PoissonRegressor:
    ``robust_score`` at eps = 0 is its clean R^2, not its ``score``); no other
    perturbation in the ball scores lower (higher for the loss).

    Parameters
    ----------
    model, X, y, eps, perturbation, family
        As for ``perturb``.
    metric : {"accuracy", "r2", "loss"} or None
        The score (default: accuracy for classifiers, R^2 for regressors). There is no
        ``method``: the score is the exact worst case.
    sample_weight : array-like of shape (n_samples,) or None
        Weights of the average (and of R^2's sums).

    Returns
    -------
    float
    """
    att = _Attack(model, X, y, eps, perturbation, family, sample_weight)
    metric = _resolve_metric(metric, att.classifier)
    if metric == "accuracy":
        # worst decision value: eta - c_down for z = +1, eta + c_up for z = -1
        worst = np.where(att.z > 0, att.eta - att.c_down, att.eta + att.c_up)
        correct = np.where(att.z > 0, worst > 0, worst <= 0)
        return float(att.w @ correct)
    if metric == "loss":
        return float(att.w @ att.family.worst_case(att.family_y(), att.eta, att.c_up,
                                                     att.c_down))
    go_up = _worst_sides(model, att, "r2")
    pred = _moved_predictions(model, att, go_up)
    resid = att.w @ (att.y - pred) ** 2
    total = att.w @ (att.y - att.w @ att.y) ** 2
    return float(1.0 - resid / total) if total > 0 else (1.0 if resid == 0 else 0.0)


def robust_scorer(eps, perturbation="linf", metric=None, family=None):
    """A scikit-learn scorer ``scorer(estimator, X, y)`` for GridSearchCV / cross_val_score.

    Greater is better: it returns ``robust_score`` for accuracy and R^2 and the
    negated mean worst-case loss for ``metric="loss"`` (scikit-learn's neg_* convention).
    """
    check_scalar(eps, "eps", lower=0.0)
    resolve_perturbation(perturbation)
    if metric is not None and metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS} or None, got {metric!r}")
    sign = -1.0 if metric == "loss" else 1.0

    def scorer(estimator, X, y, sample_weight=None):
        return sign * robust_score(estimator, X, y, eps, perturbation, metric, family,
                                   sample_weight)

    scorer.__name__ = f"robust_{metric or 'score'}_eps{eps:g}"
    return scorer
