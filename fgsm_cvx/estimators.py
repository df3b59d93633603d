"""scikit-learn estimators for adversarially trained GLMs (and their CV variants).

``AdversarialRegressor`` (gaussian, huber, poisson) and ``AdversarialClassifier``
(logistic, hinge; any two labels) minimise the exact robust objective of docs/theory.md §2,

.. math::

    \\min_{\\beta, b} \\sum_i w_i \\big[\\alpha\\, l(y_i, x_i^\\top\\beta + b)
    + (1-\\alpha) \\max_{\\delta \\in \\epsilon S} l(y_i, (x_i+\\delta)^\\top\\beta + b)\\big],

through ``fc.solve``; ``result_`` keeps the solver's certificate. Models are saved as
JSON with ``to_dict`` / ``from_dict`` (never pickle).
"""

from __future__ import annotations

import numbers
import warnings
from contextlib import contextmanager

import array_api_compat as aac
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import check_cv
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ._spec import decode_value, encode_value
from ._validation import (
    check_bool,
    check_max_iter,
    check_no_missing_labels,
    check_sample_weight,
    check_scalar,
    check_tol,
    check_y,
)
from .cvx import check_solver
from .engine import is_engine_array, make_engine, to_numpy
from .exceptions import SolverError
from .families import Binomial, Poisson
from .problem import AdversarialProblem, resolve_family, resolve_penalty, resolve_perturbation
from .result import Result
from .solve import check_backend, solve

_FORMAT, _VERSION = "fgsm_cvx.model", 1


def _rows(X, idx):
    """X[idx] for an integer index array: numpy, scipy.sparse and dask arrays index so
    directly; an array API array (whose standard has no integer-array indexing:
    array_api_strict refuses it) by ``xp.take``."""
    if isinstance(X, np.ndarray) or sp.issparse(X) or aac.is_dask_array(X):
        return X[idx]
    xp = aac.array_namespace(X)
    return xp.take(X, xp.asarray(idx, device=aac.device(X)), axis=0)


@contextmanager
def _kept_on_failure(estimator):
    """The fitted attributes (``name_``) as they were if the block raises: a refit that
    fails (labels refused, no minimiser) leaves the last fitted model whole, not its
    classes_ or n_features_in_ from the refused data beside the old coef_."""
    def fitted():
        return {k: v for k, v in vars(estimator).items()
                if k.endswith("_") and not k.startswith("_")}

    before = fitted()
    try:
        yield
    except BaseException:
        for name in fitted():
            delattr(estimator, name)
        vars(estimator).update(before)
        raise


