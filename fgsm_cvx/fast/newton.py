"""A damped Newton step on the smooth manifold of the epigraph form (fast path, large n).

FISTA needs 40-55 iterations at the default tolerance, each about two passes over X. Near
the solution the problem is smooth on a manifold: with the constraint tight,
t = eps sigma(beta), and

.. math:: \\Phi(\\beta, b) = \\sum_i w_i H_i(\\eta_i, \\epsilon\\, \\sigma(\\beta)),
          \\quad \\eta = X\\beta + b,

where sigma is

* a weighted l1 norm, sigma = sum_j a_j |beta_j| (``Linf``, ``WeightedLinf``, a masked
  ``Linf``: a_j = 0 for the free coordinates): linear, a_W^T (s_W * beta_W), on the
  orthant of the sign pattern s of the working set W (the nonzero and free
  coordinates, and the zero ones that violate their optimality condition, entering with
  the sign that lowers Phi);
* a Mahalanobis norm, sigma = sqrt(beta^T M beta) (``L2``: M = I, ``Ellipsoid``:
  M = A A^T, a masked ``L2``): smooth wherever M beta != 0, with
  grad sigma = M beta / sigma and Hess sigma = (M - grad grad^T) / sigma;
* a group norm, sigma = sum_g ||beta_g||_2 (``Group`` with p = 2): smooth on the
  nonzero groups, block by block as the l2 norm (the working set: the nonzero groups and
  the features in none; a group does not enter from zero, where its Hessian is
  unbounded: FISTA moves it);
* the l-inf norm, sigma = max_j |beta_j| (``L1``, a masked ``L1``): linear, sigma = m,
  on the manifold of the tie set A where |beta_j| = m, parametrised linearly as
  beta_A = s_A m with the other coordinates free (``_Max``: the system below is
  reduced to those coordinates, ``basis``);
* a box's pair (sigma_S(beta), sigma_S(-beta)) (``Box``, a masked box at alpha > 0 or
  without an intercept: two shifts t = (t_up, t_dn), ``box.py``): both linear on the
  orthant of the working set's signs (``BoxOrthant``); in the system below g becomes
  the |W| x 2 matrix of their gradients, x_t the two columns X~_W^T (w H_et) of the
  shifts, T and S_et 2-vectors and S_tt a 2 x 2 matrix
  (``objective.interval_second_order_terms``). Used for the logistic and Poisson
  losses (the pinned step, ``kinks.py``, takes one shift: a Poisson box is finished by
  Newton's stages alone); the symmetric losses finish a box by their reduced program.

The Newton system on (beta_W, b_c), b_c the intercept of the centred columns, is

.. math::

    H = \\tilde X_W^\\top D_{ee} \\tilde X_W + \\epsilon (x_t g^\\top + g x_t^\\top)
        + \\epsilon^2 S_{tt}\\, g g^\\top + \\epsilon T\\, \\nabla^2\\sigma,

with g = grad sigma (zero in the intercept's row), x_t = X~_W^T (w H_et),
T = sum_i w_i H_t,i and S_tt = sum_i w_i H_tt,i (``objective.second_order_terms``). One
pass over X gives all of it (``engine.second_order``: the weighted Gram matrix of the
working columns, and X^T of three per-sample vectors). A backtracking (Armijo) line search
on Phi, projected onto the orthant for the l1 case (as OWL-QN does), makes the step
globally convergent on the manifold; coordinates whose sign would flip stop at zero.

The stopping test is FISTA's: the gradient-mapping residual L ||x - P_K(x - grad F / L)||
at the current point, computed from the same pass (grad F in (beta, b_c, t) is
(X_c^T (w H_e), sum w H_e, T)), so a Newton solution carries the same certificate. When
the step fails (no manifold, a singular system, no decrease) the caller goes back to
FISTA: Newton only ever accelerates it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..families import Huber
from ..perturbations import Ellipsoid, Group, Lp, Masked, WeightedLinf, lp_norm
from .box import BoxShift
from .model import subset_positions

# Armijo's sufficient-decrease fraction
_ARMIJO = 1e-4
# the safeguards of a rejected step's factor (``_backtrack``)
_BACKTRACK = (0.1, 0.5)
# Below this step length the line search moves the binding coordinates towards zero
# with the step rather than zeroing them (``_newton``). From every length, a 20-radius
# Poisson path on correlated columns took 1233 iterations against 1081 (the
# ``test_path.py`` path of ``NEWTON_TRIES``)
_UNBIND_BELOW = 0.05
# The largest working set: the Gram matrix costs n |W|^2 flops (BLAS-3), about |W| / 20
# X^T (X v) passes measured at d = 50; beyond this FISTA's passes are cheaper
MAX_WORKING_SET = 128
# Where the Gram matrix is cached (``working_set_cap``), the dense KKT solve on |W|
# coordinates and up to |W| + 1 pinned samples, (16 / 3) |W|^3 flops by LU, may cost up
# to this many X^T (X v) passes of 4 n d flops (LU runs at BLAS-3 speed, several times a
# product's: a handful of FISTA iterations in time)
KKT_PASSES = 50
# ... and whatever X's size, a KKT solve of up to KKT_MIN_FLOPS flops (~20 ms here) on a
# matrix of up to KKT_MIN_ENTRIES entries (8 MB): on small X the pass-count rule
# capped the working set below d, and FISTA's continuation ran alone. 40 random gaussian
# and Huber fits, n 250-800, d 130-260 (``Linf``, ``L2``, ``L1``, ``Group``, weighted,
# masked, boxes; against Clarabel at 1e-10): seven gaussian fits with 130-205 nonzero
# coefficients took 179-801 iterations (0.07-1.4 s; 1.2e-9 to 7e-9 above Clarabel's
# objective), now 42-63 (0.02-0.21 s; at or below it). A 50-radius ``L2`` path at
# n = 4000, d = 400 (all coefficients nonzero; the rule's cap was 391): 8290 -> 602
# iterations, 9.1 -> 5.3 s
KKT_MIN_FLOPS = 2.0**29
KKT_MIN_ENTRIES = 2.0**20
# The damped Newton step's largest pass, in X^T (X v) passes (``newton_cap``)
NEWTON_PASS_LIMIT = 50
# A pass's Gram matrix in X^T (X v) passes per column pair and column: |W|^2 / d of it
# (``pass_cost``)
GRAM_PASS_COST = 0.07


def newton_cap(model):
    """The largest working set of the damped Newton step (``newton``): the pinned step's
    (``working_set_cap``), or where a pass costs at most NEWTON_PASS_LIMIT X^T (X v)
    passes by ``pass_cost``, 1.3 + GRAM_PASS_COST |W|^2 / d, whichever is more. Past
    MAX_WORKING_SET the solver takes Newton only where FISTA's observed rate says it
    pays (``solver._Identification``, on warm starts too): on a binomial eps path at
    n = 4000, d = 400 with AR(1) columns (rho = 0.9) the radii past 128 nonzero
    coefficients took 100-190 FISTA iterations each, two to five Newton passes with the
    cap raised, while on independent columns FISTA's few iterations were cheaper.

    Huber's is ``working_set_cap``: past it a pass cost 5-7 X^T (X v) passes at
    d = 1000 (``pass_cost`` predicts 3.4 for |W| = 175) and its smoothed stages stalled,
    16 passes without converging (rho'' jumps at the threshold as well as in the band),
    where FISTA's iterations cost about one pass each. Measured, this rule's cap against
    Huber's: n = 1e5, d = 1000, ``Linf`` 223-240 -> 66-71 passes; 20-radius paths at
    n = 4000, d = 400 5.4-6.3 -> 4.6-5.0 s (AR(1) columns, rho = 0.9) and 2.2-2.7 ->
    1.9-2.0 s (rho = 0); other solves at d = 400 and 1000 within the noise. Poisson's
    larger Newton passes were measured too, and kept: 35% fewer passes without them for
    ``L2`` at n = 1e5, d = 200 and 300, but 17% more time on the correlated path above.
    """
    if isinstance(model.family, Huber):
        return working_set_cap(model)
    return max(working_set_cap(model), pass_limit_cap(model))


# The gaussian loss's Gram matrix of all columns is formed once and cached
# (``model.Model.constant_curvature``) from this many columns on only after the passes
# on W's columns alone have cost as much (``gram_columns``)
GRAM_RENT_MIN_FEATURES = 200


def gram_columns(model, W):
    """The columns whose Gram matrix a Newton pass at the working set W forms: None (all:
    at |W| >= d / 2 it costs at most 4x W's and serves any working set, so that
    coordinates entering need no second pass) or W.

    The gaussian loss reads its Gram matrix from the cached X_c^T W X_c of all columns
    (``model.Model.constant_curvature``): n d^2 flops once, GRAM_PASS_COST d passes by
    ``pass_cost``'s model, then any pass, working set and radius of a path. From
    GRAM_RENT_MIN_FEATURES columns on a pass forms W's alone while the passes so formed
    (``pass_cost`` each, counted in the problem's cache, shared along a path) have cost
    less than the whole matrix, which is then formed (rent or buy: at most twice the
    better choice's cost). A cold solve's pinned step at n = 1e5, d = 1000 with 165
    nonzero coefficients (``Linf``): passes of ~5 X^T (X v) passes each, where the
    matrix of 1000 columns costs ~36.
    """
    d = model.engine.shape[1]
    if 2 * W.shape[0] >= d:
        return None
    if not model.constant_curvature():
        return W
    if d < GRAM_RENT_MIN_FEATURES or model.covers_gram(None):
        return None
    if model.covers_gram(W):  # (the last working set's, cached)
        return W
    rent = model._cache.get("fast_gaussian_gram_rent", 0.0) \
        + 1.3 + GRAM_PASS_COST * W.shape[0] ** 2 / d
    if rent >= GRAM_PASS_COST * d:
        return None  # (buy)
    model._cache["fast_gaussian_gram_rent"] = rent
    return W


def pinned_cap(model):
    """The largest working set of the pinned step (``kinks.pinned_newton``):
    ``working_set_cap``, and for Huber ``pass_limit_cap`` where that is more.

    Huber's Gram matrix is formed in each pass (its curvature is not constant), so its
    working-set cap was the default 128 columns, and past it the solve was FISTA's
    continuation alone: 280-740 iterations for ``L1`` and ``L2`` at n = 3000-5000,
    d = 300-400 (400 nonzero coefficients), where the pinned step, allowed them,
    certifies at its first try in 2-3 passes (n = 5000, d = 400, nine solves: 6.0 ->
    2.0 s). Its Newton stages keep the 128 columns (``newton_cap``): there they stalled.
    """
    if isinstance(model.family, Huber):
        return max(working_set_cap(model), pass_limit_cap(model))
    return working_set_cap(model)


def pass_limit_cap(model):
    """The largest working set whose Newton pass costs at most NEWTON_PASS_LIMIT
    X^T (X v) passes by ``pass_cost``, 1.3 + GRAM_PASS_COST |W|^2 / d."""
    d = model.engine.shape[1]
    return int(np.sqrt(NEWTON_PASS_LIMIT * d / GRAM_PASS_COST))


def working_set_cap(model):
    """The largest working set W a Newton or pinned pass forms.

    ``MAX_WORKING_SET`` where each pass forms its Gram matrix X_W^T D X_W (n |W|^2
    flops). The gaussian loss on a host engine reads it from the cached X_c^T W X_c
    (``model.Model.constant_curvature``): its cost is then the KKT solve's,
    (16 / 3) |W|^3 <= KKT_PASSES 4 n d flops, |W| <= (0.75 KKT_PASSES n d)^(1/3). Measured
    on a 50-radius gaussian path at n = 4000, d = 400 (bench_path.py's data), where the
    middle radii have 150-350 nonzero coefficients: FISTA took 120-230 iterations on
    each of them with the cap at 128, 20-30 with the pinned step certifying them.
    """
    if not model.constant_curvature():
        return MAX_WORKING_SET
    n, d = model.engine.shape
    # (16 / 3) |W|^3 <= max(KKT_PASSES 4 n d, KKT_MIN_FLOPS) flops
    cost = max(0.75 * KKT_PASSES * n * d, 3.0 / 16.0 * KKT_MIN_FLOPS) ** (1.0 / 3.0)
    # the KKT matrix, (2 |W|)^2 <= max(n d / 2, KKT_MIN_ENTRIES) entries
    memory = np.sqrt(max(n * d / 8.0, KKT_MIN_ENTRIES / 4.0))
    return max(MAX_WORKING_SET, int(min(cost, memory)))


class _WeightedL1:
    """sigma(beta) = sum_j a_j |beta_j| (a_j = 0: a free coordinate)."""

    def __init__(self, a):
        self.a = np.asarray(a, dtype=np.float64)

    def value(self, beta):
        return float(self.a @ np.abs(beta))

    def working(self, beta, entering):
        """(W, signs on W): free and nonzero coordinates and the entering ones."""
        signs = np.sign(beta)
        for j, s in entering.items():
            signs[j] = s
        W = np.flatnonzero((signs != 0) | (self.a == 0))
        return W, signs[W]

    def gradient(self, beta, W, signs):
        return self.a[W] * signs  # d/dbeta_j a_j |beta_j| on the orthant of the signs

    def hessian(self, beta, W):
        return None

    def basis(self, beta, W, signs):
        return None  # beta_W itself are the manifold's coordinates

    def entering(self, beta, loss_gradient, bound, tol):
        """The zero, weighted coordinates that violate |dPhi_loss/dbeta_j| <= eps T a_j
        by more than tol >= 0, with the sign that lowers Phi (-sign of the loss
        gradient)."""
        idx = np.flatnonzero(self.violation(beta, loss_gradient, bound) > tol)
        return {int(j): -float(np.sign(loss_gradient[j])) for j in idx}

    def violation(self, beta, loss_gradient, bound, W=None):
        """The excess |dPhi_loss/dbeta_j| - eps T a_j > 0 at the zero, weighted
        coordinates outside W (their optimality conditions' violation; 0 where they
        hold, and on W, whose conditions the step's stationarity covers)."""
        excess = np.abs(loss_gradient) - bound * self.a
        out = np.where((beta == 0) & (self.a > 0), np.maximum(excess, 0.0), 0.0)
        if W is not None:
            out[W] = 0.0
        return out

    def binding(self, beta, loss_gradient, bound, radius):
        """The nonzero weighted coordinates within ``radius`` of zero that Phi pushes
        towards zero: s_j dPhi/dbeta_j = s_j g_j + eps T a_j > 0 (Bertsekas' projected
        Newton: they are set to zero and left out of the Newton system, as a proximal
        gradient step of that length would do)."""
        s = np.sign(beta)
        return np.flatnonzero((s != 0) & (self.a > 0) & (np.abs(beta) <= radius)
                              & (s * loss_gradient + bound * self.a > 0))

    def project(self, beta, W, signs):
        """Coordinates of W that left the orthant of their sign stop at zero."""
        out = beta[W]
        out[(self.a[W] > 0) & (out * signs < 0)] = 0.0
        beta[W] = out
        return beta


class BoxOrthant(_WeightedL1):
    """The pair (sigma_S(beta), sigma_S(-beta)) of a box S = {l <= delta <= u}
    (``box.BoxShift``; l_j = u_j = 0: a free coordinate), two shifts t = eps sigma.

    On the orthant of a sign pattern s both are linear, sigma_S(beta) = sum_j c_j beta_j
    and sigma_S(-beta) = sum_j e_j beta_j with (c_j, e_j) = (u_j, -l_j) for s_j = +1 and
    (l_j, -u_j) for s_j = -1 (``box.BoxShift.value``): ``gradient`` is the |W| x 2
    matrix [c, e] and there is no curvature. A zero coordinate is optimal where the
    loss gradient g_j lies in [-up_j, down_j], up_j = eps (T_u u_j - T_d l_j) the cost
    of moving it up and down_j = eps (T_d u_j - T_u l_j) of moving it down (T = dF/dt
    >= 0, ``bound`` = eps T): the asymmetric form of the weighted l1 condition. The
    working set and the projection are the weighted l1 norm's with the weights u - l
    (zero exactly on the free coordinates: l <= 0 <= u).
    """

    def __init__(self, shift):
        super().__init__(shift.upper - shift.lower)
        self.shift = shift
        self.lower, self.upper = shift.lower, shift.upper

    def value(self, beta):
        return self.shift.value(beta)

    def gradient(self, beta, W, signs):
        up, lo = self.upper[W], self.lower[W]
        pos = signs > 0  # (a free coordinate's row is 0 either way)
        return np.stack([np.where(pos, up, lo), np.where(pos, -lo, -up)], axis=1)

    def _costs(self, bound):
        """(up, down): the shifts' slopes moving each coordinate up and down from zero."""
        b_u, b_d = float(bound[0]), float(bound[1])
        return b_u * self.upper - b_d * self.lower, b_d * self.upper - b_u * self.lower

    def entering(self, beta, loss_gradient, bound, tol):
        """The zero coordinates whose condition is violated by more than tol, with the
        sign that lowers Phi."""
        up, _ = self._costs(bound)
        idx = np.flatnonzero(self.violation(beta, loss_gradient, bound) > tol)
        return {int(j): 1.0 if -loss_gradient[j] - up[j] > 0.0 else -1.0 for j in idx}

    def violation(self, beta, loss_gradient, bound, W=None):
        """max(-g_j - up_j, g_j - down_j, 0) at the zero, bounded coordinates outside W."""
        up, down = self._costs(bound)
        excess = np.maximum(np.maximum(-loss_gradient - up, loss_gradient - down), 0.0)
        out = np.where((beta == 0) & (self.a > 0), excess, 0.0)
        if W is not None:
            out[W] = 0.0
        return out

    def binding(self, beta, loss_gradient, bound, radius):
        """Nonzero bounded coordinates within ``radius`` of zero that Phi pushes towards
        zero: s_j (g_j + [c_j, e_j] . bound) > 0 (``_WeightedL1.binding``)."""
        s = np.sign(beta)
        up, down = self._costs(bound)
        # d/dbeta_j of Phi on the orthant: g_j + up_j (s = +1), g_j - down_j (s = -1)
        slope = np.where(s > 0, loss_gradient + up, loss_gradient - down)
        return np.flatnonzero((s != 0) & (self.a > 0) & (np.abs(beta) <= radius)
                              & (s * slope > 0))


class EveryCoordinate:
    """The part of a structure whose working set is every coordinate: no basis, no
    coordinate enters or binds, nothing to project."""

    def basis(self, beta, W, signs):
        return None

    def entering(self, beta, loss_gradient, bound, tol):
        return {}

    def violation(self, beta, loss_gradient, bound, W=None):
        return np.zeros_like(beta)  # every coordinate is in the working set

    def binding(self, beta, loss_gradient, bound, radius):
        return np.empty(0, dtype=np.intp)

    def project(self, beta, W, signs):
        return beta


class _Mahalanobis(EveryCoordinate):
    """sigma(beta) = sqrt(beta^T M beta) (M None: the identity)."""

    def __init__(self, M):
        self.M = M

    def _M(self, beta):
        return beta if self.M is None else self.M @ beta

    def value(self, beta):
        return float(np.sqrt(max(beta @ self._M(beta), 0.0)))

    def working(self, beta, entering):
        if self.value(beta) == 0.0:  # the kink at M beta = 0: not a smooth point
            return None, None
        return np.arange(beta.shape[0]), None

    def gradient(self, beta, W, signs):
        return self._M(beta) / self.value(beta)

    def hessian(self, beta, W):
        sigma, g = self.value(beta), self._M(beta) / self.value(beta)
        H = np.outer(g, -g / sigma)  # (M - g g^T) / sigma
        if self.M is None:
            H.flat[::H.shape[0] + 1] += 1.0 / sigma  # (M = I: the diagonal)
        else:
            H += self.M / sigma
        return H


class Free(EveryCoordinate):
    """sigma = 0: the structure at eps = 0, where the shift eps sigma_S(beta) vanishes
    whatever the set S, so every coordinate is free (no kink, no curvature from the
    set). A set with no manifold of its own (``manifold_of`` None; not a box, whose two
    shifts stay) then still gets Newton and the pinned step, as every set does there: on
    raw breast-cancer columns (least squares at eps = 0, a ``Group`` set with p = inf)
    FISTA alone ran out of 20 000 iterations."""

    def value(self, beta):
        return 0.0

    def working(self, beta, entering):
        return np.arange(beta.shape[0]), None

    def gradient(self, beta, W, signs):
        return np.zeros(W.shape[0])

    def hessian(self, beta, W):
        return np.zeros((W.shape[0], W.shape[0]))


class _GroupLq:
    """sigma(beta) = sum_g ||beta_g||_q over disjoint groups (``Group`` with p > 1, q its
    dual exponent, 1 < q < inf); the features in no group are free.

    On the manifold of the nonzero groups it is smooth (for q < 2 also where no
    coordinate of a nonzero group is zero: |beta_j|^(q-2) is unbounded there, and such a
    point is no smooth point: ``working`` None), with, per group, r_g = ||beta_g||_q and
    u_g = s |beta_g / r_g|^(q-1) (q = 2: beta_g / r_g), grad sigma = u_g and

    .. math:: \\nabla^2_g \\sigma = \\frac{q - 1}{r_g}
        \\big(\\mathrm{diag}(|\\beta_g / r_g|^{q-2}) - u_g u_g^\\top\\big)

    (q = 2: (I - u_g u_g^T) / r_g), block diagonal. A zero group is a kink whose Hessian
    is unbounded as it leaves zero, so no group enters from zero here (``entering`` is
    empty): its violation ||dPhi_loss/dbeta_g||_p > eps T keeps the residual above the
    tolerance, the step is left to FISTA (the caller's identification run and retry), and
    the pinned step does not certify that point.
    """

    def __init__(self, groups, d, q=2.0):
        self.groups = [np.asarray(g, dtype=np.intp) for g in groups]
        self.q = float(q)
        self.p = self.q / (self.q - 1.0)  # the dual exponent (q > 1)
        covered = np.zeros(d, dtype=bool)
        for g in self.groups:
            covered[g] = True
        self.free = np.flatnonzero(~covered)

    def _norms(self, beta):
        return [lp_norm(beta[g], self.q) for g in self.groups]

    def _live(self, beta):
        """(g, ||beta_g||_q) for the nonzero groups."""
        return [(g, r) for g, r in zip(self.groups, self._norms(beta), strict=True) if r > 0.0]

    def value(self, beta):
        return float(np.sum(self._norms(beta)))

    def working(self, beta, entering):
        """(W, None): the free coordinates and those of the nonzero groups; None (no
        smooth point) when W is empty, or for q < 2 where a nonzero group has a zero
        coordinate."""
        live = self._live(beta)
        if self.q < 2.0 and any(not np.all(beta[g]) for g, _ in live):
            return None, None
        W = np.sort(np.concatenate([self.free, *(g for g, _ in live)]))
        return (W, None) if W.shape[0] else (None, None)

    def _unit(self, b, r):
        """u_g and |beta_g / r_g| of a nonzero group."""
        a = np.abs(b) / r  # in [0, 1]
        return (b / r if self.q == 2.0 else np.sign(b) * a ** (self.q - 1.0)), a

    def gradient(self, beta, W, signs):
        u = np.zeros(beta.shape[0])  # u_g on the nonzero groups
        for g, r in self._live(beta):
            u[g] = self._unit(beta[g], r)[0]
        return u[W]

    def hessian(self, beta, W):
        H = np.zeros((beta.shape[0], beta.shape[0]))
        for g, r in self._live(beta):
            u, a = self._unit(beta[g], r)
            diag = np.eye(g.shape[0]) if self.q == 2.0 else np.diag(a ** (self.q - 2.0))
            H[np.ix_(g, g)] = (self.q - 1.0) * (diag - np.outer(u, u)) / r
        return H

    def basis(self, beta, W, signs):
        return None

    def entering(self, beta, loss_gradient, bound, tol):
        return {}

    def violation(self, beta, loss_gradient, bound, W=None):
        """max(||dPhi_loss/dbeta_g||_p - eps T, 0) for the zero groups (the subdifferential
        of ||.||_q at 0 is the unit ball of its dual norm; on the group's first
        coordinate, so that the vector's norm is that of the groups' violations; none is
        in the working set W)."""
        out = np.zeros(beta.shape[0])
        for g, r in zip(self.groups, self._norms(beta), strict=True):
            if r == 0.0:
                out[g[0]] = max(lp_norm(loss_gradient[g], self.p) - bound, 0.0)
        return out

    def binding(self, beta, loss_gradient, bound, radius):
        """The coordinates of the nonzero groups within ``radius`` of zero that Phi pushes
        towards zero: its derivative along -beta_g / r_g, -(beta_g^T g_g / r_g + eps T)
        (sigma falls at rate 1 there: grad sigma^T beta_g = r_g, Euler), is negative."""
        out = [g for g, r in self._live(beta)
               if r <= radius and float(beta[g] @ loss_gradient[g]) / r + bound > 0.0]
        return np.concatenate(out) if out else np.empty(0, dtype=np.intp)

    def project(self, beta, W, signs):
        return beta


class _Lq(_GroupLq):
    """sigma(beta) = ||beta_B||_q, 1 < q < inf (``Lp`` with general p, q its dual
    exponent; a masked one: B the masked coordinates, the others free): the group norm
    of one group, B."""

    def __init__(self, q, bounded):
        super().__init__([np.flatnonzero(bounded)], np.shape(bounded)[0], q)


class _Max:
    """sigma(beta) = max_{j in B} |beta_j| (``L1``: the l-inf norm; a masked ``L1``: B the
    masked coordinates, the others free).

    On the manifold of the tie set A = {j in B: |beta_j| = m}, m = sigma(beta), with the
    signs s_A, the coefficients are beta_A = s_A m and beta_F free (F the rest, the
    bounded ones inside |beta_j| < m): a linear parametrisation beta = P z,
    z = (beta_F, m), P = [e_F, s_A] (``basis``), on which sigma = m is linear. The Newton
    system of ``newton_system`` in beta is reduced to z exactly (P^T H P, P^T grad):
    its sigma terms need only P^T grad sigma = e_m, met by grad sigma = s_A / |A| on A.
    The working set is every coordinate; ``signs`` are s_A on A and 0 on F. A step
    that takes a bounded coordinate of F past +-m joins it to the tie (``project``
    clips it there); a tied coordinate leaves the tie (``entering``, with sign 0) where
    its multiplier theta_j = -s_j g_j / (eps T) in the subdifferential
    conv{s_j e_j : j in A} of sigma is negative: moving it inwards alone lowers Phi.
    """

    # ties: |beta_j| within this relative distance of the max (FISTA's projection and
    # ``project`` make them exact; rounding of the centring may not)
    TIE = 1e-12

    def __init__(self, bounded):
        self.bounded = np.asarray(bounded, dtype=bool)

    def value(self, beta):
        return float(np.max(np.abs(beta[self.bounded]), initial=0.0))

    def _ties(self, beta):
        m = self.value(beta)
        return self.bounded & (np.abs(beta) >= m * (1.0 - self.TIE)) & (m > 0.0)

    def working(self, beta, entering):
        """(every coordinate, s_A on the ties and 0 elsewhere); None at sigma = 0."""
        signs = np.where(self._ties(beta), np.sign(beta), 0.0)
        for j, s in entering.items():
            signs[j] = s
        if not np.any(signs):
            return None, None
        return np.arange(beta.shape[0]), signs

    def gradient(self, beta, W, signs):
        return signs / np.count_nonzero(signs)  # P^T (s_A / |A|) = e_m

    def hessian(self, beta, W):
        return None

    def basis(self, beta, W, signs):
        """P (|W| x (|F| + 1)): beta_W = P (beta_F, m) on the manifold of the signs."""
        free = np.flatnonzero(signs == 0)
        P = np.zeros((signs.shape[0], free.shape[0] + 1))
        P[free, np.arange(free.shape[0])] = 1.0
        P[:, -1] = signs
        return P

    def entering(self, beta, loss_gradient, bound, tol):
        """The tied coordinates whose multiplier is negative by more than tol (s_j g_j >
        tol), as {j: 0}; one tie (the largest multiplier) stays."""
        A = np.flatnonzero(self._ties(beta))
        if A.shape[0] < 2:
            return {}
        push = np.sign(beta[A]) * loss_gradient[A]  # s_j g_j = -eps T theta_j
        out = A[push > tol]
        if out.shape[0] == A.shape[0]:
            out = np.delete(A, np.argmin(push))
        return {int(j): 0.0 for j in out}

    def violation(self, beta, loss_gradient, bound, W=None):
        """max(s_j g_j, 0) on the ties (theta_j >= 0 violated; 0 elsewhere: the free
        coordinates' conditions are the step's stationarity)."""
        A = self._ties(beta)
        return np.where(A, np.maximum(np.sign(beta) * loss_gradient, 0.0), 0.0)

    def binding(self, beta, loss_gradient, bound, radius):
        return np.empty(0, dtype=np.intp)

    def project(self, beta, W, signs):
        """The ties at their common level m >= 0 (their mean), the bounded free
        coordinates clipped to [-m, m] (joining the tie there)."""
        A = signs != 0
        m = max(float(np.mean(signs[A] * beta[A])), 0.0)
        beta[A] = signs[A] * m
        F = self.bounded & ~A
        beta[F] = np.clip(beta[F], -m, m)
        return beta


class _GroupMax:
    """sigma(beta) = sum_g max_{j in g} |beta_j| over disjoint groups (``Group`` with
    p = 1: the sum of the groups' l-inf norms; features in no group are free): ``_Max``
    on each nonzero group.

    On the manifold of the nonzero groups' tie sets A_g = {j in g: |beta_j| = m_g},
    m_g = max_{j in g} |beta_j|, with their signs s_A, beta_W = P z with
    z = (beta_F, m_g for each nonzero group) and P = [e_F, s_{A_g}] (``basis``): sigma =
    sum_g m_g is linear there, and grad sigma = s_A / |A_g| on each A_g meets
    P^T grad sigma = 1 on every m_g, which is all ``newton_system`` needs of it. The
    working set is the free features and the nonzero groups' coordinates; ``signs`` are
    s_A on the ties and 0 elsewhere (on W). A zero group is a kink whose coordinates
    stay out of W (as ``_GroupLq``'s): its violation ||dPhi_loss/dbeta_g||_1 - eps T > 0
    (the subdifferential of the l-inf norm at 0 is the l1 ball) keeps the residual above
    the tolerance and FISTA identifies the group. A tied coordinate leaves its tie where
    its multiplier is negative (``entering``, sign 0), a bounded free one that a step
    takes past +-m_g joins it (``project``), as for ``_Max``.
    """

    TIE = _Max.TIE

    def __init__(self, groups, d):
        self.groups = [np.asarray(g, dtype=np.intp) for g in groups]
        self.gid = np.full(d, -1, dtype=np.intp)  # each coordinate's group (-1: free)
        for k, g in enumerate(self.groups):
            self.gid[g] = k
        self.grouped = self.gid >= 0
        self.parts = [_Max(self.gid == k) for k in range(len(self.groups))]  # per group

    def _maxima(self, beta):
        """m_g = max_{j in g} |beta_j| per group."""
        m = np.zeros(len(self.groups))
        np.maximum.at(m, self.gid[self.grouped], np.abs(beta[self.grouped]))
        return m

    def _levels(self, beta):
        """Per coordinate its group's m_g (0 for the free ones)."""
        return np.where(self.grouped, self._maxima(beta)[np.maximum(self.gid, 0)], 0.0)

    def value(self, beta):
        return float(self._maxima(beta).sum())

    def _ties(self, beta):
        level = self._levels(beta)
        return (level > 0.0) & (np.abs(beta) >= level * (1.0 - self.TIE))

    def working(self, beta, entering):
        """(W, signs on W): the free coordinates and the nonzero groups', s_A on the
        ties (0 elsewhere); None where W is empty."""
        signs = np.where(self._ties(beta), np.sign(beta), 0.0)
        for j, s in entering.items():
            signs[j] = s
        W = np.flatnonzero(~self.grouped | (self._levels(beta) > 0.0))
        return (W, signs[W]) if W.shape[0] else (None, None)

    def gradient(self, beta, W, signs):
        out = np.zeros(W.shape[0])
        tied = signs != 0
        k = self.gid[W[tied]]
        out[tied] = signs[tied] / np.bincount(k, minlength=len(self.groups))[k]
        return out  # s_A / |A_g| on each tie

    def hessian(self, beta, W):
        return None

    def basis(self, beta, W, signs):
        """P (|W| x (|F| + groups)): beta_W = P (beta_F, m_g) on the manifold of the
        signs (None without ties: beta_W are the coordinates)."""
        tied = signs != 0
        if not np.any(tied):
            return None
        free = np.flatnonzero(~tied)
        live, col = np.unique(self.gid[W[tied]], return_inverse=True)
        P = np.zeros((signs.shape[0], free.shape[0] + live.shape[0]))
        P[free, np.arange(free.shape[0])] = 1.0
        P[np.flatnonzero(tied), free.shape[0] + col] = signs[tied]
        return P

    def entering(self, beta, loss_gradient, bound, tol):
        """Per nonzero group, ``_Max.entering``: the tied coordinates whose multiplier is
        negative by more than tol, as {j: 0}; one tie of each group stays."""
        out = {}
        for part in self.parts:
            out.update(part.entering(beta, loss_gradient, bound, tol))
        return out

    def violation(self, beta, loss_gradient, bound, W=None):
        """max(s_j g_j, 0) on the ties; for each zero group
        max(||dPhi_loss/dbeta_g||_1 - eps T, 0), on its first coordinate (none of a zero
        group's is in a working set)."""
        out = sum((part.violation(beta, loss_gradient, bound) for part in self.parts),
                  np.zeros(beta.shape[0]))
        for k in np.flatnonzero(self._maxima(beta) == 0.0):
            g = self.groups[k]
            out[g[0]] = max(float(np.sum(np.abs(loss_gradient[g]))) - bound, 0.0)
        return out

    def binding(self, beta, loss_gradient, bound, radius):
        """The coordinates of the nonzero groups within ``radius`` of zero that Phi pushes
        towards zero: along -beta_g / m_g sigma falls at rate 1 (m_g is positively
        homogeneous: Euler), so Phi's derivative there is -(beta_g^T g_g / m_g + eps T)."""
        m = self._maxima(beta)
        out = [self.groups[k] for k in np.flatnonzero((m > 0.0) & (m <= radius))
               if float(beta[self.groups[k]] @ loss_gradient[self.groups[k]]) / m[k]
               + bound > 0.0]
        return np.concatenate(out) if out else np.empty(0, dtype=np.intp)

    def project(self, beta, W, signs):
        """Each group with ties by ``_Max.project``: its ties at their common level
        m_g >= 0, its other coordinates clipped to [-m_g, m_g]."""
        s = np.zeros(beta.shape[0])
        s[W] = signs
        for k in np.unique(self.gid[s != 0]):
            beta = self.parts[k].project(beta, None, np.where(self.gid == k, s, 0.0))
        return beta


def manifold_of(shift, d):
    """The smooth structure of the shift h for the Newton step, or None (FISTA only).

    Covered: the support functions of ``Linf`` / ``Lp(inf)`` (l1), ``WeightedLinf``
    (weighted l1), ``L2`` / ``Lp(2)`` (l2), ``L1`` / ``Lp(1)`` (l-inf), ``Ellipsoid``
    (||A^T beta||_2), ``Group`` (sum_g ||beta_g||_q; p = inf: the weighted l1 of the
    grouped features; p = 1: ``_GroupMax``), ``Lp`` with general p
    (the dual q-norm: ``_Lq``) and their ``Masked`` versions (the unmasked coordinates
    are free); a box's pair of shifts (``box.BoxShift``: ``BoxOrthant``). Other sets
    and the penalty shifts (ridge, L_r) return None.
    """
    if isinstance(shift, BoxShift):
        return BoxOrthant(shift)
    pert = getattr(shift, "perturbation", None)
    if pert is None:
        return None
    mask = None
    if isinstance(pert, Masked):
        mask, pert = pert.indices, pert.base
        d_base = mask.shape[0]
    else:
        d_base = d
    if isinstance(pert, Lp) and np.isinf(pert.p):
        a = np.ones(d_base)
    elif isinstance(pert, WeightedLinf):
        a = np.asarray(pert.scales, dtype=np.float64)
    elif isinstance(pert, Lp) and pert.p == 2.0:
        if mask is not None:
            # ||beta_B||_2, B the masked coordinates: the group norm of one group, whose
            # manifolds include B at zero with the other coordinates free (a radius
            # that zeroes B alone); ``_Mahalanobis`` has no smooth point there, and a
            # gaussian solve at such a point went uncertified by the pinned step,
            # stopped by the continuation 4.5e-6 above the optimum
            return _Lq(2.0, np.isin(np.arange(d), mask))
        return _Mahalanobis(None)
    elif isinstance(pert, Lp) and pert.p == 1.0:
        bounded = np.ones(d, dtype=bool) if mask is None else np.isin(np.arange(d), mask)
        return _Max(bounded)
    elif isinstance(pert, Ellipsoid):
        # ||A^T beta_M||_2: M = A A^T on the masked coordinates (a masked one's), 0 elsewhere
        M = pert.A @ pert.A.T
        if mask is not None:
            M, base = np.zeros((d, d)), M
            M[np.ix_(mask, mask)] = base
        return _Mahalanobis(M)
    elif isinstance(pert, Group) and 1.0 < pert.p < np.inf:
        # (a masked group's coordinates, numbered within the masked sub-vector, mapped
        # to the full vector's)
        return _GroupLq([g if mask is None else mask[g] for g in pert.groups], d, pert.q)
    elif isinstance(pert, Group) and pert.p == 1.0:
        # sum_g ||beta_g||_inf: the l-inf norm's tie manifold per group
        return _GroupMax([g if mask is None else mask[g] for g in pert.groups], d)
    elif isinstance(pert, Group) and np.isinf(pert.p):
        # sum_g ||beta_g||_1: the l1 norm of the grouped features (the others free)
        a = np.zeros(d_base)
        a[pert.labels()[0]] = 1.0
    elif type(pert) is Lp and 1.0 < pert.p < np.inf:  # (p = 2 above)
        return _Lq(pert.q, np.ones(d, dtype=bool) if mask is None
                   else np.isin(np.arange(d), mask))
    else:
        return None
    if mask is None:
        return _WeightedL1(a)
    full = np.zeros(d)
    full[mask] = a
    return _WeightedL1(full)


def pass_cost(manifold, beta):
    """The cost of one Newton pass at beta in X^T (X v) passes, about 1.3 + 0.07 |W|^2 / d:
    the products and second-order maps (1.3), and the Gram matrix, n |W|^2 flops against
    the 4 n d of a pass at BLAS-3 speed (0.07 d / |W|^2 per column pair, measured at
    n = 1e5, d = 50 on the project's 2-core machine; docs/performance.md)."""
    W = manifold.working(beta, {})[0]
    if W is None:
        return np.inf
    return 1.3 + GRAM_PASS_COST * W.shape[0] ** 2 / max(beta.shape[0], 1)


def _solve(H, g):
    """-H^{-1} g by Cholesky, with a small ridge when H is (numerically) singular; None
    when no step is possible (an empty working set without intercept)."""
    if H.size == 0:
        return None
    scale = max(float(np.max(np.abs(np.diag(H)))), 1e-300)
    for ridge in (0.0, 1e-12, 1e-9, 1e-6):
        try:
            factor = scipy.linalg.cho_factor(H + ridge * scale * np.eye(H.shape[0]))
            step = -scipy.linalg.cho_solve(factor, g)
        except (np.linalg.LinAlgError, ValueError):
            continue
        if np.all(np.isfinite(step)):
            return step
    return None


class _Point:
    """One Newton pass at (beta, b): the model's second-order quantities there."""

    def __init__(self, model, beta, b, t, mu, W, ref=None, Xb=None):
        self.cols = gram_columns(model, W)  # (None: all columns)
        self.beta, self.b, self.t = beta, b, t
        (self.Xb, self.f, self.XtG, self._gram, self.sums) = model.second_order(
            beta, b, t, mu, self.cols, ref=ref, Xbeta=Xb)
        self.g_loss = self.XtG[:, 0]  # X_c^T (w H_e): dF/dbeta at fixed t

    def gram(self, W):
        """The Gram matrix on the columns W, or None if this pass did not form it (read
        only: the pass's own matrix where W is every column)."""
        if self.cols is None:
            return _block(self._gram, W)
        pos = subset_positions(self.cols, W)
        return None if pos is None else self._gram[np.ix_(pos, pos)]


class _GradientPoint:
    """A gradient-only pass at (beta, b): F_mu and its gradient, all the stopping test
    needs (X beta, then X^T of one per-sample vector: FISTA's two products, about a
    quarter of a Newton pass at |W| = d = 50). ``sums`` holds (dF/db, dF/dt) only."""

    def __init__(self, model, beta, b, t, mu, fit_intercept):
        self.beta, self.b, self.t = beta, b, t
        self.Xb, self.f, self.g_loss, g_b, T = model.gradient_pass(beta, b, t, mu,
                                                                    fit_intercept)
        self.sums = (g_b, T)


class _Rates:
    """Newton's observed quadratic rate C = r_{k+1} / r_k^2 (r the residual), by decade of
    the smoothing mu (C grows like 1 / mu^2 where the smoothed kinks dominate the third
    derivative), kept along an eps path in the problem's cache. It predicts whether a
    full step from residual r meets the tolerance, C r^2 <= tol / 2: then the next point
    is evaluated by a gradient-only pass, not a full Newton pass (whose Gram matrix and
    second-order maps would go unused). A wrong prediction costs that gradient pass and
    records the larger rate observed."""

    def __init__(self, store):
        self.store = store

    @staticmethod
    def _key(mu):
        return None if mu <= 0.0 else int(np.floor(np.log10(mu)))

    def predicts_convergence(self, mu, residual, tol):
        rate = self.store.get(self._key(mu))
        return rate is not None and rate * residual * residual <= 0.5 * tol

    def observe(self, mu, before, after):
        if np.isfinite(before) and before > 0.0 and np.isfinite(after):
            self.store[self._key(mu)] = after / (before * before)


def newton(model, manifold, prox, fit_intercept, state, mu, eps, L, tol, max_passes=16,
           rates=None, gap_tol=None):
    """``_newton`` with floating-point overflow silenced: a step on a nearly singular
    system (an eps path of nearly-LAD Huber, diabetes with y x 1e4, near a vertex of the
    loss's pieces) can be ~1e308 long, where sigma(beta) and X beta overflow; the line
    search reads F = inf as a rejection and halves the step, as it should, but numpy's
    RuntimeWarnings reached the user."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _newton(model, manifold, prox, fit_intercept, state, mu, eps, L, tol,
                       max_passes, rates, gap_tol)


def _newton(model, manifold, prox, fit_intercept, state, mu, eps, L, tol, max_passes=16,
            rates=None, gap_tol=None):
    """Damped Newton on the manifold of ``state`` = (beta, b, t, X beta), at smoothing mu.

    ``prox(v_beta, v_t, L)`` is FISTA's projection onto K, L its curvature estimate and
    ``tol`` the stage tolerance on the gradient-mapping residual. Returns
    (state, F_mu, residual, passes, converged): ``passes`` counts the passes over X (at
    most about ``max_passes``: where the smoothed kinks make the quadratic model poor,
    FISTA is left to finish), converged is True when the residual met ``tol`` (and, with
    ``gap_tol``, the Newton decrement too: see below).

    ``gap_tol`` (an absolute objective tolerance) adds the Newton decrement to the test at
    a full Newton pass: lambda^2 = grad^T H^{-1} grad on the working set estimates twice
    the distance to the minimum, F - F* ~ lambda^2 / 2, whatever the conditioning. The
    residual alone does not bound it where the curvature m is small (F - F* ~ r^2 / (2 m)):
    logistic regression on nearly separable data stopped at r = 1e-6 of the objective
    scale 4e-4 above the optimum (breast cancer, standardised, eps = 1e-3 eps_max).

    A trial step of length 1 after a step of length 1 is evaluated by a full Newton pass
    (near the solution it is accepted, and that pass serves the next step), or by a
    gradient-only pass when the quadratic rate observed so far (``rates``, a dict kept
    along an eps path; ``_Rates``) predicts that the trial point meets the tolerance;
    otherwise, and for the shorter steps (``_backtrack``), by the objective alone.
    """
    beta = np.array(state[0], dtype=np.float64)
    cap = newton_cap(model)
    W, signs = manifold.working(beta, {})
    if W is None or W.shape[0] > cap:
        return state, np.inf, np.inf, 0, False
    point = _Point(model, beta, state[1], eps * manifold.value(beta), mu, W)
    rates = _Rates({} if rates is None else rates)
    passes, residual, optimistic = 1, np.inf, True
    previous = np.inf  # the residual before the last full step (np.inf: none)
    flat = False  # the residual met tol with the decrement above gap_tol
    last_full = None  # the last full pass (its Hessian serves a gradient-only point)
    while passes < max_passes:
        beta, b, t = point.beta, point.b, point.t
        f, g_loss = point.f, point.g_loss
        g_b, T = point.sums[:2]
        # FISTA's test at this point: the gradient mapping of F(beta, b_c, t) over K
        p_beta, p_t = prox(beta - g_loss / L, t - T / L, L)
        # (products, not ** 2: a Python float's power raises OverflowError where a far
        # start's gradient is ~1e200; the product is inf, and no test passes on it)
        # (np.dot: t is a box's pair of shifts too)
        sq = float((p_beta - beta) @ (p_beta - beta)) + float(np.dot(p_t - t, p_t - t)) \
            + ((g_b / L) * (g_b / L) if fit_intercept else 0.0)
        residual = L * np.sqrt(sq)
        rates.observe(mu, previous, residual)
        bind = manifold.binding(beta, g_loss, eps * T, np.sqrt(sq) + 1e-300)
        if residual <= tol and gap_tol is not None:
            # F - F* ~ lambda^2 / 2 (the quadratic model's decrease): a flat valley
            # goes on with the Newton step. A gradient-only point (the rate predicted
            # convergence) has the last full pass's Hessian with its own gradient; where
            # that is not available, a full pass tests it (it was accepted on the
            # residual alone: logistic fits on duplicated binary rows, where Newton
            # converges only linearly, stopped 2.5e-4 relative above the optimum)
            if isinstance(point, _Point):
                lam2 = decrement(manifold, point, eps, fit_intercept, cap)
                flat = lam2 is not None and 0.5 * lam2 > gap_tol
            else:
                lam2 = None if last_full is None else decrement(
                    manifold, point, eps, fit_intercept, cap, full=last_full)
                flat = lam2 is None or 0.5 * lam2 > gap_tol
        if residual <= tol and not flat:
            # the coordinates a proximal step would set to zero are zero in FISTA's
            # answer too (|beta_j| <= the step length; X beta keeps them: an error of
            # that size, far below the tolerance)
            if bind.size:
                beta = beta.copy()
                beta[bind] = 0.0
                t = eps * manifold.value(beta)
            return (beta, b, t, point.Xb), f, residual, passes, True
        if isinstance(point, _GradientPoint):  # predicted wrongly: the full pass here
            point = _Point(model, beta, b, t, mu, manifold.working(beta, {})[0])
            passes, previous = passes + 1, np.inf
            continue
        XtG, last_full = point.XtG, point
        entering = manifold.entering(beta, g_loss, eps * T, 1e-3 * tol)
        start = beta
        if bind.size:
            beta = beta.copy()
            beta[bind] = 0.0
        W, signs = manifold.working(beta, entering)
        if W is None or W.shape[0] > cap:  # None: the binding coordinates were all of
            break  # beta's (no smooth point left: FISTA goes on)
        gram = point.gram(W)
        if gram is None:  # coordinates enter: their Gram rows need another pass
            point = _Point(model, start, b, t, mu, W)
            passes += 1
            continue
        step, W, signs = _newton_direction(manifold, beta, W, signs, entering, gram, XtG,
                                           point.sums, eps, fit_intercept)
        if step is None:
            break
        sigma = manifold.value(start)
        alpha, accepted, trial = 1.0, False, None
        for _ in range(max(max_passes - passes, 1)):
            n_beta = beta.copy()
            n_beta[W] += alpha * step[:W.shape[0]]
            if bind.size and alpha < _UNBIND_BELOW:
                # a search this short: the binding coordinates' zeroing may be what
                # fails it (zeroed at every length, the search cannot return to the
                # point): they reach zero with the full step only, on the segment from
                # the point (a Poisson masked box on columns five decades apart: a
                # coefficient of 0.3 zeroed, 15 rejected trials at F + 0.18 each, the
                # stage left to 7200 FISTA iterations; 8221 -> 1020 in all)
                n_beta[bind] = (1.0 - alpha) * start[bind]
            n_beta = manifold.project(n_beta, W, signs)
            d_bc = alpha * step[-1] if fit_intercept else 0.0
            # b = b_c - s c^T beta: b moves by the step of b_c minus s c^T (n_beta - beta)
            n_b = b + d_bc + model.centred_step(start, n_beta)
            n_sigma = manifold.value(n_beta)
            n_t = eps * n_sigma
            n_W = manifold.working(n_beta, {})[0] if optimistic and alpha == 1.0 else None
            if optimistic and alpha == 1.0 and (n_W is None
                                                 or n_W.shape[0] > cap):
                # the full step leaves the manifolds Newton handles (a step of ~1e4 on
                # the l-inf tie manifold, columns on scales 1e-2 to 1e3): the line search
                # goes on by the objective alone (it had stopped Newton after one pass)
                optimistic = False
            if optimistic and alpha == 1.0:
                # (in a flat valley the decrement is tested again: a full pass)
                trial = _GradientPoint(model, n_beta, n_b, n_t, mu, fit_intercept) \
                    if rates.predicts_convergence(mu, residual, tol) and not flat \
                    else _Point(model, n_beta, n_b, n_t, mu, n_W)
                f_new = trial.f
            else:
                trial = None
                f_new = model.evaluate(n_beta, n_b, n_t, mu)[1]
            passes += 1
            # the first-order change of Phi = F(beta, b_c, eps sigma(beta)) along the
            # step taken (sigma's own change: exact for the l1 orthant, to first order
            # otherwise)
            slope = float(g_loss @ (n_beta - start)) + eps * float(np.dot(T, n_sigma - sigma)) + \
                (g_b * d_bc if fit_intercept else 0.0)
            if f_new <= f + _ARMIJO * min(slope, 0.0) and f_new <= f:
                accepted = True
                break
            alpha *= _backtrack(f, f_new, slope)
        if not accepted:
            break
        optimistic = alpha == 1.0
        # a full step's residual ratio is the quadratic rate (damped steps' is not)
        previous = residual if optimistic else np.inf
        if trial is None:
            n_W = manifold.working(n_beta, {})[0]
            if n_W is None or n_W.shape[0] > cap:
                break
            trial = _Point(model, n_beta, n_b, n_t, mu, n_W)
            passes += 1
        point = trial
    return (point.beta, point.b, point.t, point.Xb), point.f, residual, passes, False


def _backtrack(f, f_new, slope):
    """The factor of a rejected step length: the minimiser of the quadratic q(a) with
    q(0) = f, q'(0) = ``slope`` (the first-order change along the step tried) and
    q(1) = ``f_new`` (a in units of that step), a = -slope / (2 (f_new - f - slope)),
    kept within ``_BACKTRACK`` (halving where the values say nothing: f_new not finite,
    or no descent to first order). Halving alone took the smoothed Poisson stages of
    an eps path to steps of 1/64-1/128 one evaluation of F at a time (the band's
    curvature t / mu far above the model's); 30-radius Poisson paths (n = 2000, d = 20
    and 50; n = 5000, d = 50) took 7-10% fewer iterations, the other families' the same
    (Nocedal and Wright, *Numerical Optimization*, section 3.5)."""
    low, high = _BACKTRACK
    if not (slope < 0.0 and np.isfinite(f_new)):
        return high
    excess = f_new - f - slope  # (the quadratic's curvature term at a = 1: > 0 here)
    return min(max(-slope / (2.0 * excess), low), high) if excess > 0.0 else high


def decrement(manifold, point, eps, fit_intercept, cap=MAX_WORKING_SET, full=None):
    """The Newton decrement squared, lambda^2 = grad^T H^{-1} grad, of Phi on the working
    set at a full Newton pass ``point`` (``newton_system``), or None where it is not
    available (no working set, too large a one, or its Gram rows not in this pass).

    For a convex Phi, lambda^2 / 2 is the decrease the quadratic model predicts, the
    estimate of Phi - min Phi near the minimiser (Boyd and Vandenberghe, section 9.5.1).
    ``full``: for a gradient-only ``point``, the last full pass, whose Hessian (Gram
    matrix and second-order sums) serves with the gradient, the shift's dF/dt and the
    manifold's terms at ``point``: the decrement of a quasi-Newton model.
    """
    if full is None:
        full, XtG, sums = point, point.XtG, point.sums
    else:
        XtG = full.XtG.copy()
        XtG[:, 0] = point.g_loss  # (newton_system reads the gradient from column 0)
        sums = tuple(point.sums[:2]) + tuple(full.sums[2:])  # (dF/db, T now)
    W, signs = manifold.working(point.beta, {})
    if W is None or W.shape[0] > cap:
        return None
    gram = full.gram(W)
    if gram is None:
        return None
    H, grad = newton_system(manifold, point.beta, W, signs, gram, XtG, sums, eps,
                            fit_intercept)
    step = _solve(H, grad)  # -H^{-1} grad
    return None if step is None else max(-float(grad @ step), 0.0)


def _block(A, W):
    """A[W][:, W]; A itself where W is every coordinate in order (a working set of all d
    columns: no d x d copy, 3-5 ms each at d = 1000, several per active-set change)."""
    if W.shape[0] == A.shape[0] and np.array_equal(W, np.arange(A.shape[0])):
        return A
    return A[np.ix_(W, W)]


# XtG's columns X_c^T (w H_et) of the shifts (``model.Model.second_order``): column 1
# for one shift, columns 1 and 3 (t_up, t_dn) for a box's pair (0 is the gradient's,
# 2 that of w H_ee)
_SHIFT_COLUMNS = {1: [1], 2: [1, 3]}


def newton_system(manifold, beta, W, signs, gram, XtG, sums, eps, fit_intercept):
    """(H, grad): the Hessian and gradient of Phi(beta_W, b_c) on the working set W (the
    module's formula; the intercept's row and column last when ``fit_intercept``)."""
    g_b, T, S_ee, S_et, S_tt = sums
    # k shifts t = eps sigma(beta) (k = 1; a box's pair, k = 2: ``BoxOrthant``), with
    # G = d sigma / d beta_W (|W| x k), x_t = X_W^T (w H_et) (|W| x k, XtG's shift
    # columns), T = dF/dt and S_tt = d2F/dt2 (k x k)
    gs = manifold.gradient(beta, W, signs)
    G = gs if gs.ndim == 2 else gs[:, None]
    k = G.shape[1]
    T, S_et = np.reshape(T, k), np.reshape(S_et, k)
    grad = XtG[W, 0] + eps * (G @ T)  # dPhi/dbeta_W, t = eps sigma(beta)
    xt = XtG[np.ix_(W, _SHIFT_COLUMNS[k])]
    # eps (x_t G^T + G x_t^T) + eps^2 G S_tt G^T = U C U^T, U = [x_t, G]: one product
    U = np.concatenate([xt, G], axis=1)
    C = np.zeros((2 * k, 2 * k))
    C[:k, k:] = C[k:, :k] = eps * np.eye(k)
    C[k:, k:] = eps * eps * np.reshape(S_tt, (k, k))
    H = gram + U @ (C @ U.T)
    Hs = manifold.hessian(beta, W)
    if Hs is not None:
        H += eps * float(T[0]) * _block(Hs, W)
    if fit_intercept:  # the row of b_c: d2Phi/db_c dbeta_W and d2Phi/db_c^2
        hb = XtG[W, 2] + eps * (G @ S_et)
        m = H.shape[0]
        H_b = np.empty((m + 1, m + 1))  # [[H, hb], [hb^T, S_ee]]
        H_b[:m, :m], H_b[:m, m], H_b[m, :m], H_b[m, m] = H, hb, hb, S_ee
        H = H_b
        grad = np.append(grad, g_b)
    P = basis(manifold, beta, W, signs, fit_intercept)
    if P is not None:  # Phi(P z): Hessian P^T H P and gradient P^T grad in z
        H, grad = congruence(H, P), P.T @ grad
    return H, grad


def basis(manifold, beta, W, signs, fit_intercept):
    """P with (beta_W, b_c) = P z on the manifold (``_Max``'s ties, the intercept's
    coordinate appended), or None where (beta_W, b_c) are the coordinates themselves.
    ``newton_system`` and the pinned step's Jacobian are in z; ``lift`` maps a step
    back."""
    P = manifold.basis(beta, W, signs)
    if P is None or not fit_intercept:
        return P
    return scipy.linalg.block_diag(P, np.ones((1, 1)))


def _unit_columns(P):
    """(unit, rows, other) of a manifold's basis P (``basis``): the columns that are
    unit vectors e_r (the free coordinates of ``_Max``, the intercept's), their rows r,
    and the other columns (``_Max``'s tie column s_A)."""
    nonzero = P != 0.0
    rows = np.argmax(nonzero, axis=0)  # (a unit column's one nonzero row)
    unit = (np.count_nonzero(nonzero, axis=0) == 1) \
        & (P[rows, np.arange(P.shape[1])] == 1.0)
    return np.flatnonzero(unit), rows[unit], np.flatnonzero(~unit)


def times_basis(A, P, structure=None):
    """A P for a manifold's basis P (``basis``): its unit columns e_r by taking A's
    columns r, the others by a product (``_unit_columns``). O(m |W|) where the dense
    product is O(m |W|^2): at |W| = 1000 (``L1``, every coefficient nonzero) P^T H P
    took 54 ms of each KKT step's ~100."""
    unit, rows, other = _unit_columns(P) if structure is None else structure
    out = np.empty((A.shape[0], P.shape[1]))
    out[:, unit] = np.take(A, rows, axis=1)
    out[:, other] = A @ P[:, other]
    return out


def congruence(H, P):
    """P^T H P for a manifold's basis P: B = H P (``times_basis``), then P^T B by rows,
    a unit column e_r of P giving B's row r."""
    structure = unit, rows, other = _unit_columns(P)
    B = times_basis(H, P, structure)
    out = np.empty((P.shape[1], P.shape[1]))
    out[unit] = B[rows]
    out[other] = P[:, other].T @ B
    return out


def lift(P, step):
    """The step on (beta_W, b_c) of a step on z (``basis``)."""
    return step if P is None or step is None else P @ step


def _newton_direction(manifold, beta, W, signs, entering, gram, XtG, sums, eps,
                      fit_intercept):
    """(step on (beta_W, b_c), W, signs): the Newton direction on the working set.

    An entering coordinate whose step points against the sign it entered with would be
    projected straight back to zero, distorting the others' step: it leaves W and the
    system is solved again (as feature-sign search does), at most once per coordinate.
    """
    while True:
        H, grad = newton_system(manifold, beta, W, signs, gram, XtG, sums, eps,
                                fit_intercept)
        step = lift(basis(manifold, beta, W, signs, fit_intercept), _solve(H, grad))
        if step is None or not entering:
            return step, W, signs
        # (sign 0: a tie of ``_Max`` leaving it, free to move either way)
        wrong = [k for k, j in enumerate(W) if entering.get(j, 0.0) != 0.0
                 and step[k] * entering[j] <= 0.0]
        if not wrong:
            return step, W, signs
        keep = np.setdiff1d(np.arange(W.shape[0]), wrong)
        gram = gram[np.ix_(keep, keep)]
        W, signs = W[keep], signs[keep] if signs is not None else None
        entering = {}
