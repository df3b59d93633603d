"""The exact hinge solution: a reduced conic program on the samples near their kinks.

The robust hinge objective is piecewise linear in the predictors: per sample a clean
term alpha max(0, a_i^0) and an adversarial term (1 - alpha) max(0, a_i), with

.. math:: a_i^0 = 1 - z_i \\eta_i, \\qquad a_i = 1 - z_i \\eta_i + s_i(t),

s_i the shift that lowers the margin (t, or t_dn for z = +1 and t_up for z = -1 on a
box; plus the LLA majoriser's constant offset). Continuation on the smoothing mu reaches
such a solution only linearly in mu, and the hinge has no curvature for a Newton step.
Its exact solution is determined by few samples, though: generically at most d + 1 sit
at a kink (a = 0), the rest strictly on one side. Given a point (FISTA's smoothed
solution), split each term's samples into near N (|a| small: kept as max(0, a)),
violated V (a > 0: replaced by a, linear) and inactive I (a < 0: replaced by 0). The
reduced objective

.. math:: G(\\beta, b, t) = \\sum_{N} w_i c_i \\max(0, a_i)
          + \\max\\Big(0, \\sum_{V} w_i c_i a_i\\Big)

(c the term's weight alpha or 1 - alpha) is a minorant of F everywhere
(sum_V w c max(0, a) >= max(0, sum_V w c a): each term is >= a and >= 0), equal to it
where the split holds, over the same feasible set {eps sigma_S(beta) <= t}. The max
keeps G bounded below (G >= 0): with the V terms' linear sum alone, a near set that
misses samples the solution needs (nearly separable classes) left G unbounded below,
an interior-point solve spent on proving it, and no bound. Hence for the minimiser x*
of G, if every V term has a >= 0 and every I term a <= 0 at x* (then the max is the
sum), F(x) >= G(x) >= G(x*) = F(x*) for all feasible x: x* minimises
F, and any lower bound on min G (the reduced solver's dual objective) is one on F*. The
certificate is F(x*) minus that bound, whatever the split was; where it is too large
the samples whose term changed side join N and the program is solved again.

The V terms enter G through one vector, X_c^T (w c z 1_V), and a few sums (one X^T u
pass); N's rows come from the engine. The reduced program (|N| rows, a few times d) is
assembled here as Clarabel's data and solved by Clarabel directly (a linear program
whose interior-point dual is not accurate enough for a bound by HiGHS's simplex:
``conic.solve_program``); its constraint
eps sigma_S(beta) <= t comes from the perturbation's own support function
(``support_cvx``) canonicalised once per set by cvxpy (``conic.support_template``):
every set the cvxpy backend formulates, at a cost independent of n (measured 7-17 ms
for |N| = 130-210, d = 50, the assembly under 1.3 ms of it; with cvxpy canonicalising
the whole program it was 17-30 ms). A point far from the solution (a wide
band) is not tried; with fewer samples than the near set's bounds the program holds them
all: the whole problem, small then. A near set of two samples per unknown is often
separable, and G's minimiser then runs off to where its terms vanish; where a failed
try would take the whole problem, a try's programs keep to a box around FISTA's point
(``_TrustRegion``), whose interior minimiser is G's.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import scipy.sparse as sp

from ..families import Hinge
from . import conic
from .model import centred_intercept, uncentred

# The near set: the samples within BAND_MU smoothing widths of a kink, at least
# MIN_NEAR_PER_UNKNOWN per unknown (beta, b, t) nearest their kinks, at most
# MAX_NEAR_PER_UNKNOWN per unknown and at most MAX_NEAR_ENTRIES entries of X
BAND_MU = 1.0
MIN_NEAR_PER_UNKNOWN = 2
MAX_NEAR_PER_UNKNOWN = 20
MAX_NEAR_ENTRIES = 1_000_000
# reduced programs per try: a sample on the wrong side of its replaced term joins N,
# unless more than MAX_MOVED_FRACTION of |N| would (the point was far: FISTA goes on).
# The solve's last try (its continuation has stopped, uncertified) has no such limit and
# up to FINAL_ROUNDS programs, within MAX_NEAR_ENTRIES: near eps_max (0.999 of it; n =
# 1399, d = 6, Group(p = inf)) a flat valley stopped FISTA 1.05e-4 above the optimum
# with coefficients 1/9 of the optimal ones, and its tries moved 19-20 samples of
# 16-32; three rounds without the limit certified the optimum
MAX_ROUNDS = 3
FINAL_ROUNDS = 8
# The trust region of a try's programs where a failed try would take the whole problem
# (``_TrustRegion``): a near set of MIN_NEAR_PER_UNKNOWN samples per unknown is often
# separable, and G's minimiser then runs off to where those samples' terms vanish (on
# randomized surveys at n ~ 1000, d ~ 30: |beta - beta0| of 18-773 against 0.01-0.7 at
# the optimum, F 10-100 times F*); the try failed, and the next took the program of all
# samples (14-164 ms). In a box of TRUST_RADIUS times the point's largest coordinate
# (at least TRUST_FLOOR: the scaled columns have unit scale), growing TRUST_GROWTH-fold
# at each minimiser on its boundary, within TRUST_ROUNDS programs, the first try
# certified: the hinge draws of two 150- and 200-problem surveys (n 30-1500, d 1-40)
# 1.09-1.42 -> 0.66-0.79 s and 1.38-1.66 -> 0.64-0.71 s in all (where the box does not
# bind, Clarabel's solves got faster too). At n = 1e4, d = 50 (bench_fast.py's masked
# sets) the region's rounds, each a program of a few hundred samples more, cost more
# than FISTA's iterations to the next try: 1.42 -> 1.60-1.77 s over 40 problems; there
# none is used. A minimiser within TRUST_MARGIN of the boundary is on it.
TRUST_RADIUS = 4.0
TRUST_FLOOR = 0.25
TRUST_GROWTH = 4.0
TRUST_ROUNDS = 5
TRUST_MARGIN = 1e-3
# coefficients below this (relative to 1 + max |beta|, in the scaled problem whose
# columns have unit scale) are taken as zeros of the interior-point solution
SNAP = 1e-9
MAX_MOVED_FRACTION = 0.5
# F at the point below which the reduced program is solved in units of F
# (``_objective_units``; the scaled problem's null objective is ~1)
SMALL_F = 1e-2
# A program's dual bound may exceed F at its own solution by this many gap tolerances
# (Clarabel's absolute gap tolerance is 0.1 of it; 442 certified programs of the hinge
# tests: at most 0.23). More proves the bound inaccurate: on raw breast-cancer columns
# (scales 1e-2 to 1e3) without an intercept, programs "solved" to a bound 0.3-90
# tolerances above F certified points 0.08%-22% above the optimum
BOUND_ABOVE = 0.25
# The first try within the first stage, in FISTA iterations (the stage's end comes
# first where it converges sooner): FISTA's first stage (mu = 1e-2 of the objective
# scale) took 46-52 iterations on bench_fast.py's problems at n = 1e4, d = 50, and the
# try at 35 iterations certified in one reduced program on all of them; at 15 and 25
# most tries failed or needed a second, larger program (up to 260 ms)
FIRST_TRY = 35
# The first try of a warm start (an eps path's predicted point): near the solution
# already, its split settles sooner. Hinge paths of 50 radii (bench_path.py's data),
# iterations over the path and time against 50 cold solves: n = 2000, d = 20, 1703 ->
# 675 iterations (cold 1862), 0.97x -> 1.5x; n = 2e4, d = 20, 930 -> 669, 2.1x -> 2.5x;
# n = 1e4, d = 50, 1484 -> 757, 1.7x -> 2.4x (first tries at 6, 8, 12 and 15 iterations:
# 779-973 at n = 2000). That is the most: the try comes after about WARM_TRY_SECONDS
# of FISTA's iterations (``linear_pieces.iteration_seconds``), at least
# WARM_FIRST_TRY_LEAST of them (``warm_first_try``). Where an iteration is dear against
# the program (many samples, few features) the try pays earlier: 50-radius paths
# (fastest path of each, one run) at n = 1e5, d = 50 took 5.08 s with 10, 4.30 s with
# 4 and 3.84 s with 2 (the rule: 2); n = 2e4, d = 20 0.45, 0.35, 0.34 and 0.36 s with
# 10, 6, 4 and 2 (the rule: 4); n = 1e4, d = 50 0.72, 0.67, 0.75 and 0.96 s (the rule:
# 5); n = 2000, d = 20 0.22, 0.21, 0.20 and 0.24 s (the rule: 10)
WARM_FIRST_TRY = 10
WARM_FIRST_TRY_LEAST = 2
WARM_TRY_SECONDS = 3e-3


def warm_first_try(model):
    """The first try of a warm start, in FISTA iterations: ``WARM_TRY_SECONDS`` of them
    in the cost model of ``linear_pieces.iteration_seconds`` (X's n, d and density),
    within [WARM_FIRST_TRY_LEAST, WARM_FIRST_TRY]."""
    from .linear_pieces import iteration_seconds  # (linear_pieces builds on this module)

    n, d = model.engine.shape
    count = np.ceil(WARM_TRY_SECONDS / iteration_seconds(n, d, model.density()))
    return int(min(max(count, WARM_FIRST_TRY_LEAST), WARM_FIRST_TRY))


def covers(family, perturbation):
    """True where the step applies: hinge, with a perturbation set to formulate."""
    return isinstance(family, Hinge) and perturbation is not None


class _Split:
    """The terms' classes at a point: which samples are near (N, kept whole), and for the
    others which of their two terms are violated (linear); the rest are inactive (0).

    ``c0``, ``c1``: the clean and adversarial weights alpha and 1 - alpha. ``on0``,
    ``on1``: boolean per sample, the term taken as linear (meaningful outside N).
    """

    def __init__(self, a0, a1, c0, c1, near):
        self.c0, self.c1 = c0, c1
        self.near = near
        self.on0 = (a0 > 0.0) & (c0 > 0.0)
        self.on1 = (a1 > 0.0) & (c1 > 0.0)

    def coefficients(self, w):
        """Per sample: the weight of the linear terms' -z eta (w (c0 on0 + c1 on1)) and of
        the shift (w c1 on1), zero on N."""
        out = ~self.near
        lin = w * (self.c0 * self.on0 + self.c1 * self.on1) * out
        shift = w * self.c1 * self.on1 * out
        return lin, shift

    def wrong(self, a0, a1, w=None, most=None):
        """Outside N: samples whose replaced term is on the wrong side at (a0, a1); with
        ``most`` (and the weights ``w``), at most that many: those whose replacement errs
        most, by w c |a|."""
        bad0 = np.where(self.on0, a0 < 0.0, (a0 > 0.0) & (self.c0 > 0.0))
        bad1 = np.where(self.on1, a1 < 0.0, (a1 > 0.0) & (self.c1 > 0.0))
        idx = np.flatnonzero((bad0 | bad1) & ~self.near)
        if most is None or idx.size <= most:
            return idx
        err = w[idx] * (self.c0 * np.abs(a0[idx]) * bad0[idx]
                        + self.c1 * np.abs(a1[idx]) * bad1[idx])
        return idx[np.argpartition(-err, most - 1)[:most]]


def _arguments(model, eta, t, box):
    """(a0, a1): the clean and adversarial hinge arguments 1 - z eta and 1 - z eta + s."""
    z = model.y_host
    if box:  # t_dn lowers the margin of z = +1, t_up that of z = -1
        shift = np.where(z > 0, t[1], t[0]) + model.offset
    else:
        shift = float(t) + model.offset
    a0 = 1.0 - z * eta
    return a0, a0 + shift


def _kink_distance(a0, a1, split_weights):
    """Each sample's distance to the nearer kink of its terms (those of weight > 0)."""
    c0, c1 = split_weights
    dist = np.full(a0.shape[0], np.inf)
    if c0 > 0.0:
        dist = np.minimum(dist, np.abs(a0))
    if c1 > 0.0:
        dist = np.minimum(dist, np.abs(a1))
    return dist


def near_cap(unknowns, d, widen=1):
    """The most samples a reduced program holds: MAX_NEAR_PER_UNKNOWN per unknown times
    ``widen``, at most MAX_NEAR_ENTRIES entries of X."""
    return min(MAX_NEAR_PER_UNKNOWN * unknowns * widen, MAX_NEAR_ENTRIES // max(d, 1))


def near_set(dist, w, mu, unknowns, d, least=None, widen=1):
    """The near samples: distance ``dist`` to leaving their pieces within BAND_MU mu,
    between the MIN (or ``least``) and MAX sizes (the nearest first), both times
    ``widen``; None when the band is too wide to be worth a reduced program (more than
    the MAX size)."""
    n = dist.shape[0]
    dist = np.where(w > 0.0, dist, np.inf)  # weightless samples are no term at all
    # (no cap relative to n: with fewer samples than the cap the program is the whole
    # problem, which is small then; FISTA alone took 2000-12000 iterations or ran out of
    # them at n = 400, d = 50, where the program of all samples takes ~30 ms)
    cap = near_cap(unknowns, d, widen)
    least = MIN_NEAR_PER_UNKNOWN * unknowns * widen if least is None else least
    size = min(max(int(np.count_nonzero(dist <= BAND_MU * mu)), least), n)
    if size > cap:
        return None
    idx = np.argpartition(dist, size - 1)[:size] if size < n else np.arange(n)
    near = np.zeros(n, dtype=bool)
    near[idx[dist[idx] < np.inf]] = True  # (weightless samples: inf)
    return near


def _program(rows, z, w, c0, c1, lin, template, eps, box, fit_intercept, b_fixed, offset):
    """The reduced program G as Clarabel data: (q, A, b, cones), the minimum of G being
    that of q^T x subject to b - A x in the cones.

    Columns x = (beta, b_c [with an intercept], t (one, or two on a box), s0, s1, v, the
    support template's auxiliaries), s0 and s1 the near samples' clean and adversarial
    hinge terms (present where their weight c0 = alpha, c1 = 1 - alpha is > 0) by their
    epigraphs s >= 0, s >= a: with a0 = 1 - z eta and a1 = a0 + shift + offset, eta =
    rows beta + b_c, each row a <= s reads -z rows beta - z b_c [+ shift] - s <= -1
    [- offset] (without an intercept z b_c, a constant, moves to the right). ``lin`` =
    (constant, g_beta, g_b, g_t): the replaced violated terms' sum
    L = const + g_beta^T beta + g_b b_c + g_t^T t (g_t one number per shift), which
    enters G as max(0, L) by its epigraph v >= 0, v >= L (``_Split``: bounded below);
    ``template`` the set's ``conic.SupportTemplate``.
    """
    m, d = rows.shape
    const, g_beta, g_b, g_t = lin
    n_t = 2 if box else 1
    terms = [(c, k) for k, c in enumerate((c0, c1)) if c > 0.0 and m]
    col_b, col_t = d, d + int(fit_intercept)
    col_s = col_t + n_t  # the first slack block; v, then the template's auxiliaries
    col_v = col_s + m * len(terms)
    n_cols = col_v + 1 + n_t * template.n_aux
    q = np.zeros(n_cols)
    q[col_v] = 1.0
    if not fit_intercept:
        const = const + g_b * b_fixed  # g_b b_c, a constant
    entries = [(np.arange(n_t), np.arange(col_t, col_s), -np.ones(n_t))]  # t >= 0
    rhs = [np.zeros(n_t)]
    at = np.arange(m)
    for j, (c, k) in enumerate(terms):
        top, col = n_t + 2 * m * j, col_s + m * j  # rows: s >= 0, then s >= a
        q[col:col + m] = c * w
        entries.append((top + at, col + at, -np.ones(m)))
        entries.append((top + m + at, col + at, -np.ones(m)))
        entries.append(conic.row_entries(rows, top + m, -z))  # -z rows beta
        shift = -1.0 - (offset if k else 0.0)
        if fit_intercept:
            entries.append((top + m + at, np.full(m, col_b), -z))
        else:
            shift = shift + z * b_fixed
        rhs += [np.zeros(m), np.broadcast_to(shift, (m,))]
        if k:  # + shift: t, or on a box t_dn (t[1]) for z = +1 and t_up (t[0]) for z = -1
            which = (z > 0).astype(int) if box else np.zeros(m, dtype=int)
            entries.append((top + m + at, col_t + which, np.ones(m)))
    # v >= 0 and L - v <= 0: g_beta^T beta + g_b b_c + g_t^T t - v <= -const
    top = n_t + 2 * m * len(terms)
    linear = [(np.arange(d), g_beta), (np.arange(col_t, col_s), np.atleast_1d(g_t))]
    if fit_intercept:
        linear.append((np.array([col_b]), np.array([g_b])))
    cols_l = np.concatenate([c for c, _ in linear] + [np.array([col_v])])
    vals_l = np.concatenate([v for _, v in linear] + [np.array([-1.0])])
    entries.append((np.array([top]), np.array([col_v]), np.array([-1.0])))
    entries.append((np.full(cols_l.shape[0], top + 1), cols_l, vals_l))
    rhs += [np.zeros(1), np.array([-const])]
    r, c, v = (np.concatenate(part) for part in zip(*entries, strict=True))
    n_rows = top + 2
    A, b, cones = conic.with_epigraphs(
        [(r, c, v, n_rows)], [np.concatenate(rhs)],
        [conic.nonneg_cone(n_rows)], template, eps, n_t, col_t, col_v + 1, n_cols)
    return q, A, b, cones


def with_trust_region(A, rhs, cones, cols, centre, radius):
    """The program (A, rhs, cones) with the box |x_k - centre_k| <= radius on the columns
    ``cols`` appended: x_k <= centre_k + radius and -x_k <= radius - centre_k, one
    nonnegative cone."""
    k = cols.shape[0]
    box = sp.csc_matrix((np.concatenate([np.ones(k), -np.ones(k)]),
                         (np.arange(2 * k), np.concatenate([cols, cols]))),
                        shape=(2 * k, A.shape[1]))
    return (sp.vstack([A, box], format="csc"),
            np.concatenate([rhs, radius + centre, radius - centre]),
            [*cones, conic.nonneg_cone(2 * k)])


class _TrustRegion:
    """The box |x_k - x0_k| <= r on a reduced program's columns beta and b around
    FISTA's point x0 (``with_trust_region``), r = ``TRUST_RADIUS`` times its largest
    coordinate (at least ``TRUST_FLOOR``), growing ``TRUST_GROWTH``-fold at each
    minimiser on its boundary. A minimiser of G in the box that lies strictly inside is
    a local minimiser of G, so a global one (G is convex): the box's minimum is G's, and
    a lower bound on it (the program's dual bound, the box's multipliers ~0 there) is
    one on G's. A minimiser on the boundary certifies nothing; its point serves as one
    near the solution, where the samples on the wrong side of their replaced terms join
    N."""

    def __init__(self, state, model, fit_intercept):
        self.beta0, self.b0 = np.asarray(state[0], dtype=np.float64), float(state[1])
        self.model, self.fit_intercept = model, fit_intercept
        self.cols = np.arange(self.beta0.shape[0] + int(fit_intercept))
        self.x0, self.radius = None, None

    @classmethod
    def around(cls, state, model, fit_intercept, n, whole_size):
        """The region for a try at ``state``, or None where a failed try would not take
        the whole problem (n above ``whole_size``: there FISTA goes on, its iterations
        cheaper than the region's rounds)."""
        return cls(state, model, fit_intercept) if n <= whole_size else None

    def added(self, A, rhs, cones, c):
        """The program (A, rhs, cones) with the box's rows (``with_trust_region``), for a
        program whose intercept is uncentred by ``c``
        (``model.program_rows``: b_c = b + c^T beta; the state keeps b = b_c - s c^T
        beta, ``centred_intercept``)."""
        x0 = self.beta0
        if self.fit_intercept:
            centre = self.model.centre
            b = self.b0 + (0.0 if centre is None else float(centre @ self.beta0)) \
                - (0.0 if c is None else float(c @ self.beta0))
            x0 = np.append(x0, b)
        if self.radius is None:
            self.radius = TRUST_RADIUS * max(float(np.max(np.abs(x0), initial=0.0)),
                                             TRUST_FLOOR)
        self.x0 = x0
        return with_trust_region(A, rhs, cones, self.cols, x0, self.radius)

    def inside(self, x):
        """Whether a program's solution x lies strictly inside the box (by a
        ``TRUST_MARGIN`` of its radius)."""
        return bool(np.all(np.abs(x[self.cols] - self.x0)
                           < (1.0 - TRUST_MARGIN) * self.radius))

    def grow(self):
        self.radius *= TRUST_GROWTH


def replaced_sum(model, lin, on_shift, g_beta, g_b, box):
    """(const, g_beta, g_b, g_t): the replaced violated terms' sum
    L = const + g_beta^T beta + g_b b_c + g_t^T t, from ``_Split.coefficients`` (lin,
    on_shift) and the coefficients of eta (g_beta = -X_c^T (lin z), ``linear_coefficient``,
    and g_b = -sum lin z): each term w c (1 [+ offset] - z eta [+ shift]), the shift t,
    or on a box t_up for z = -1 and t_dn for z = +1."""
    z = model.y_host
    const = float(np.sum(lin) + np.sum(on_shift) * model.offset)
    g_t = np.array([on_shift[z < 0].sum(), on_shift[z > 0].sum()]) if box \
        else float(np.sum(on_shift))
    return const, g_beta, g_b, g_t


class ReducedStep:
    """A reduced program's step on one problem (``hinge_exact`` or
    ``linear_pieces.symmetric_exact`` with its leading arguments), called as
    ``kinks.pinned_newton`` is (``solver._minimise``: (state, mu, tol, gap_tol) ->
    (state, F, gap, passes, certified)); ``bounds`` keeps the last certified
    (F, lower bound) for the Result's certificate, or None.

    Each try that fails doubles the near set's sizes for the next (``near_set``'s
    ``widen``): a solve that FISTA does not advance (columns on scales from 1e-2 to 1e3,
    conditioning ~1e10) leaves the program's split wrong at every try, and the program
    grows towards the whole problem, which the interior-point solver does not mind (tries
    come at doubling work, so the program's cost follows the solve's). With
    ``widen_declined`` a declined try widens the next too: the symmetric losses' program,
    asked only once the pinned step has failed twice (a slow solve), whose near set is
    the whole problem for the gaussian loss (a gaussian ``L1`` problem on raw breast
    cancer columns ended 7e-5 above the optimum after 1787 iterations, each try
    declined)."""

    def __init__(self, step, *args, widen_declined=False):
        self.step, self.args, self.widen_declined = step, args, widen_declined
        self.bounds, self.failures = None, 0
        # the solve's work so far in FISTA iterations, set by ``solver._minimise`` before
        # each try (a step whose program costs more declines: ``linear_pieces``), and
        # whether the try is the solve's last (its continuation has stopped)
        self.work, self.final = 0.0, False

    def __call__(self, state, mu, tol, gap_tol):
        out, lower = self.step(*self.args, state, mu, tol, gap_tol,
                               widen=2 ** min(self.failures, 30), work=self.work,
                               final=self.final)
        if out[4]:
            self.bounds = (out[1], lower)
        elif out[3] is not None or self.widen_declined:  # (else a decline is no failure)
            self.failures += 1
        return out


def linear_coefficient(model, u):
    """-X_c^T u, the beta coefficient of the replaced terms' part -u^T eta (eta = X_c beta
    + b_c): one X^T u pass, none where u = 0."""
    if not np.any(u):
        return np.zeros(model.engine.shape[1])
    (xtu,) = model.engine.fetch(model.engine.rmatvec(model.engine.put(u)))
    g_beta = -np.asarray(xtu, dtype=np.float64).ravel() * model.scale
    if model.centre is not None:  # X_c^T u = s X^T u - s c sum_i u_i
        g_beta = g_beta + model.centre * float(np.sum(u))
    return g_beta


def program_point(model, shift, eps, raw, b_c, lower, gap_tol):
    """(state, F, certified, evaluations): a reduced program's solution (beta, b_c) as the
    fast path's state (beta, b, t, X beta), with its exact objective F, certified where
    F - ``lower`` <= ``gap_tol``. An interior-point solution has its zero coefficients at
    ~1e-12: they are zeroed where the bound still certifies the point (beyond eps_max all
    are), else the solution is taken as it is (the last tried is returned uncertified)."""
    snapped = np.where(np.abs(raw) <= SNAP * (1.0 + np.max(np.abs(raw))), 0.0, raw)
    evaluated = 0
    for beta in (snapped, raw) if np.any(snapped != raw) else (raw,):
        # the state keeps the uncentred intercept b = b_c - s c^T beta
        b = b_c - (0.0 if model.centre is None else float(model.centre @ beta))
        t = eps * shift.value(beta)  # the least feasible shift: F is increasing in t
        Xb, F = model.evaluate(beta, b, t, 0.0)
        evaluated += 1
        # a valid bound is <= min F <= F: one above F (beyond the interior-point
        # solver's own gap) proves the program's dual inaccurate, and certifies nothing
        if -BOUND_ABOVE * gap_tol <= F - lower <= gap_tol:
            return (beta, b, t, Xb), F, True, evaluated
    return (beta, b, t, Xb), F, False, evaluated


def certify(point_of, solved, again, gap_tol):
    """``point_of(solution)`` -> (state, F, certified, evaluations, lower bound) for a
    reduced program's ``solved`` solution (``program_point`` with the caller's units);
    where the point is not certified because the bound lies above F by more than
    ``BOUND_ABOVE`` gap tolerances (the program's dual inaccurate: its point may well be
    the solution), the solutions of ``again()`` (``conic.solve_again``) are tried in
    turn, until one certifies or its bound is no longer above F. Returns the last
    (state, F, certified, lower) and the evaluations in all."""
    point, F, certified, evaluated, lower = point_of(solved)
    if certified or not F < lower - BOUND_ABOVE * gap_tol:
        return point, F, certified, evaluated, lower
    for other in again():
        point, F, certified, more, lower = point_of(other)
        evaluated += more
        if certified or not F < lower - BOUND_ABOVE * gap_tol:
            break
    return point, F, certified, evaluated, lower


def lower_of(best, point, F):
    """The better of ``best`` (a (point, F) pair, or None) and (point, F) of a program
    that did not certify; a non-finite F is none."""
    return (point, F) if np.isfinite(F) and (best is None or F < best[1]) else best


def uncertified(state, best, passes):
    """A reduced step's answer where no program certified: the programs' best (point, F)
    (``lower_of``), where ``solver._minimise`` goes on if F there is below F at the
    state, or the state given and inf where none solved; no bound."""
    point, F = (state, np.inf) if best is None else best
    return (point, F, np.inf, passes, False), None


def _objective_units(model, state, gap_tol):
    """F at ``state`` where it is below ``SMALL_F`` (and above ``gap_tol``), else 1: the
    unit in which a hinge program is solved (its q divided by it; the bound multiplied).

    Clarabel's tolerances have an absolute part (1 + the data's norms), and the terms'
    weights w_i c are ~1/n, so where F is far below the objective's scale (that of the
    scaled problem's null model, ~1) the solves' relative accuracy is coarse: a hinge
    with an ellipsoid at 0.95 eps_max, F* = 2e-3, had every program "almost solved" or
    bounded 1.4e-7 relative above the optimum (beyond the 1e-7 asked), no try certified,
    and FISTA ran out of its 20 000 iterations; in units of F its tries settled and
    certified at 505 iterations. (In units of F throughout, as
    ``linear_pieces.symmetric_exact`` solves its programs, raw breast-cancer programs at
    F = 0.06-0.11 certified bounds 1.1e-8 relative above the optimum, where the default
    units' were below it.)"""
    kappa = float(model.value(state[3], state[1], state[2], 0.0))
    return kappa if np.isfinite(kappa) and gap_tol < kappa < SMALL_F else 1.0


def _solved_again(q, A, rhs, cones, gap_tol, units):
    """``conic.solve_again``'s answers for a program solved with ``q`` in ``units``
    (``_objective_units``), their bounds in F's own (``certify``)."""
    for again in conic.solve_again(q, A, rhs, cones, gap_tol / units):
        yield again._replace(dual=again.dual * units)


def _sparse_program_pays(model, m, work):
    """Whether a program of m sparse rows pays for the solve's ``work`` so far
    (``linear_pieces.program_pays``, its cost model, scaled by X's density). Sparse
    rows lift the dense cap on a program's entries (``row_entries``), so at large d
    its least size, MIN_NEAR_PER_UNKNOWN rows per unknown, can be most of the problem:
    n = 5000, d = 1000 tf-idf rows (Linf, intercept, 0.1 eps_max) spent 6.2 s in three
    rounds of 2004-2200 rows where FISTA alone finished in 0.8 s; at 0.01 eps_max FISTA
    took 16 764 iterations (6.8 s), uncertified, and the program, asked once it pays,
    certifies."""
    from .linear_pieces import program_pays_for  # (linear_pieces builds on this module)

    return program_pays_for(model, m, work)


def hinge_exact(model, shift, pert, fit_intercept, eps, state, mu, tol, gap_tol, widen=1,
                work=0.0, final=False):
    """The exact hinge solution from a smoothed one, ``state`` = (beta, b, t, X beta).

    ``shift`` is the fast path's shift function (``SupportShift`` or ``BoxShift``),
    ``pert`` the set whose ``support_cvx`` formulates it, ``eps`` the scaled radius.
    ``tol`` is unused (the step certifies by a gap, not a residual; the argument keeps
    the interface of ``kinks.pinned_newton``); ``gap_tol`` the absolute objective
    tolerance on F(x*) minus the reduced program's dual bound. Returns ((state, F, gap,
    passes, certified), lower bound) with F the exact objective; when not certified, the
    programs' best point and F there (the state given and inf where none solved) and
    the bound None, passes None where the step declined (the near set too large: the
    point still far, or the program not small; on sparse X's rows, a program costlier
    than the ``work`` so far: ``_sparse_program_pays``). ``final``: the solve's last
    try, whose rounds are not limited by the fraction of samples that move
    (``FINAL_ROUNDS``).
    """
    del tol  # (the near set's cap bounds a dense program's cost: no budget there)
    engine = model.engine
    _, b0, t0, Xb0 = state
    d = engine.shape[1]
    template = conic.support_template(pert, d)
    if template is None:  # (declined: no cone template)
        return (state, np.inf, np.inf, None, False), None
    box = np.ndim(t0) > 0
    z, w = model.y_host, model.w_host
    eta = engine.fetch(Xb0)[0] + b0
    a0, a1 = _arguments(model, eta, t0, box)
    weights = (model.alpha, 1.0 - model.alpha)
    unknowns = d + int(fit_intercept) + (2 if box else 1)
    # after a failed try (widen > 1), a problem whose samples all fit the program's cap
    # goes to the program of all samples: the split cannot be wrong then, and on
    # ill-conditioned columns FISTA's point does not settle it (raw breast cancer, a
    # masked Group(p = 3): tries at 2x and 4x the near set failed, all 569 samples
    # certified, at 478 FISTA iterations of work; now at the second try)
    n = z.shape[0]
    entries = model.row_entries()  # (d, or fewer for sparse X's rows)
    whole = widen > 1 and n <= near_cap(unknowns, entries, widen)
    near = near_set(_kink_distance(a0, a1, weights), w, mu, unknowns, entries,
                    least=n if whole else None, widen=widen)
    if near is None or model.sparse_rows() and not _sparse_program_pays(
            model, np.count_nonzero(near), work):
        # declined: no passes spent (``solver._minimise`` asks again later)
        return (state, np.inf, np.inf, None, False), None
    split = _Split(a0, a1, *weights, near)
    # G's linear part from the replaced terms: sum w c (1 [+ offset] - z eta [+ s]) =
    # const - g_eta^T eta + shift terms, and eta = X_c beta + b_c, so the beta
    # coefficient is -X_c^T (lin z) (one pass) and the b_c coefficient -sum lin z
    lin, on_shift = split.coefficients(w)
    u = lin * z
    g_beta, g_b = linear_coefficient(model, u), -float(np.sum(u))
    passes = 1
    b_fixed = None if fit_intercept else float(b0)
    units = _objective_units(model, state, gap_tol)
    most_moved = np.inf if final else MAX_MOVED_FRACTION
    best = None  # the uncertified programs' best point and F there

    def moved_at(point, most=None):
        # the samples outside N whose replaced term is on the wrong side at ``point``
        _, b, t, Xb = point
        return split.wrong(*_arguments(model, engine.fetch(Xb)[0] + b, t, box), w, most)

    # a trust region where a failed try would take the whole problem (``whole``): there
    # the first programs' minimisers ran off (``TRUST_RADIUS``); the whole problem's
    # program cannot (G = F)
    region = None if whole else _TrustRegion.around(state, model, fit_intercept, n,
                                                    near_cap(unknowns, entries, 2))
    rounds = FINAL_ROUNDS if final else (TRUST_ROUNDS if region else MAX_ROUNDS)

    def join(moved):
        # the moved samples' terms leave the linear part and join N whole
        nonlocal g_beta, g_b
        A = np.asarray(model.rows(moved), dtype=np.float64)
        g_beta = g_beta + A.T @ u[moved]  # the beta coefficient loses -x_c,i u_i
        g_b += float(np.sum(u[moved]))
        lin[moved], on_shift[moved], u[moved] = 0.0, 0.0, 0.0
        split.near[moved] = True

    for _ in range(rounds):
        idx = np.flatnonzero(split.near)
        rows, c = model.program_rows(idx)
        q, A, rhs, cones = _program(rows, z[idx], w[idx], *weights,
                                    uncentred(replaced_sum(model, lin, on_shift, g_beta,
                                                           g_b, box), c),
                                    template, eps, box, fit_intercept, b_fixed, model.offset)
        q = q / units
        if region is not None:
            A, rhs, cones = region.added(A, rhs, cones, c)

        def at(x, lower, c=c):
            # ``program_point`` of the program's solution x with the bound ``lower``
            # (none where x lies on the trust region's boundary)
            b_c = centred_intercept(x[:d], float(x[d]), c) if fit_intercept else b_fixed
            inside = region is None or region.inside(x)
            return program_point(model, shift, eps, x[:d], b_c,
                                 lower if inside else -np.inf, gap_tol)

        tested = []  # (point, F, certified, evaluations) of ``far``'s points

        def far(x, size=idx.size, tested=tested):
            # the moved-samples test below, on the point of a solve whose bound is
            # untrusted, before it is solved again (HiGHS: 22 ms of a masked set's 48 ms
            # program at n = 1e4, d = 50, whose point at F = 113 against 0.92 moved more
            # than half the near samples); a point on the trust region's boundary is not
            # solved again either (the region grows)
            tested.append(at(x, -np.inf))
            return region is not None and not region.inside(x) or \
                moved_at(tested[-1][0]).size > most_moved * size

        solved = conic.solve_program(q, A, rhs, cones, gap_tol / units,
                                     far=None if final and region is None else far)
        passes += sum(out[3] for out in tested)
        boundary = region is not None and solved.x is not None \
            and not region.inside(solved.x)
        if solved.status == "far" or solved.status == "optimal" and boundary:
            # (``far``'s point is the solve's; a trusted solve on the region's boundary:
            # its bound is not the program's)
            if solved.status == "far":
                point, F = tested[-1][:2]
            else:
                point, F, _, evaluated = at(solved.x, -np.inf)
                passes += evaluated
            if region is None:
                best = lower_of(best, point, F)
                break
            if boundary:
                region.grow()
        else:
            if solved.status != "optimal":  # (not unbounded: G >= 0)
                return (state, np.inf, np.inf, passes, False), None
            solved = solved._replace(dual=solved.dual * units)

            def point_of(solution):
                return (*at(solution.x, solution.dual), solution.dual)

            point, F, certified, evaluated, lower = certify(
                point_of, solved, partial(_solved_again, q, A, rhs, cones, gap_tol, units),
                gap_tol)
            passes += evaluated
            if 0.0 <= F <= gap_tol:
                # every hinge term is >= 0, so F* >= 0: a point at F <= gap_tol is
                # certified by that bound whatever the program's (attacked classes
                # separated with a margin, F = 0 at the program's point: Clarabel's bound
                # 1.6e-7 was above it, its dual error 1e-6, no try certified and FISTA ran
                # out of iterations)
                certified, lower = True, 0.0
            if certified:
                return (point, F, max(F - lower, 0.0), passes, True), lower
        best = lower_of(best, point, F)
        # within the region at most |N| samples join, the most wrong, however many moved
        moved = moved_at(point, None if region is None else idx.size)
        if region is None and moved.size > most_moved * idx.size \
                or not (moved.size or boundary):
            break  # the point was far from the solution, or the split holds (the
            # reduced solve was not accurate enough)
        if moved.size:
            join(moved)
        if np.count_nonzero(split.near) * entries > MAX_NEAR_ENTRIES:
            break
    # not certified: the programs' best point (a hinge L2 fit on two nearly equal
    # columns, n = 50, cond 6e5, had every program's bound untrusted, dual error 1.6e-2
    # against a tolerance of 2e-8, and FISTA, from its own point, stopped 4.8% above
    # the optimum that those programs' points reached)
    return uncertified(state, best, passes)