class _AdversarialGLM(BaseEstimator):
    """Shared fit / predict / persistence of the two estimators."""

    _families: tuple = ()

    def __init__(self, family, perturbation="linf", eps=0.1, alpha=0.0, fit_intercept=True,
                 penalty=None, constraints=None, backend="auto", solver="ECOS", tol=1e-8,
                 max_iter=None, warm_start=False):
        self.family = family
        self.perturbation = perturbation
        self.eps = eps
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.penalty = penalty
        self.constraints = constraints
        self.backend = backend
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start

    # ----- fitting ------------------------------------------------------------------
    def _family(self):
        family = resolve_family(self.family)
        if family.name not in self._families:
            raise ValueError(f"{type(self).__name__} family must be one of "
                             f"{list(self._families)}, got {self.family!r}")
        return family

    def _check_params(self):
        """Every parameter as ``fit`` checks it, without data (``AdversarialProblem``
        and ``solve``'s checks; the set's and penalty's dimensions need X): a model
        loaded by ``from_dict`` is refused at once rather than at its first use."""
        self._family()
        resolve_perturbation(self.perturbation)
        resolve_penalty(self.penalty)
        check_scalar(self.eps, "eps", lower=0.0)
        check_scalar(self.alpha, "alpha", lower=0.0, upper=1.0)
        check_bool(self.fit_intercept, "fit_intercept")
        check_bool(self.warm_start, "warm_start")
        check_backend(self.backend)
        check_solver(self.solver, installed=False)
        check_tol(self.tol)
        check_max_iter(self.max_iter)

    def _problem(self, X, y, sample_weight, eps=None):
        return AdversarialProblem(
            X, y, family=self._family(), perturbation=self.perturbation,
            eps=self.eps if eps is None else eps, alpha=self.alpha,
            fit_intercept=self.fit_intercept, sample_weight=sample_weight,
            penalty=self.penalty, constraints=self.constraints)

    def _set_solution(self, result):
        self.result_ = result
        self.coef_ = np.asarray(result.coef, dtype=np.float64)
        self.intercept_ = float(result.intercept)
        self.n_iter_ = result.n_iter
        return self

    def _fit_problem(self, prob):
        start = None
        if self.warm_start and hasattr(self, "coef_") and self.coef_.shape == (prob.n_features,):
            start = (self.coef_, self.intercept_ if prob.fit_intercept else 0.0)
        return solve(prob, backend=self.backend, solver=self.solver, tol=self.tol,
                     max_iter=self.max_iter, warm_start=start)

    _sparse = ("csr", "csc")
    _dtypes = (np.float64, np.float32)

    def _validate_fit(self, X, y):
        if not is_engine_array(y):  # (scikit-learn's checks fail on pandas.NA in y)
            check_no_missing_labels(y)
        if is_engine_array(X):
            return self._validate_engine_fit(X, y)
        return validate_data(self, X, y, accept_sparse=self._sparse, dtype=self._dtypes,
                             y_numeric=not self._is_classifier)

    def _validate_engine_fit(self, X, y):
        """A dask / GPU / array API X stays where it is (scikit-learn's validation would
        gather it into numpy): ``AdversarialProblem`` checks it in one reduction. y comes
        to the host (n numbers)."""
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2-d, got shape {tuple(X.shape)}")
        self.n_features_in_ = int(X.shape[1])
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        shape = getattr(y, "shape", ())
        if len(shape) == 2 and shape[1] == 1:  # (scikit-learn's column_or_1d's warning)
            warnings.warn("A column-vector y was passed when a 1d array was expected. "
                          "Please change the shape of y to (n_samples,), for example "
                          "using ravel().", DataConversionWarning, stacklevel=3)
        y = check_y(y, X.shape[0])
        if not self._is_classifier and y.dtype == object:
            y = y.astype(np.float64)
        return X, y

    def _encode_target(self, y, sample_weight):
        """y as the problem takes it (classifiers: 0/1 against ``classes_``)."""
        return y

    def fit(self, X, y, sample_weight=None):
        """Fit on X (dense, scipy.sparse, DataFrame, or a dask / GPU / array API array,
        kept where it is and fitted by the fast path) and y, with optional sample weights.
        """
        self._check_params()
        with _kept_on_failure(self):
            X, y = self._validate_fit(X, y)
            y = self._encode_target(y, sample_weight)
            return self._set_solution(self._fit_problem(self._problem(X, y, sample_weight)))

    def _linear_predictor(self, X):
        """eta = X beta + b for new data (checked against the fitted features)."""
        check_is_fitted(self)
        if is_engine_array(X):  # computed where X lives; n numbers come back to numpy
            if len(X.shape) != 2 or X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has shape {tuple(X.shape)}, but {type(self).__name__} "
                                 f"is expecting {self.n_features_in_} features as input")
            return to_numpy(make_engine(X).matvec(self.coef_)) + self.intercept_
        X = validate_data(self, X, accept_sparse=self._sparse, dtype=self._dtypes, reset=False)
        return np.asarray(X @ self.coef_).ravel() + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ----- persistence --------------------------------------------------------------
    def to_dict(self):
        """A JSON-safe description: parameters and, when fitted, the solution.

        Families, perturbation sets and penalties are written as
        ``{"type": ..., "params": ...}`` (a ``CustomSet`` cannot be saved).
        """
        out = {"format": _FORMAT, "version": _VERSION, "estimator": type(self).__name__,
               "params": {k: encode_value(v) for k, v in self.get_params(deep=False).items()}}
        if hasattr(self, "coef_"):
            names = getattr(self, "feature_names_in_", None)
            out["fitted"] = {
                "coef": [float(c) for c in self.coef_],
                "intercept": float(self.intercept_),
                "n_features_in": int(self.n_features_in_),
                "feature_names_in": None if names is None else [str(s) for s in names],
                "classes": (np.asarray(self.classes_).tolist()
                            if hasattr(self, "classes_") else None),
                # the labels' dtype (int8, bool, object ...: JSON lists read back as
                # int64 or str), for predict to return what it did
                "classes_dtype": (_label_dtype(np.asarray(self.classes_))
                                  if hasattr(self, "classes_") else None),
                "result": self.result_.to_dict(),
            }
        return out

    @classmethod
    def from_dict(cls, d):
        """Rebuild an estimator written by ``to_dict``.

        Raises
        ------
        ValueError
            If ``d`` is not a model description for this class, or any entry is
            malformed (unknown types, wrong lengths, non-finite coefficients ...).
        """
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise ValueError(f"not a saved fgsm_cvx model (expected 'format': '{_FORMAT}')")
        if d.get("version") != _VERSION:
            raise ValueError(f"unsupported model version {d.get('version')!r} "
                             f"(this is version {_VERSION})")
        if d.get("estimator") != cls.__name__:
            raise ValueError(f"the file holds a {d.get('estimator')!r}, not a {cls.__name__}")
        params = d.get("params")
        if not isinstance(params, dict):
            raise ValueError("'params' must be a JSON object")
        valid = set(cls().get_params(deep=False))
        unknown = sorted(set(params) - valid)
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; {cls.__name__} takes "
                             f"{sorted(valid)}")
        model = cls(**{k: decode_value(v, f"params.{k}") for k, v in params.items()})
        model._check_params()  # (a hand-edited file: eps = -1 would load and score)
        if "fitted" in d:
            model._load_fitted(d["fitted"])
        return model

    def _load_fitted(self, f):
        if not isinstance(f, dict):
            raise ValueError("'fitted' must be a JSON object")
        for key in ("coef", "intercept", "n_features_in", "result"):
            if key not in f:
                raise ValueError(f"'fitted' is missing {key!r}")
        coef = f["coef"]
        if (not isinstance(coef, list)
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool)
                           for c in coef)):
            raise ValueError("'fitted.coef' must be a list of numbers")
        coef = np.asarray(coef, dtype=np.float64)
        intercept = f["intercept"]
        if isinstance(intercept, bool) or not isinstance(intercept, (int, float)):
            raise ValueError("'fitted.intercept' must be a number")
        if not (np.all(np.isfinite(coef)) and np.isfinite(intercept)):
            raise ValueError("'fitted' holds non-finite coefficients")
        if f["n_features_in"] != coef.shape[0]:
            raise ValueError(f"'fitted.n_features_in' is {f['n_features_in']!r} but coef has "
                             f"{coef.shape[0]} entries")
        names = f.get("feature_names_in")
        if names is not None:
            if (not isinstance(names, list) or len(names) != coef.shape[0]
                    or not all(isinstance(s, str) for s in names)):
                raise ValueError("'fitted.feature_names_in' must list one string per feature")
            self.feature_names_in_ = np.asarray(names, dtype=object)
        self._load_classes(f.get("classes"), f.get("classes_dtype"))
        result = Result.from_dict(f["result"])
        if result.coef.shape != coef.shape:
            raise ValueError("'fitted.result' does not match 'fitted.coef'")
        self.n_features_in_ = coef.shape[0]
        self._set_solution(result)
        self.coef_, self.intercept_ = coef, float(intercept)

    def _load_classes(self, classes, dtype=None):
        if classes is not None or dtype is not None:
            raise ValueError("'fitted.classes' must be null for a regressor")


