"""fc.solve: one entry point over the backends."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from ._validation import check_max_iter, check_tol
from .cvx import check_solver, near_clean, solve_cvxpy
from .exceptions import InaccurateSolutionWarning, SolverError, SolverFallbackWarning
from .families import Hinge
from .fast import shift_set, solve_fast
from .problem import AdversarialProblem

BACKENDS = ("auto", "cvxpy", "fast")

#: "auto" uses the fast path from this many entries of X (n_samples * n_features, the
#: nonzeros of a sparse X) on ...
AUTO_FAST_SIZE = 5_000
#: ... when there are at least this many samples per feature, or else from this many
#: entries on (few samples per feature make the problem ill-conditioned for a
#: first-order method, while cvxpy's cost grows with the entries)
AUTO_FAST_SAMPLES_PER_FEATURE = 2
AUTO_FAST_SIZE_WIDE = 100_000
#: The same three for the hinge loss, whose exact finish is itself a small cvxpy program
#: (``fast/working_set.py``): ECOS is about as fast on the smallest problems
AUTO_FAST_HINGE = (10_000, 8, 500_000)
# Measured 2026-12-02 by benchmarks/bench_auto.py (one solve at eps = 0.2 eps_max, Linf
# and L2, fast vs cvxpy with ECOS; docs/performance.md, "The choice of backend"): above
# the rule the fast path was 1.4x-500x faster for every family (n x d = 250 x 20,
# 500 x 20, 1000 x 10, 2500 x 2, 200 x 100, 200 x 500) but Poisson at 100 x 50 (0.4x-0.8x);
# with fewer samples per feature at 2e4 entries (50 x 400, 100 x 200) it was 0.1x-1.8x.
# Hinge: 0.2x-1.0x below 1e4 entries or at 2 samples per feature, 1.0x-2.5x from 1e4
# entries and 20 per feature (500 x 20, 1000 x 10), 5.5x-15x at 2000 x 50 (bench_fast).
# (Until then "auto" took the fast path from 2e4 entries, 5e5 for hinge.)

#: Below the size rule, "auto" checks the cvxpy answer with the fast path (started from
#: it) where the weighted design [X, 1] has a condition number above this and the fit is
#: clean (eps = 0 or alpha = 1) or the status is 'optimal_inaccurate'. Measured
#: 2026-12-06 (n 50-200, d 3-20, five families, Linf / L2 / L1; nearly equal columns or
#: columns on up to six decades), ECOS's answers more than 1e-7 relative above the fast
#: path's: at eps in {0, 0.02, 0.2} eps_max, 33 of 398 draws, all at eps = 0, all with a
#: condition number above 1.4e4 (86 draws), up to 26%, 7 of them 'optimal'; at eps in
#: 1e-6 to 1e-2 eps_max, 11 of 296 draws, all 'optimal_inaccurate', one at 3.9e3. Along a
#: nearly flat direction of the objective (eps > 0 tilts it) an interior-point solver's
#: dual iterate is infeasible and its bound no bound; a first-order method started at
#: its point recovers the accuracy in a few iterations (1-16 ms here)
AUTO_CHECK_COND = 1e3
#: The fast path's iteration budget for a check of cvxpy's answer (those that replaced
#: ECOS's answer on the nearly-equal-columns draws at eps = 0 took 2-9 iterations)
AUTO_CHECK_MAX_ITER = 2000
#: The second interior-point solver's tolerance, as a fraction of ``tol``, where the
#: first's status is 'optimal_inaccurate' (``_cvxpy_or_fast``): on two ECOS answers of
#: the survey (condition numbers 2e5-5e5) Clarabel said 'optimal' at 1e-8 1.5e-3 and
#: 2.8e-2 above its own answers at 1e-10, in the same time (20-40 ms)
SECOND_OPINION_TOL = 1e-2
#: The condition number is computed from the smaller Gram matrix of [X, 1], up to this
#: order (an eigendecomposition of ~30 ms): every dense X below the size rule (at most
#: 1e5 entries: min(n, d) <= 316); beyond it, a sparse X with few nonzeros in a large
#: shape, no check is made
AUTO_CHECK_ORDER = 500


def _prefers_fast(prob):
    """The size rule of ``_auto_backend`` (X on the host, the fast path covering it)."""
    n, d = prob.n_samples, prob.n_features
    size, ratio, wide = AUTO_FAST_HINGE if isinstance(prob.family, Hinge) else (
        AUTO_FAST_SIZE, AUTO_FAST_SAMPLES_PER_FEATURE, AUTO_FAST_SIZE_WIDE)
    # the entries of X that cost: its nonzeros where it is sparse (cvxpy's programs and
    # a pass of the fast path are O(nnz); by n d, a 2000 x 1000 TF-IDF hinge problem
    # with 2e4 nonzeros went to the fast path, which gave up after 20000 iterations
    # (4 s), where ECOS takes 0.4 s)
    entries = prob.X.nnz if sp.issparse(prob.X) else n * d
    return entries >= wide or (entries >= size and n >= ratio * d)


def fast_supported(prob):
    """True when the fast backend covers ``prob`` (see ``fast.shift_set``)."""
    try:
        shift_set(prob)
    except NotImplementedError:
        return False
    return True


def _auto_backend(prob):
    """The fast path for large problems it covers, and for alpha within
    ``cvx.NEAR_CLEAN`` of 1 at any size; cvxpy otherwise.

    X on another engine than numpy / scipy.sparse (dask, CuPy, torch ...) always goes to
    the fast path, the only one that runs there (cvxpy then refuses it, naming the fast
    backend).
    """
    if not prob.on_host:
        return "fast" if fast_supported(prob) else "cvxpy"
    # (alpha near 1: the interior-point solvers are unreliable at any size, ``near_clean``)
    if (_prefers_fast(prob) or near_clean(prob)) and fast_supported(prob):
        return "fast"
    return "cvxpy"


def check_backend(backend):
    """``backend`` if it is one of BACKENDS; ValueError otherwise."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def resolve_backend(prob, backend):
    """The backend "auto" stands for on ``prob`` (other names are checked and returned)."""
    return _auto_backend(prob) if check_backend(backend) == "auto" else backend


