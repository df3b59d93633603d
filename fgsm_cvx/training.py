"""FGSM training as practitioners run it: attack at the current weights, then step.

The deep-learning recipe (Goodfellow et al. 2015) applied to the one-layer model: at each
step, on a mini-batch B,

1. generate FGSM examples at the current weights, x_adv_i = x_i + delta_i with
   delta_i = eps * argmax_{delta in S} delta^T (sign(l'(y_i, eta_i)) beta) (for the Linf
   box S: eps sign(l'_i) sign(beta), Goodfellow's x + eps sign(grad_x l));
2. take a gradient step on the mixed loss with x_adv held fixed,

   .. math:: g = \\sum_{i \\in B} \\tilde w_i \\nabla_{\\beta, b}
             \\big[\\alpha\\, l(y_i, x_i^\\top\\beta + b)
                   + (1-\\alpha)\\, l(y_i, x_{adv,i}^\\top\\beta + b)\\big],

   tilde w_i = w_i n / |B| (an unbiased estimate of the full weighted-mean gradient).

Danskin's theorem (docs/theory.md §5): where the FGSM point is the exact maximiser of the loss
over the ball (gaussian and huber with a symmetric set, logistic with any set), g is a
(stochastic) subgradient of the exact robust objective R, which is convex; with decaying
steps (sum lr_t = inf, sum lr_t^2 < inf, or lr / sqrt(t)) the iterates converge to the
solution of ``fc.solve``. Where it is not (poisson: near l' = 0 the far endpoint is
larger; hinge: sign(0) = 0 leaves points beyond the margin unperturbed), g is not a
subgradient of R and the loop can settle elsewhere; the history shows how far.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_scalar
from .families import Binomial, Gaussian, Huber
from .problem import check_problem, fgsm_objective, robust_objective

__all__ = ["SCHEDULES", "TrainingResult", "fgsm_exact", "fgsm_gradient", "fgsm_train",
           "step_size"]

SCHEDULES = ("sqrt", "inverse", "constant")


def step_size(lr, t, schedule="sqrt", t0=1.0):
    """The step size at step t = 0, 1, 2, ...

    .. math::

        \\text{sqrt: } \\frac{lr}{\\sqrt{1 + t / t_0}}, \\qquad
        \\text{inverse: } \\frac{lr}{1 + t / t_0}, \\qquad \\text{constant: } lr.

    "sqrt" is the classical rate of the (stochastic) subgradient method on a convex
    non-smooth objective; "inverse" satisfies sum lr_t = inf and sum lr_t^2 < inf.
    """
    if schedule == "sqrt":
        return lr / np.sqrt(1.0 + t / t0)
    if schedule == "inverse":
        return lr / (1.0 + t / t0)
    return lr


def fgsm_exact(prob):
    """True when the FGSM point is the exact worst case for every sample (docs/theory.md §2).

    Logistic: the loss is monotone in the margin, so sign(l') picks the worst endpoint
    for any set. Gaussian and huber: symmetric losses, exact for a symmetric set (equal
    shifts up and down). Poisson and hinge: not exact.
    """
    fam = check_problem(prob).family
    if isinstance(fam, Binomial):
        return True
    return isinstance(fam, (Gaussian, Huber)) and prob.symmetric


@dataclass(frozen=True)
class TrainingResult:
    """The outcome of ``fgsm_train``.

    Attributes
    ----------
    coef : ndarray, shape (n_features,)
    intercept : float
    objective : float
        The exact robust objective R at (coef, intercept) (``fc.robust_objective``).
    history : ndarray, shape (epochs + 1,)
        R at the start and after every epoch.
    fgsm_history : ndarray, shape (epochs + 1,)
        The literal FGSM objective (``fc.fgsm_objective``, what the training loop
        sees) at the same points; equal to ``history`` when ``fgsm_is_exact``.
    coef_history : ndarray, shape (epochs + 1, n_features)
    intercept_history : ndarray, shape (epochs + 1,)
        The iterates at the same points.
    steps : int
        Number of gradient steps taken.
    lr, schedule, t0, batch_size, epochs, seed
        The settings (batch_size is n for full-batch training).
    fgsm_is_exact : bool
        Whether FGSM is the exact worst case for this family and set (``fgsm_exact``):
        then the loop is a stochastic subgradient method on R.
    train_time : float
        Seconds.

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 3))
    >>> y = (X @ [1.0, -1.0, 0.0] + rng.logistic(size=500) > 0).astype(float)
    >>> prob = fc.AdversarialProblem(X, y, family="binomial", eps=0.05)
    >>> run = fc.fgsm_train(prob, lr=1.0, epochs=200, batch_size=50, seed=0)
    >>> run.fgsm_is_exact, run.history.shape
    (True, (201,))
    >>> exact = fc.solve(prob)  # the convex solution the loop approaches
    >>> bool(run.objective - exact.objective < 1e-3 * exact.objective)
    True
    """

    coef: np.ndarray
    intercept: float
    objective: float
    history: np.ndarray = field(repr=False)
    fgsm_history: np.ndarray = field(repr=False)
    coef_history: np.ndarray = field(repr=False)
    intercept_history: np.ndarray = field(repr=False)
    steps: int
    lr: float
    schedule: str
    t0: float
    batch_size: int
    epochs: int
    seed: object
    fgsm_is_exact: bool
    train_time: float

    def gap(self, optimum):
        """Relative objective gap (history - optimum) / |optimum| per epoch.

        ``optimum`` is the robust objective at the exact solution (a float or a
        ``Result`` of ``fc.solve``).
        """
        value = float(getattr(optimum, "objective", optimum))
        return (self.history - value) / abs(value)


def _check_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def fgsm_gradient(prob, coef, intercept, idx):
    """The training loop's gradient on the samples ``idx`` (FGSM examples held fixed).

    .. math::

        g = \\sum_{i \\in B} \\tilde w_i \\big[\\alpha\\, l'(y_i, \\eta_i)\\, \\tilde x_i
            + (1-\\alpha)\\, l'(y_i, \\eta_i + \\delta_i^\\top\\beta)\\,
              (\\tilde x_i + (\\delta_i, 0))\\big],
        \\qquad \\tilde w_i = w_i n / |B|,

    x~ = (x, 1), delta_i the FGSM move at (coef, intercept). Returns (g_coef, g_intercept).
    """
    fam, alpha, eps = prob.family, prob.alpha, prob.eps
    n = prob.n_samples
    XB, yB = prob.X[idx], prob.y[idx]
    wB = prob.sample_weight[idx] * (n / len(idx))  # E over batches = sum_i w_i g_i
    eta = np.asarray(XB @ coef).ravel() + intercept
    s = np.sign(fam.grad(yB, eta))
    # the attacker's unit moves: up^T beta = sigma_S(beta), down^T beta = -sigma_S(-beta)
    up, down = prob.unit_noise(coef, +1.0), prob.unit_noise(coef, -1.0)
    # (x + delta)^T beta + b: FGSM shifts eta by eps up^T beta where l' > 0, by
    # eps down^T beta where l' < 0, and not at all where l' = 0
    shift = np.where(s > 0, eps * (up @ coef), np.where(s < 0, eps * (down @ coef), 0.0))
    g_adv = fam.grad(yB, eta + shift) if alpha < 1 else np.zeros_like(eta)
    g_clean = fam.grad(yB, eta) if alpha > 0 else np.zeros_like(eta)
    c = wB * (alpha * g_clean + (1.0 - alpha) * g_adv)  # d loss_i / d eta, weighted
    g_coef = np.asarray(XB.T @ c).ravel()
    if alpha < 1:
        # d/d beta of l(y, (x + delta)^T beta + b) with delta fixed is l'(eta_adv) (x + delta):
        # the delta part sums eps up (l' > 0) and eps down (l' < 0) over the batch
        c_adv = (1.0 - alpha) * wB * g_adv
        g_coef = g_coef + eps * (up * c_adv[s > 0].sum() + down * c_adv[s < 0].sum())
    return g_coef, float(c.sum())


def fgsm_train(prob, lr=0.5, epochs=100, batch_size=None, seed=0, schedule="sqrt", t0=None,
               init=None):
    """Adversarial training with FGSM examples and (mini-batch) gradient steps.

    At step t, on the mini-batch B (a fresh random partition of the samples each
    epoch), with eta_i = x_i^T beta + b and s_i = sign(l'(y_i, eta_i)):

    .. math::

        \\delta_i = \\epsilon\\, \\arg\\max_{\\delta \\in S} \\delta^\\top (s_i \\beta), \\qquad
        (\\beta, b) \\leftarrow (\\beta, b) - lr_t \\sum_{i \\in B} \\tilde w_i
        \\nabla \\big[\\alpha\\, l(y_i, \\eta_i)
            + (1-\\alpha)\\, l(y_i, (x_i + \\delta_i)^\\top \\beta + b)\\big],

    delta_i held fixed in the gradient (the practitioner's loop). For the Linf box this
    is FGSM, delta_i = eps s_i sign(beta); for another set it is the attacker's exact
    move in the direction of that set's dual norm (``Perturbation.unit_argmax``: the
    normalised gradient for the L2 ball, FGM), and for a generalized penalty its noise
    scheme, the same moves as ``fc.fgsm_perturbation``. Samples with l' = 0 are not moved.

    Step sizes (``step_size``): "sqrt" lr / sqrt(1 + t/t0) (default), "inverse"
    lr / (1 + t/t0), "constant" lr. With a decaying schedule and FGSM exact
    (``fgsm_exact``: gaussian / huber with a symmetric set, logistic), Danskin's theorem
    makes each step a stochastic subgradient step on the convex robust objective
    (docs/theory.md §5), so the iterates converge to ``fc.solve``'s solution; for poisson and
    hinge they need not.

    Parameters
    ----------
    prob : AdversarialProblem
        Data, family, set, eps and alpha. Bound constraints are kept by clipping after
        each step (projected steps); callable constraints are refused.
    lr : float > 0, default 0.5
        Base step size (the objective is a weighted mean, so lr does not scale with n).
    epochs : int >= 1, default 100
    batch_size : int or None
        Mini-batch size; None is full batch (one step per epoch, deterministic).
    seed : int, SeedSequence, Generator or None, default 0
        Shuffling of the mini-batches.
    schedule : {"sqrt", "inverse", "constant"}, default "sqrt"
    t0 : float > 0 or None
        Time scale of the schedule in steps; None is one epoch (steps per epoch).
    init : (coef, intercept), Result or None
        Starting point; None is beta = 0 and the intercept-only fit.

    Returns
    -------
    TrainingResult
        coef, intercept, the exact robust objective, and its history per epoch.
    """
    prob = check_problem(prob)
    lr = check_scalar(lr, "lr", lower=0.0, lower_inclusive=False)
    epochs = _check_int(epochs, "epochs")
    n, d = prob.X.shape
    batch_size = n if batch_size is None else _check_int(batch_size, "batch_size")
    batch_size = min(batch_size, n)
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    per_epoch = -(-n // batch_size)  # ceil(n / batch_size)
    t0 = float(per_epoch) if t0 is None else check_scalar(t0, "t0", lower=0.0,
                                                          lower_inclusive=False)
    lower = upper = None
    if prob.constraints is not None:
        if prob.constraints.callables:
            raise NotImplementedError("fgsm_train keeps bound constraints by clipping; "
                                      "callable constraints need fc.solve")
        lower, upper = prob.constraints.lower, prob.constraints.upper
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif seed is None or isinstance(seed, (numbers.Integral, np.random.SeedSequence)):
        rng = np.random.default_rng(seed)
    else:
        raise TypeError(f"seed must be an int, SeedSequence, Generator or None, got "
                        f"{type(seed).__name__}")
    fam, y, w = prob.family, prob.y, prob.sample_weight
    if init is None:
        coef = np.zeros(d)
        b = fam.intercept_only(y, w) if prob.fit_intercept else 0.0
        b = float(b) if np.isfinite(b) else 0.0
    else:
        coef, b = (init.coef, init.intercept) if hasattr(init, "coef") else init
        coef, b = prob.check_coef(coef, b)
        coef = coef.copy()

    start = time.perf_counter()
    history = [robust_objective(prob, coef, b)]
    fgsm_history = [fgsm_objective(prob, coef, b)]
    coefs, intercepts = [coef.copy()], [float(b)]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(n) if batch_size < n else np.arange(n)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked below
            for k in range(per_epoch):
                idx = order[k * batch_size:(k + 1) * batch_size]
                g_coef, g_b = fgsm_gradient(prob, coef, b, idx)
                step = step_size(lr, t, schedule, t0)
                coef = coef - step * g_coef
                if lower is not None:
                    coef = np.clip(coef, lower, upper)  # projection onto the bounds
                b = b - step * g_b if prob.fit_intercept else b
                t += 1
        if not (np.all(np.isfinite(coef)) and np.isfinite(b)):
            raise FloatingPointError(f"fgsm_train diverged (non-finite weights after {t} "
                                     f"steps); lower lr (got {lr}) or use "
                                     f"schedule='inverse'")
        history.append(robust_objective(prob, coef, b))
        fgsm_history.append(fgsm_objective(prob, coef, b))
        coefs.append(coef.copy())
        intercepts.append(float(b))
    return TrainingResult(coef=coef, intercept=float(b), objective=history[-1],
                          history=np.array(history), fgsm_history=np.array(fgsm_history),
                          coef_history=np.array(coefs), intercept_history=np.array(intercepts),
                          steps=t, lr=lr, schedule=schedule, t0=t0, batch_size=batch_size,
                          epochs=epochs, seed=seed, fgsm_is_exact=fgsm_exact(prob),
                          train_time=time.perf_counter() - start)