def _label_dtype(classes):
    """The dtype of the labels as saved: numpy's string for numbers and booleans,
    "object" for Python objects (pandas' labels), None for numpy strings (the default
    of a JSON list of strings)."""
    if classes.dtype == object:
        return "object"
    return classes.dtype.str if classes.dtype.kind in "biuf" else None


class AdversarialRegressor(RegressorMixin, _AdversarialGLM):
    """Adversarially trained GLM regression (FGSM and its generalisations).

    Minimises the exact worst-case loss over perturbations delta in eps*S of the inputs,
    mixed with the clean loss by ``alpha`` (docs/theory.md §2):

    .. math::

        \\sum_i w_i\\big[\\alpha\\, l(y_i, \\eta_i) + (1-\\alpha)\\,
        \\max(l(y_i, \\eta_i + \\epsilon\\sigma_S(\\beta)),
        l(y_i, \\eta_i - \\epsilon\\sigma_S(-\\beta)))\\big],\\quad
        \\eta_i = x_i^\\top\\beta + b.

    For S the Linf box (FGSM) and squared loss this is a square-loss Lasso-like problem:
    the shift eps ||beta||_1 acts like an automatically noise-scaled L1 penalty.

    Parameters
    ----------
    family : {"gaussian", "huber", "poisson"} or Family, default "gaussian"
        The loss; poisson uses the log link (predictions exp(eta)).
    perturbation : Perturbation or {"linf", "l2", "l1"}, default "linf"
        The attacker's set S at radius 1 ("linf" = FGSM).
    eps : float >= 0, default 0.1
        Attack radius (in the units of X).
    alpha : float in [0, 1], default 0.0
        Weight of the clean loss (Goodfellow's mix).
    fit_intercept : bool, default True
    penalty : Penalty or str or None
        Generalized FGSM: the shift eps P(beta) instead of eps sigma_S(beta).
    constraints : str, tuple, callable, list or None
        Constraints on the coefficients, as for ``AdversarialProblem`` ("nonnegative",
        (lower, upper) bounds, ...). Bounds also guarantee a solution on data that are
        separable beyond eps, where the robust logistic loss has no minimiser.
    backend : {"auto", "cvxpy", "fast"}, default "auto"
    solver : {"ECOS", "CLARABEL", "SCS"}, default "ECOS"
        Conic solver for the cvxpy backend.
    tol : float, default 1e-8
    max_iter : int or None
    warm_start : bool, default False
        Start the fast backend from the previous fit's solution.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int or None
    result_ : Result
        The solution with its certificate (``result_.certificate``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str (only for DataFrame input with string columns)

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3))
    >>> y = X @ [1.0, 0.0, -2.0] + 0.5 * rng.standard_normal(100)
    >>> model = fc.AdversarialRegressor(eps=0.05).fit(X, y)
    >>> model.coef_.round(2)
    array([ 0.97, -0.05, -2.06])
    """

    _families = ("gaussian", "huber", "poisson")
    _is_classifier = False

    def __init__(self, family="gaussian", perturbation="linf", eps=0.1, alpha=0.0,
                 fit_intercept=True, penalty=None, constraints=None, backend="auto",
                 solver="ECOS", tol=1e-8, max_iter=None, warm_start=False):
        super().__init__(family=family, perturbation=perturbation, eps=eps, alpha=alpha,
                         fit_intercept=fit_intercept, penalty=penalty, constraints=constraints,
                         backend=backend, solver=solver, tol=tol, max_iter=max_iter,
                         warm_start=warm_start)

    def predict(self, X):
        """The mean response: eta, or exp(eta) for poisson."""
        eta = self._linear_predictor(X)
        return np.exp(eta) if isinstance(self._family(), Poisson) else eta

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            tags.target_tags.positive_only = isinstance(self._family(), Poisson)
        except (TypeError, ValueError):  # invalid family: reported by fit
            pass
        return tags