def solve(prob, backend="auto", solver="ECOS", tol=1e-8, max_iter=None, verbose=False,
          warm_start=None):
    """Solve an AdversarialProblem and return a certified Result.

    Parameters
    ----------
    prob : AdversarialProblem
    backend : {"auto", "cvxpy", "fast"}
        "cvxpy": the disciplined convex program (exact, interior point).
        "fast": the first-order path for large n (accelerated projected gradient on the
        epigraph form; symmetric sets with a projection and boxes, no user constraints).
        "auto": the fast path when it covers the problem and X has at least
        ``AUTO_FAST_SIZE`` (5000) entries (nonzeros, for scipy.sparse X) and
        ``AUTO_FAST_SAMPLES_PER_FEATURE`` (2) samples per feature, or
        ``AUTO_FAST_SIZE_WIDE`` (1e5) entries (hinge: ``AUTO_FAST_HINGE``, 1e4 entries
        and 8 per feature, or 5e5), or alpha is within ``cvx.NEAR_CLEAN`` (1e-3) of 1
        (eps > 0: the interior-point solvers are unreliable there), or X is a dask /
        GPU / array API array (any family); cvxpy otherwise, its answer checked where
        in doubt (an inaccurate status, an ill-conditioned design; the backends page)
        and replaced where the fast path or the other interior-point solver goes lower.
        ``Result.backend`` says which ran, and ``Result.engine`` where the products
        with X ran ("numpy", "scipy.sparse", "dask", "cupy", "torch", ...: the type
        of X decides).
    solver : {"ECOS", "CLARABEL", "SCS"}
        Conic solver for the cvxpy backend (ECOS by default); ignored by the fast path.
    tol : float in (0, 1)
        Accuracy: the conic solver's tolerances, or the fast path's target relative to
        the objective scale.
    max_iter : int >= 1 or None
        Iteration limit (the backend's default when None).
    verbose : bool, default False
        The conic solver's own log (cvxpy backend); the fast path prints nothing.
    warm_start : Result or (coef, intercept) or None
        Starting point for the fast path (interior-point solvers start cold); for a
        non-convex penalty, the starting point of the local linear approximation. A
        Result for the same eps and alpha is tried as the solution first (a few
        iterations when it is one); other starts begin a shortened continuation.

    Returns
    -------
    Result
        The solution with its certificate.

    Raises
    ------
    ValueError, TypeError
        For a bad backend, solver, tol or max_iter, before anything is solved.
    SolverFallbackWarning
        (a warning) when "auto" chose the fast path and it ran out of its default
        iteration budget: the cvxpy backend then solved the problem (``Result.backend``
        says so); or when "auto" chose cvxpy and its solution was inaccurate without its
        certificate confirming it, or on an ill-conditioned design
        (``condition_number`` above ``AUTO_CHECK_COND``) at eps = 0 or with an
        inaccurate status, where it was not the lowest: the fast path then solved from
        that point, and its answer, no worse, is returned; or where, with an
        inaccurate status, the other interior-point solver's answer was lower (it is
        returned, ``Result.solver`` naming it).
    SolverError
        When the solver fails, stops at its iteration limit, returns a non-finite point,
        or the returned point proves that no minimiser exists (separable classes); the
        exception carries ``status`` and ``solver`` and its message says what to try.
    InaccurateSolutionWarning
        (a warning) when a solver stops with an inaccurate solution that its certificate
        does not confirm (and, with "auto", the fast path found none better).

    Notes
    -----
    A problem with a non-convex penalty (``penalties.SCAD``, ``MCP``, ``Lr`` with r < 1)
    is solved by ``fc.lla_solve`` with default settings (each step on ``backend``).
    """
    if not isinstance(prob, AdversarialProblem):
        raise TypeError(f"prob must be an AdversarialProblem, got {type(prob).__name__}")
    check_solver(solver, installed=False)  # the cvxpy backend checks it is installed
    tol = check_tol(tol)
    max_iter = check_max_iter(max_iter)
    if prob.penalty is not None and not prob.penalty.convex:
        # non-convex generalized FGSM: local linear approximation, each step a convex
        # weighted-FGSM problem solved by the backend asked for
        from .lla import lla_solve

        check_backend(backend)
        return lla_solve(prob, backend=backend, solver=solver, tol=tol, max_iter=max_iter,
                         init=warm_start)
    chosen = resolve_backend(prob, backend)
    if chosen == "fast":
        kwargs = {} if max_iter is None else {"max_iter": max_iter}
        try:
            return solve_fast(prob, tol=tol, warm_start=warm_start, **kwargs)
        except SolverError as err:
            # "auto" chose the fast path by size; where it runs out of its default
            # budget (a hard problem for a first-order method) the interior-point
            # solver, which takes X on the host, answers instead (a budget the caller
            # set is kept: its error stands)
            if backend != "auto" or err.status != "max_iter" or max_iter is not None \
                    or not prob.on_host:
                raise
            warnings.warn(f"the fast path did not converge ({err}); backend='auto' "
                          f"solved the problem with cvxpy ({solver}) instead",
                          SolverFallbackWarning, stacklevel=2)
    elif backend == "auto" and prob.on_host and fast_supported(prob):
        return _cvxpy_or_fast(prob, solver, tol, max_iter, verbose)  # (below the size rule)
    return solve_cvxpy(prob, solver=solver, tol=tol, max_iter=max_iter, verbose=verbose)


def condition_number(prob):
    """The condition number of the design as the losses see it: the ratio of the extreme
    nonzero-spectrum singular values of A = W^(1/2) [X, 1] (the column of ones where
    there is an intercept, W the sample weights; rows of weight 0 left out), from the
    smaller of its two Gram
    matrices A^T A and A A^T (their eigenvalues are the squared singular values), built
    without densifying a sparse X; None when that Gram matrix would have more than
    ``AUTO_CHECK_ORDER`` rows. Rank deficiency (duplicate columns, zero weights) gives a
    huge number or inf, as it should: the objective is flat there. Cached on the problem
    (copies by ``with_params`` share it).
    """
    cache = prob._cache
    if "condition_number" not in cache:
        cache["condition_number"] = _condition_number(prob)
    return cache["condition_number"]


def _condition_number(prob):
    w, X = prob.sample_weight, prob.X
    # weightless rows are no terms of the objective: the design is that of the others
    kept = w > 0.0
    n, d = int(np.count_nonzero(kept)), prob.n_features
    if min(n, d + 1) > AUTO_CHECK_ORDER:
        return None
    w = w[kept]
    # (float64 throughout: a float32 Gram matrix resolves condition numbers up to ~1e3.5)
    X = X.tocsr()[kept].astype(np.float64) if sp.issparse(X) \
        else np.asarray(X, dtype=np.float64)[kept]
    if d + 1 <= n:  # A^T A = [X^T W X, X^T w; w^T X, sum w]
        WX = sp.diags(w) @ X if sp.issparse(X) else w[:, None] * X
        gram = np.asarray((X.T @ WX).toarray() if sp.issparse(X) else X.T @ WX)
        if prob.fit_intercept:
            xw = np.asarray(X.T @ w).ravel()
            gram = np.block([[gram, xw[:, None]], [xw[None, :], np.array([[w.sum()]])]])
    else:  # A A^T = W^(1/2) (X X^T + 1 1^T) W^(1/2)
        XXt = X @ X.T
        gram = np.asarray(XXt.toarray() if sp.issparse(XXt) else XXt)
        if prob.fit_intercept:
            gram = gram + 1.0
        root_w = np.sqrt(w)
        gram = root_w[:, None] * gram * root_w[None, :]
    eig = np.linalg.eigvalsh(gram)  # ascending: the squared singular values of A
    if not eig[-1] > 0.0:
        return None  # (X = 0 without intercept: nothing to fit)
    return float(np.sqrt(eig[-1] / eig[0])) if eig[0] > 0.0 else float("inf")