class AdversarialClassifier(ClassifierMixin, _AdversarialGLM):
    """Adversarially trained binary linear classifier (logistic or hinge loss).

    Minimises the exact worst-case loss (docs/theory.md §2); for a margin loss phi(z eta)
    the attacker lowers every margin by eps sigma_S(z beta):

    .. math::

        \\sum_i w_i\\big[\\alpha\\,\\phi(z_i\\eta_i) + (1-\\alpha)\\,
        \\phi(z_i\\eta_i - \\epsilon\\,\\sigma_S(-z_i\\beta))\\big],\\quad z_i = \\pm 1.

    For logistic loss this is exactly what FGSM training optimises.

    Parameters
    ----------
    family : {"logistic", "hinge"} or Family, default "logistic"
        Any two labels are accepted; ``classes_[1]`` (the larger) is the positive one.
    perturbation, eps, alpha, fit_intercept, penalty, constraints, backend, solver, tol,
    max_iter, warm_start
        As for ``AdversarialRegressor``. On classes separable with a margin above eps the
        robust logistic loss has no minimiser: ``fit`` then raises ``SolverError``
        (status "unbounded"); use a larger eps, the hinge loss or coefficient bounds.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_, intercept_, n_iter_, result_, n_features_in_, feature_names_in_
        As for ``AdversarialRegressor``.

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> X = np.random.default_rng(0).standard_normal((200, 2))
    >>> y = np.where(X[:, 0] - X[:, 1] > 0, "yes", "no")
    >>> clf = fc.AdversarialClassifier(eps=0.1).fit(X, y)
    >>> clf.classes_.tolist(), clf.score(X, y) > 0.9
    (['no', 'yes'], True)
    """

    _families = ("binomial", "hinge")
    _is_classifier = True

    def __init__(self, family="logistic", perturbation="linf", eps=0.1, alpha=0.0,
                 fit_intercept=True, penalty=None, constraints=None, backend="auto",
                 solver="ECOS", tol=1e-8, max_iter=None, warm_start=False):
        super().__init__(family=family, perturbation=perturbation, eps=eps, alpha=alpha,
                         fit_intercept=fit_intercept, penalty=penalty, constraints=constraints,
                         backend=backend, solver=solver, tol=tol, max_iter=max_iter,
                         warm_start=warm_start)

    def _binary(self, y, sample_weight):
        """Check the labels and code them 0/1 against ``classes_``."""
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the "
                             f"target is {kind}.")
        self.classes_ = np.unique(y)
        w = check_sample_weight(sample_weight, y.shape[0])
        present = [c for c in self.classes_ if w @ (y == c) > 0]
        if len(present) != 2:
            raise ValueError(f"{type(self).__name__} needs two classes with positive "
                             f"sample weight in y, got {len(present)} class "
                             f"({np.asarray(present).tolist()})")
        return (y == self.classes_[1]).astype(np.float64)

    def _encode_target(self, y, sample_weight):
        return self._binary(y, sample_weight)

    def decision_function(self, X):
        """The linear predictor eta = X beta + b (> 0 predicts classes_[1])."""
        return self._linear_predictor(X)

    def predict(self, X):
        """classes_[1] where the decision value is > 0, classes_[0] elsewhere."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(np.intp)]

    def _is_logistic(self):
        return isinstance(resolve_family(self.family), Binomial)

    @available_if(_is_logistic)
    def predict_proba(self, X):
        """[P(classes_[0]), P(classes_[1])] with P(classes_[1]) = 1 / (1 + exp(-eta))."""
        from scipy.special import expit

        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    @available_if(_is_logistic)
    def predict_log_proba(self, X):
        """log of ``predict_proba``, computed stably (log sigma(eta) = -log(1 + e^-eta))."""
        eta = self.decision_function(X)
        return np.column_stack([-np.logaddexp(0.0, eta), -np.logaddexp(0.0, -eta)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _load_classes(self, classes, dtype=None):
        if not isinstance(classes, list) or len(classes) != 2:
            raise ValueError("'fitted.classes' must list the two class labels")
        if not all(isinstance(c, (str, int, float, bool)) for c in classes):
            raise ValueError("'fitted.classes' must hold strings or numbers")
        self.classes_ = np.asarray(classes)
        if dtype is None:
            return
        try:
            kind = np.dtype(dtype) if dtype != "object" else np.dtype(object)
        except (TypeError, ValueError):
            kind = None
        if kind is None or kind.kind not in "biufO":
            raise ValueError(f"'fitted.classes_dtype' must be a numeric, bool or object "
                             f"dtype, got {dtype!r}")
        cast = self.classes_.astype(kind)
        if kind.kind != "O" and not np.array_equal(cast, self.classes_):
            raise ValueError(f"'fitted.classes' {classes} do not fit the dtype {dtype!r}")
        self.classes_ = np.asarray(classes, dtype=object) if kind.kind == "O" else cast


def model_from_dict(d):
    """Rebuild any estimator of this package from its ``to_dict`` description.

    The description is plain JSON (no pickle); every value is re-validated, and unknown
    types or parameters raise ``ValueError``.

    Examples
    --------
    >>> import json, numpy as np, fgsm_cvx as fc
    >>> X = np.random.default_rng(0).standard_normal((50, 2))
    >>> model = fc.AdversarialRegressor(eps=0.1).fit(X, X @ [1.0, -1.0])
    >>> text = json.dumps(model.to_dict())
    >>> again = fc.model_from_dict(json.loads(text))
    >>> type(again).__name__, bool(np.all(again.coef_ == model.coef_))
    ('AdversarialRegressor', True)
    """
    classes = {c.__name__: c for c in (AdversarialRegressor, AdversarialClassifier,
                                       AdversarialRegressorCV, AdversarialClassifierCV)}
    name = d.get("estimator") if isinstance(d, dict) else None
    if name not in classes:
        raise ValueError(f"not a saved fgsm_cvx model: 'estimator' must be one of "
                         f"{sorted(classes)}, got {name!r}")
    return classes[name].from_dict(d)


# ---------------------------------------------------------------------------------
# cross-validation over the eps path
# ---------------------------------------------------------------------------------
class _CVMixin:
    """K-fold cross-validation over a warm-started eps path, then a refit at ``eps_``."""

    _cv_params = ("eps_grid", "n_eps", "eps_min_ratio", "cv", "attack_eps",
                  "attack_perturbation", "rule", "verbose")

    # The problem's own eps is unused (every radius comes from the grid); refits are cold.
    eps = 0.0
    warm_start = False

    def _set_params_from(self, args):
        """Store the constructor arguments unchanged (scikit-learn's convention)."""
        for name, value in args.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _check_cv_params(self):
        from .path import check_grid_params, check_radii

        if self.eps_grid is not None:
            check_radii(self.eps_grid, "eps_grid")
        check_grid_params(self.n_eps, self.eps_min_ratio)
        cv = self.cv
        if isinstance(cv, (bool, str)) or (isinstance(cv, numbers.Integral) and cv < 2) or not (
                cv is None or isinstance(cv, numbers.Integral) or hasattr(cv, "split")
                or hasattr(cv, "__iter__")):
            raise ValueError(f"cv must be None, an integer >= 2, a CV splitter or an "
                             f"iterable of (train, test) splits, got {cv!r}")
        if self.rule not in ("best", "1se"):
            raise ValueError(f"rule must be 'best' or '1se', got {self.rule!r}")
        if self.attack_eps is not None:
            check_scalar(self.attack_eps, "attack_eps", lower=0.0)
        if self.attack_perturbation is not None:
            resolve_perturbation(self.attack_perturbation)
        if self.verbose is not None:
            check_bool(self.verbose, "verbose")

    def _check_params(self):
        super()._check_params()
        self._check_cv_params()

    def _score(self, model, X, y, w):
        """Clean score (accuracy / R^2), or the robust one at ``attack_eps``."""
        if self.attack_eps is None:
            return model.score(X, y, sample_weight=w)
        from .attacks import robust_score

        pert = self.perturbation if self.attack_perturbation is None else \
            self.attack_perturbation
        return robust_score(model, X, y, self.attack_eps, pert, sample_weight=w)

    def _fitted_at(self, coef, intercept, n_features):
        """A plain estimator holding (coef, intercept), for scoring a path point."""
        model = self._base_class(**{k: v for k, v in self.get_params(deep=False).items()
                                    if k not in self._cv_params})
        model.coef_, model.intercept_, model.n_features_in_ = coef, intercept, n_features
        if hasattr(self, "classes_"):
            model.classes_ = self.classes_
        return model

    def fit(self, X, y, sample_weight=None, groups=None):
        """Cross-validate over the eps grid, then refit at ``eps_``. ``groups``: the
        samples' group labels, for a group splitter given as ``cv`` (GroupKFold, ...)."""
        self._check_params()
        with _kept_on_failure(self):
            X, y = self._validate_fit(X, y)
            return self._cross_validate(X, self._encode_target(y, sample_weight),
                                        sample_weight, groups)

    def _cross_validate(self, X, y, sample_weight, groups=None):
        from .path import adversarial_path, check_radii, eps_grid

        if X.shape[0] < 2:
            raise ValueError(f"cross-validation needs at least 2 samples, got "
                             f"n_samples={X.shape[0]}")
        full = self._problem(X, y, sample_weight)
        if self.eps_grid is None:
            try:
                grid = eps_grid(full, self.n_eps, self.eps_min_ratio)
            except ValueError as err:  # (eps_max 0 or inf, n_eps and the ratio being
                # checked: the estimator's own advice)
                raise ValueError(f"{str(err).split(';')[0]}; pass the radii with "
                                 f"{type(self).__name__}(eps_grid=[...])") from err
        else:
            grid = check_radii(self.eps_grid, "eps_grid")
        splitter = check_cv(self.cv, y, classifier=self._is_classifier)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        scores = []
        y_labels = y if not self._is_classifier else self.classes_[y.astype(np.intp)]
        for train, test in splitter.split(X, y, groups):
            prob = self._problem(_rows(X, train), y[train], None if w is None else w[train])
            with warnings.catch_warnings():  # (the stop is recorded as NaN scores)
                warnings.filterwarnings("ignore", message="the path stops at eps")
                try:
                    path = adversarial_path(prob, eps=grid, backend=self.backend,
                                            solver=self.solver, tol=self.tol,
                                            max_iter=self.max_iter, verbose=self.verbose,
                                            on_unbounded="stop")
                except SolverError as err:
                    if err.status != "unbounded":
                        raise
                    path = None  # no minimiser at the first radius: every radius is NaN
            fold = [] if path is None else [
                self._score(self._fitted_at(c, b, X.shape[1]), _rows(X, test), y_labels[test],
                            None if w is None else w[test])
                for c, b in zip(path.coefs, path.intercepts, strict=True)]
            # radii where this training part has no minimiser (separable classes): NaN
            scores.append(fold + [np.nan] * (grid.shape[0] - len(fold)))
        self.eps_grid_ = grid
        self._set_scores(np.asarray(scores))
        # (a radius with a NaN fold is never chosen)
        if np.all(np.isnan(self.cv_mean_)):
            # no radius scored in every fold (R^2 of a one-sample test fold, as with
            # LeaveOneOut, is undefined): eps_max was chosen silently
            raise ValueError("no radius could be scored in every fold (NaN scores: a "
                             "training part with no minimiser at any radius of the grid, "
                             "separable classes, or a test fold of one sample, which has "
                             "no R^2, e.g. LeaveOneOut); use larger radii, or folds of two "
                             "samples or more")
        mean = np.where(np.isnan(self.cv_mean_), -np.inf, self.cv_mean_)
        best = int(np.argmax(mean))
        if self.rule == "1se":
            # largest eps (grid is decreasing: smallest index) within one SE of the best
            se = self.cv_se_[best]
            if not np.isfinite(se):  # one fold: no standard error (ddof = 1)
                warnings.warn("rule='1se' needs the scores of two folds or more for a "
                              "standard error; the best radius is chosen", UserWarning,
                              stacklevel=3)
                se = 0.0
            ok = mean >= self.cv_mean_[best] - se
            ok[best] = True
            best = int(np.flatnonzero(ok)[0])
        scored = np.flatnonzero(np.all(np.isfinite(self.cv_scores_), axis=0))
        if scored.shape[0] < grid.shape[0] and best == scored[-1] and best + 1 < grid.shape[0]:
            # the smaller radii were not scored in every fold: the choice sits at the edge
            # of what could be compared, and the data might have chosen a smaller one
            warnings.warn(f"eps_ = {grid[best]:g} is the smallest radius scored in every "
                          f"fold: below it some training parts have no minimiser "
                          f"(classes separable with a margin above the radius), so those "
                          f"radii score NaN and a smaller radius could not be compared; "
                          f"eps_ may be larger than the data would choose (other folds, "
                          f"or radii between {grid[best + 1]:g} and {grid[best]:g} in "
                          f"eps_grid, may tell)", UserWarning, stacklevel=3)
        self.best_index_ = best
        self.eps_ = float(grid[best])
        prob = full.with_params(eps=self.eps_)
        return self._set_solution(self._fit_problem(prob))

    def _set_scores(self, scores):
        """``cv_scores_`` (n_folds, n_eps) and its mean and standard error per radius."""
        self.cv_scores_ = scores
        self.cv_mean_ = scores.mean(axis=0)
        self.cv_se_ = scores.std(axis=0, ddof=1) / np.sqrt(scores.shape[0]) \
            if scores.shape[0] > 1 else np.full(scores.shape[1], np.nan)

    def to_dict(self):
        """``to_dict`` of the base estimator, and when fitted the cross-validation's
        grid, fold scores (NaN written as null) and choice."""
        out = super().to_dict()
        if "fitted" in out and hasattr(self, "eps_"):
            out["fitted"]["cv"] = {
                "eps_grid": [float(e) for e in self.eps_grid_],
                "scores": [[None if np.isnan(v) else float(v) for v in row]
                           for row in self.cv_scores_],
                "best_index": int(self.best_index_)}
        return out

    def _load_fitted(self, f):
        super()._load_fitted(f)
        cv = f.get("cv")
        if cv is None:
            return
        if not isinstance(cv, dict) or set(cv) != {"eps_grid", "scores", "best_index"}:
            raise ValueError("'fitted.cv' must hold 'eps_grid', 'scores' and 'best_index'")

        def number(v, null=False):
            return (null and v is None) or (isinstance(v, (int, float))
                                            and not isinstance(v, bool) and np.isfinite(v))

        grid, scores, best = cv["eps_grid"], cv["scores"], cv["best_index"]
        if not (isinstance(grid, list) and grid and all(number(e) and e >= 0 for e in grid)):
            raise ValueError("'fitted.cv.eps_grid' must list radii >= 0")
        if not (isinstance(scores, list) and scores and all(
                isinstance(row, list) and len(row) == len(grid)
                and all(number(v, null=True) for v in row) for row in scores)):
            raise ValueError("'fitted.cv.scores' must list one score (or null) per radius "
                             "for each fold")
        if isinstance(best, bool) or not isinstance(best, int) or not 0 <= best < len(grid):
            raise ValueError("'fitted.cv.best_index' must index 'fitted.cv.eps_grid'")
        self.eps_grid_ = np.asarray(grid, dtype=np.float64)
        self._set_scores(np.array([[np.nan if v is None else v for v in row]
                                   for row in scores], dtype=np.float64))
        self.best_index_, self.eps_ = best, float(self.eps_grid_[best])


_CV_DOC = """
    Cross-validation over a path of radii: for each of K folds the path is solved on the
    training part (warm-started, ``fc.adversarial_path``) and every point is scored on the
    held-out part, by the clean score (accuracy / R^2) or, with ``attack_eps``, the exact
    robust score at that radius (``fc.attacks.robust_score``). ``eps_`` maximises the mean
    score (``rule="best"``) or is the largest radius whose mean is within one standard
    error of the best (``rule="1se"``); the model is then refitted on all data at ``eps_``.

    Parameters
    ----------
    eps_grid : array-like or None
        Radii to try; default: ``n_eps`` log-spaced from eps_max of the full data down to
        ``eps_min_ratio * eps_max``.
    n_eps : int, default 20
    eps_min_ratio : float in (0, 1), default 1e-3
    cv : int, CV splitter or iterable, default 5
        As in scikit-learn (stratified K-fold for classifiers).
    attack_eps : float or None
        Score by robust score at this radius instead of the clean score.
    attack_perturbation : Perturbation or str or None
        The attack set for the robust score (default: the training perturbation).
    rule : {"best", "1se"}, default "best"
        A radius at which a training part has no minimiser (logistic classes separable
        with a margin above it, hence at every smaller radius too) ends that fold's path
        (``adversarial_path(..., on_unbounded="stop")``): it scores NaN there and is not
        chosen. (The refit on all the data raises ``SolverError`` in the degenerate case
        that the whole data has none at the chosen radius.)
    verbose : bool or None
        Progress bars of the paths (None: on a terminal, for long paths).
    Other parameters as for the base estimator (``eps`` is not one: it is chosen).

    Attributes
    ----------
    eps_ : float
        The chosen radius.
    eps_grid_ : ndarray (n_eps,)
    cv_scores_ : ndarray (n_folds, n_eps)
        NaN where the fold's training part has no minimiser.
    cv_mean_, cv_se_ : ndarray (n_eps,)
        Mean score and its standard error across folds (NaN where a fold is).
    best_index_ : int
    coef_, intercept_, result_, n_iter_, n_features_in_ : of the refit at ``eps_``.
"""


class AdversarialRegressorCV(_CVMixin, AdversarialRegressor):
    __doc__ = "AdversarialRegressor with eps chosen by K-fold cross-validation.\n" + _CV_DOC
    _base_class = AdversarialRegressor

    def __init__(self, family="gaussian", perturbation="linf", eps_grid=None, n_eps=20,
                 eps_min_ratio=1e-3, cv=5, attack_eps=None, attack_perturbation=None,
                 rule="best", alpha=0.0, fit_intercept=True, penalty=None, constraints=None,
                 backend="auto", solver="ECOS", tol=1e-8, max_iter=None, verbose=None):
        self._set_params_from(locals())



class AdversarialClassifierCV(_CVMixin, AdversarialClassifier):
    __doc__ = "AdversarialClassifier with eps chosen by K-fold cross-validation.\n" + _CV_DOC
    _base_class = AdversarialClassifier

    def __init__(self, family="logistic", perturbation="linf", eps_grid=None, n_eps=20,
                 eps_min_ratio=1e-3, cv=5, attack_eps=None, attack_perturbation=None,
                 rule="best", alpha=0.0, fit_intercept=True, penalty=None, constraints=None,
                 backend="auto", solver="ECOS", tol=1e-8, max_iter=None, verbose=None):
        self._set_params_from(locals())