def _doubt(prob, res):
    """Why "auto" doubts a confirmed cvxpy answer ``res`` (a phrase), or None (``prob``
    has X on the host and is covered by the fast path: ``_cvxpy_or_fast``'s caller).

    An ill-conditioned design (``condition_number`` above ``AUTO_CHECK_COND``) at a
    clean fit (eps = 0 or alpha = 1) or with status 'optimal_inaccurate' (at eps > 0
    the dual norm tilts the flat direction: no 'optimal' answer was off there).
    (Designs with fewer samples than coefficients, flat along X's null space but for
    eps sigma(beta), are not doubted: ECOS's answers at 1e-4 eps_max on 20 x 40
    gaussian and Huber fits were 0.2-6% relative above Clarabel's, but of objectives
    ~1e-8, interpolating fits, so within ``tol`` of the objective's scale, which is
    what ``tol`` asks.)
    """
    if not (prob.eps == 0.0 or prob.alpha == 1.0 or res.status != "optimal"):
        return None
    cond = condition_number(prob)
    if cond is None or not cond > AUTO_CHECK_COND:
        return None
    return f"returned '{res.status}' on a design with condition number {cond:.1e}"


def _cvxpy_or_fast(prob, solver, tol, max_iter, verbose):
    """"auto" below the size rule: the cvxpy backend, and then the fast path started
    from its answer where that answer is in doubt:

    * inaccurate, with a certificate that does not confirm it
      (``InaccurateSolutionWarning``): the fast answer replaces it where no worse;
    * confirmed, but on a design where interior-point answers were found off
      (``_doubt``: ill-conditioned): the fast answer replaces it where it is lower by
      more than ``tol`` relative. An interior-point solver's dual bound is no bound
      where its dual iterate is infeasible, and along a nearly flat direction of the
      objective it is.

    The fast path has ``AUTO_CHECK_MAX_ITER`` iterations. Where it does not replace an
    answer whose status is 'optimal_inaccurate', the other interior-point solver
    (Clarabel, or ECOS after Clarabel) gives a second answer at ``SECOND_OPINION_TOL``
    times the tolerance, which replaces it where lower by that margin. A replacement
    says so with a ``SolverFallbackWarning``; otherwise the cvxpy answer is returned
    with what it warned. Every objective compared is the robust objective recomputed in
    numpy at the answer's point, so the lower one is the better point.

    Measured: Huber with a box at alpha = 0.3 on standardised diabetes rows, y x 1e4 and
    the threshold 0.01 (nearly least absolute deviations with a tiny threshold): ECOS
    returned 'optimal_inaccurate' 0.5-4.5% above the optimum on each of 8 problems (51 to
    323 rows), where the fast path's reduced program certifies the optimum. Logistic
    regression on 100 x 3 with two columns equal to within 1e-6 to 1e-4 (condition number
    ~1e5): ECOS 'optimal' 1.4e-4 to 1.2% above the optimum, the check 2-5 ms. Binomial
    fits with a box at alpha = 0.5 on six-decade columns: ECOS 0.17% and 37% above
    Clarabel's answer, where FISTA alone did not converge (the fast path's answer since
    the box's Newton step, ``newton.BoxOrthant``; Clarabel's before).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = solve_cvxpy(prob, solver=solver, tol=tol, max_iter=max_iter, verbose=verbose)
    inaccurate = any(issubclass(w.category, InaccurateSolutionWarning) for w in caught)
    why = "returned an inaccurate solution that its certificate does not confirm" \
        if inaccurate else _doubt(prob, res)
    margin = tol * (1.0 + abs(res.objective))  # (a replacement must go this much lower)
    if why is not None:
        # (the check has a budget: where a first-order method is slow to settle, the
        # other interior-point solver answers below; binomial box fits on six-decade
        # columns spent 6-7 s on checks that failed after 20 000 iterations, ECOS 0.1 s)
        try:
            fast = solve_fast(prob, tol=tol, warm_start=res, max_iter=AUTO_CHECK_MAX_ITER)
        except SolverError as err:
            if err.status == "unbounded":
                # a point at which every robust margin is positive: a proof that no
                # minimiser exists, so cvxpy's finite answer is none (logistic fits on
                # six-decade columns, separable: ECOS and Clarabel 'optimal_inaccurate'
                # at objectives of 0.3-0.5, the infimum being 0)
                raise
            fast = None
        # (an unconfirmed inaccurate answer gives way to any no worse)
        if fast is not None and fast.objective <= res.objective - (0.0 if inaccurate
                                                                    else margin):
            warnings.warn(f"{solver} {why} (objective {res.objective:.10g}); "
                          f"backend='auto' solved the problem with the fast path instead "
                          f"(objective {fast.objective:.10g})", SolverFallbackWarning,
                          stacklevel=3)
            return fast
    if res.status != "optimal":
        # (tighter, but not below 1e-12, where the solvers' own rounding stops them)
        tight = min(tol, max(SECOND_OPINION_TOL * tol, 1e-12))
        other = _second_opinion(prob, solver, tight, max_iter)
        if other is not None and other.objective < res.objective - margin:
            warnings.warn(f"{solver} returned '{res.status}' (objective "
                          f"{res.objective:.10g}); backend='auto' took {other.solver}'s "
                          f"lower answer (objective {other.objective:.10g})",
                          SolverFallbackWarning, stacklevel=3)
            return other
    for w in caught:  # the cvxpy answer stands, with what it warned
        warnings.warn(w.message, w.category, stacklevel=3)
    return res


def _second_opinion(prob, solver, tol, max_iter):
    """The cvxpy backend's answer with the other interior-point solver (Clarabel, or
    ECOS after Clarabel), its warnings held back; None where it fails or is not
    installed. Its proof that no minimiser exists (status "unbounded": a point at which
    every robust margin is positive) is raised: the first answer is then none."""
    other = "ECOS" if solver == "CLARABEL" else "CLARABEL"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return solve_cvxpy(prob, solver=other, tol=tol, max_iter=max_iter)
        except SolverError as err:
            if err.status == "unbounded":
                raise
            return None
