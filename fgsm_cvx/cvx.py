"""The exact adversarial GLM as a disciplined convex program (cvxpy backend).

Epigraph form of docs/theory.md §2, with shared scalar shifts t_up, t_down >= 0:

.. math::

    \\min_{\\beta, b, t}\\; \\alpha \\sum_i w_i l(y_i, \\eta_i)
        + (1-\\alpha) \\sum_i w_i \\max(l(y_i, \\eta_i + t_{up}), l(y_i, \\eta_i - t_{down}))
    \\quad \\text{s.t.}\\quad \\epsilon\\,\\sigma_S(\\beta) \\le t_{up},\\;
    \\epsilon\\,\\sigma_S(-\\beta) \\le t_{down}

(one t when S is symmetric or a penalty P replaces sigma_S). Every loss has an affine
argument, so the program is DCP, and eps, alpha and 1 - alpha are ``cp.Parameter``s
entering affinely, so it is DPP: it is canonicalised once per problem structure and
re-solved for new parameter values. Because the worst-case loss is nondecreasing in the
shifts, the constraints are tight at the optimum and the relaxation is exact.
"""

from __future__ import annotations

import time
import warnings

import cvxpy as cp
import numpy as np

from ._diagnostics import (
    check_finite,
    check_minimiser_exists,
    check_poisson_zeros,
    explain_failure,
)
from .engine import engine_name, require_host
from .exceptions import InaccurateSolutionWarning, SolverError, SolverFallbackWarning
from .problem import robust_objective
from .result import Certificate, Result

SOLVERS = ("ECOS", "CLARABEL", "SCS")
#: The order in which the cvxpy backend tries other solvers after a numerical failure.
FALLBACK_ORDER = ("ECOS", "CLARABEL", "SCS")

# Map one tolerance to each solver's own options (absolute, relative gap, feasibility).
_TOL_OPTIONS = {
    "ECOS": lambda tol: {"abstol": tol, "reltol": tol, "feastol": tol},
    "CLARABEL": lambda tol: {"tol_gap_abs": tol, "tol_gap_rel": tol, "tol_feas": tol},
    "SCS": lambda tol: {"eps_abs": tol, "eps_rel": tol},
}
_MAX_ITER_OPTION = {"ECOS": "max_iters", "CLARABEL": "max_iter", "SCS": "max_iters"}

#: Where 0 < 1 - alpha <= NEAR_CLEAN (and eps > 0) the interior-point solvers' answers
#: are unreliable: the adversarial terms weigh 1 - alpha against alpha, and their
#: multipliers sit near the cones' boundaries. Measured 2026-12-05 (n = 150, d = 5, five
#: families, eps 0.1-0.7 eps_max, 45 problems per alpha), ECOS answers more than 1e-6
#: relative above the fast path's with a certificate that confirmed them: none at alpha
#: 0.99 and 0.999, 5 at 0.9999 (up to 3.5e-3), 13 at 1 - 1e-5, 29 at 1 - 1e-6 (up to
#: 0.54, some of them 'optimal'); Clarabel 'optimal' up to 2.3e-5 above. The cvxpy
#: backend warns there, and "auto" takes the fast path
NEAR_CLEAN = 1e-3


class CvxFormulation:
    """The cvxpy problem for one problem structure, with eps and alpha as parameters.

    Parameters
    ----------
    prob : AdversarialProblem
    clean, adversarial : bool
        Whether the clean term (alpha > 0) and the adversarial term (alpha < 1) appear.
        Leaving out a term whose weight is zero halves the cone count.
    """

    def __init__(self, prob, clean=True, adversarial=True):
        X = prob.X
        # Solve the well-scaled equivalent problem (``AdversarialProblem.scaling``): the
        # solver then sees coefficients and losses of order one however X and y are scaled.
        self.scaling = sc = prob.scaling
        if X.dtype != np.float64 or sc.x != 1.0:
            X = X.astype(np.float64) * sc.x
        fam, y, w = sc.family, sc.y, prob.sample_weight
        self.beta = cp.Variable(prob.n_features, name="beta")
        self.intercept = cp.Variable(name="intercept") if prob.fit_intercept else None
        eta = X @ self.beta
        if self.intercept is not None:
            eta = eta + self.intercept
        elif sc.eta_offset != 0.0:  # b = 0 is b'' = -o / m in the scaled problem
            eta = eta - sc.eta_offset / sc.eta_mult
        self.eps = cp.Parameter(nonneg=True, name="eps")
        self.alpha = cp.Parameter(nonneg=True, name="alpha")
        # (1 - alpha) as its own nonnegative parameter: cvxpy cannot tell the sign of
        # 1 - alpha, and an unknown sign times a convex term is not DCP.
        self.one_minus_alpha = cp.Parameter(nonneg=True, name="one_minus_alpha")
        terms, constraints = [], []
        if clean:
            terms.append(self.alpha * (w @ fam.loss_cvx(y, eta)))
        if adversarial:
            shift = prob.penalty.cvx if prob.penalty is not None else prob.perturbation.support_cvx
            offset = getattr(prob.penalty, "offset", 0.0)
            if offset:
                # the LLA majoriser sigma(beta) + c: in the scaled variables beta = k beta''
                # (k = sc.coef) eps (sigma(beta) + c) / m = eps'' (sigma(beta'') + c / k)
                support = prob.penalty.perturbation.support_cvx

                def shift(beta, support=support, c=offset / sc.coef):
                    return support(beta) + c
            self.t_up = cp.Variable(nonneg=True, name="t_up")
            # max over eps*S of delta^T beta = eps * sigma_S(beta) <= t_up
            constraints.append(self.eps * shift(self.beta) <= self.t_up)
            if prob.symmetric:
                self.t_down = self.t_up
            else:
                self.t_down = cp.Variable(nonneg=True, name="t_down")
                # min over eps*S of delta^T beta = -eps * sigma_S(-beta) >= -t_down
                constraints.append(self.eps * shift(-self.beta) <= self.t_down)
            worst = fam.worst_case_cvx(y, eta, self.t_up, self.t_down)
            terms.append(self.one_minus_alpha * (w @ worst))
        if prob.constraints is not None:
            constraints.extend(prob.constraints.cvx(self.beta, self.intercept, sc))
        self.problem = cp.Problem(cp.Minimize(cp.sum(cp.hstack(terms))), constraints)

    def set_params(self, eps, alpha):
        self.eps.value = float(eps) * self.scaling.eps
        self.alpha.value = float(alpha)
        self.one_minus_alpha.value = 1.0 - float(alpha)


def formulation(prob):
    """The (cached) CvxFormulation of ``prob``'s structure, parameters set to its values."""
    key = ("cvxpy", prob.alpha > 0, prob.alpha < 1)
    form = prob._cache.get(key)
    if form is None:
        form = prob._cache[key] = CvxFormulation(prob, clean=key[1], adversarial=key[2])
    form.set_params(prob.eps, prob.alpha)
    return form


def _solver_report(solver, raw):
    """(primal objective, dual objective, iterations) from the solver's raw output."""
    if solver == "ECOS":
        info = raw["info"]
        return info["pcost"], info["dcost"], int(info["iter"])
    if solver == "CLARABEL":
        return raw.obj_val, raw.obj_val_dual, int(raw.iterations)
    if solver == "SCS":
        info = raw["info"]
        return info["pobj"], info["dobj"], int(info["iter"])
    return None, None, None  # pragma: no cover - SOLVERS is closed


_ADVICE = {
    "infeasible": "the constraints on the coefficients cannot all hold; check `constraints`",
    "unbounded": "the objective is unbounded below or has no minimiser (for binomial: "
                 "classes separable with a margin larger than eps); use eps > 0, a penalty "
                 "or bound constraints",
    "user_limit": "the solver hit its iteration limit; raise max_iter or try another solver "
                  "(solver='CLARABEL', 'ECOS' or 'SCS')",
    "solver_error": "the solver failed numerically; try solver='CLARABEL' or 'SCS', or "
                    "standardise X",
}


def _certified(certificate, tol):
    """Accept a solver's 'optimal_inaccurate' when our own certificate bounds the error.

    Interior-point solvers (ECOS especially) often stop a few multiples short of a tight
    tolerance and report 'optimal_inaccurate' although the point is accurate; the status
    is kept in the Result, and a warning is raised only if the suboptimality bound (true
    objective at the returned point minus the solver's dual bound) exceeds
    max(1000 * tol, 1e-6) relative to the objective, or is negative beyond a tenth of
    that: a dual bound above the objective at a feasible point is no bound (the dual
    iterate is infeasible; the bound's error is at least as large), so a clearly negative
    one confirms nothing. (Taken as |bound|, an ECOS "optimal" Huber point 3.2e-5 above
    the optimum passed with a bound of -1.34 at an objective of 2.4e5, limit 2.4, and a
    Clarabel "optimal_inaccurate" Poisson point 1.7e-4 above it with a bound of -3.2e-6,
    limit 1.8e-5; Clarabel's point on that Huber problem, 1e-11 above the optimum, has
    a bound of -0.054 and stays confirmed.)
    """
    bound = certificate.suboptimality_bound
    if bound is None or not np.isfinite(bound):
        return False
    limit = max(1e3 * tol, 1e-6) * (1.0 + abs(certificate.objective_numpy))
    return -0.1 * limit <= bound <= limit


def check_solver(solver, installed=True):
    """The solver name in upper case, validated (and installed); raise otherwise.

    ``installed=False`` checks the name only: the fast path validates its ``solver``
    argument without paying for cvxpy's installed-solver scan (a few ms per call).

    Raises
    ------
    ValueError
        For anything that is not one of ``SOLVERS`` (case-insensitive).
    SolverError
        With status "not_installed" when cvxpy cannot find the solver.
    """
    if not isinstance(solver, str) or solver.upper() not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)} (case-insensitive), "
                         f"got {solver!r}")
    solver = solver.upper()
    if installed and solver not in installed_solvers():
        raise SolverError(f"solver {solver} is not installed; pip install "
                          f"{solver.lower()} or choose one of {list(installed_solvers())}",
                          status="not_installed", solver=solver)
    return solver


_INSTALLED = {}


def installed_solvers():
    """cvxpy's installed solvers, asked once per process: its scan imports and probes
    every solver interface, 3-8 ms a call, a tenth to a fifth of a small problem's
    solve (n = 100, d = 5: 40 ms). Kept per ``cp.installed_solvers`` function, so that a
    replaced one (a test's stand-in) is asked afresh."""
    scan = cp.installed_solvers
    if scan not in _INSTALLED:
        _INSTALLED[scan] = tuple(scan())
    return _INSTALLED[scan]


def solve_formulation(form, objective, solver="ECOS", tol=1e-8, max_iter=None, verbose=False,
                      prob=None, **result_fields):
    """Solve a built formulation and return a certified Result.

    Shared by every cvxpy program of the package (the adversarial problem, the
    penalised-likelihood twin). ``form`` has ``problem`` (a cp.Problem, parameters set),
    ``beta`` and ``intercept`` (cvxpy Variables, intercept None without one) and
    ``scaling`` (the ``Scaling`` from the variables to the original (beta, b) and
    objective); ``objective(coef, intercept)`` recomputes the objective in numpy
    for the certificate; ``prob``, an AdversarialProblem, turns on its failure
    diagnostics (separability, Poisson zeros); ``result_fields`` (eps, alpha, ...) go to
    the Result.
    """
    solver = check_solver(solver)

    def why():
        return "" if prob is None else explain_failure(prob)

    opts = _TOL_OPTIONS[solver](float(tol))
    if max_iter is not None:
        opts[_MAX_ITER_OPTION[solver]] = int(max_iter)
    problem = form.problem
    start = time.perf_counter()
    try:
        # The public get_problem_data / solve_via_data / unpack_results route is what
        # Problem.solve does internally; taking it gives us the solver's raw output
        # (primal and dual objectives for the certificate) for every solver alike.
        data, chain, inverse = problem.get_problem_data(solver=solver, solver_opts=opts,
                                                        verbose=verbose)
        raw = chain.solve_via_data(problem, data, warm_start=False, verbose=verbose,
                                   solver_opts=opts)
        with warnings.catch_warnings():  # cvxpy's generic warning; we certify below
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.unpack_results(raw, chain, inverse)
    except cp.error.SolverError as exc:
        reason = why()  # (non-empty where a program proves that no minimiser exists)
        raise SolverError(f"{solver} failed: {str(exc).rstrip('.')}; {_ADVICE['solver_error']}."
                          f"{reason}", status="unbounded" if reason else "solver_error",
                          solver=solver) from exc
    elapsed = time.perf_counter() - start
    status = problem.status
    base = status.replace("_inaccurate", "")
    if base == "infeasible" and prob is not None and prob.constraints is None:
        # without constraints on the coefficients the program always has a feasible
        # point (beta = 0, the shifts' epigraphs at any height): a numerical failure,
        # which ``with_fallback`` hands to another solver (Clarabel said 'infeasible' on
        # a clean gaussian fit with duplicated columns and a Group(p = inf) set, n = 965,
        # d = 45, that ECOS and the fast path solved)
        raise SolverError(f"{solver} returned status '{status}' on a program that has a "
                          f"feasible point (no constraints on the coefficients); "
                          f"{_ADVICE['solver_error']}.", status="solver_error",
                          solver=solver)
    if base != "optimal":
        advice = _ADVICE.get(base, _ADVICE["solver_error"])
        explained = "" if base == "infeasible" else why()
        raise SolverError(f"{solver} returned status '{status}': {advice}.{explained}",
                          status="unbounded" if explained else status, solver=solver)
    coef = form.beta.value
    intercept = float(form.intercept.value) if form.intercept is not None else 0.0
    if coef is None or not np.all(np.isfinite(coef)) or not np.isfinite(intercept):
        raise SolverError(f"{solver} reported '{status}' but returned no finite solution; "
                          f"{_ADVICE['solver_error']}", status=status, solver=solver)
    sc = form.scaling
    coef, intercept = sc.to_original(np.array(coef, dtype=np.float64), intercept)
    intercept = float(intercept) if form.intercept is not None else 0.0
    primal, dual, n_iter = _solver_report(solver, raw)
    # stopped by the iteration limit, not by its tolerances (SCS says 'optimal_inaccurate'
    # then): its bound confirms nothing (a Poisson fit 12x off its optimum at tol 1e-3
    # came back with a bound of 0.84 under the limit, the true excess 1.17, and no
    # warning), so it always warns (and "auto" solves again with the fast path)
    capped = status != "optimal" and max_iter is not None and n_iter is not None \
        and n_iter >= max_iter
    primal, dual = sc.objective(primal), sc.objective(dual)  # in the original units
    value = objective(coef, intercept)
    if prob is not None:
        check_finite(coef, intercept, value, status, "cvxpy", solver)
        check_minimiser_exists(prob, coef, intercept, "cvxpy", solver)
    certificate = Certificate(
        backend="cvxpy", solver=solver, status=status, objective_numpy=value,
        objective_solver=sc.objective(float(problem.value)), primal_objective=primal,
        dual_objective=dual, gap=None if primal is None else primal - dual,
        engine=result_fields.get("engine"))
    bound = certificate.suboptimality_bound
    if capped:
        warnings.warn(f"{solver} returned '{status}' at its iteration limit "
                      f"max_iter={max_iter}, which its certificate cannot confirm "
                      f"({certificate}); raise max_iter or try solver='CLARABEL'",
                      InaccurateSolutionWarning, stacklevel=4)
    elif status != "optimal" and not _certified(certificate, tol):
        warnings.warn(f"{solver} returned '{status}' and its certificate does not confirm "
                      f"the solution ({certificate}); try solver='CLARABEL' or a looser tol",
                      InaccurateSolutionWarning, stacklevel=4)
    elif bound is not None and np.isfinite(bound) and not _certified(certificate, tol):
        # an 'optimal' that the solver's own dual bound contradicts (Clarabel, 2.9e-5
        # above the optimum with a gap of 1.1e-4 on a Huber l1 problem with entries up
        # to 255): said, as for an inaccurate status
        warnings.warn(f"{solver} returned 'optimal' but its own dual bound leaves a gap "
                      f"of {bound:.2e} ({certificate}); try another solver or a tighter "
                      "tol", InaccurateSolutionWarning, stacklevel=4)
    return Result(coef=coef, intercept=intercept, objective=value, status=status,
                  backend="cvxpy", solver=solver, n_iter=n_iter, solve_time=elapsed,
                  certificate=certificate, **result_fields)


def solve_cvxpy(prob, solver="ECOS", tol=1e-8, max_iter=None, verbose=False):
    """Solve ``prob`` with cvxpy and a conic solver; return a certified Result.

    Parameters
    ----------
    prob : AdversarialProblem
    solver : {"ECOS", "CLARABEL", "SCS"}
    tol : float
        Passed to the solver as its absolute, relative-gap and feasibility tolerances.
    max_iter : int or None
        The solver's iteration limit (its default when None).

    Raises
    ------
    TypeError
        For X that is not a numpy array or a scipy.sparse matrix (a dask, CuPy, torch
        ... array): the message names the fast backend, which takes them.
    ValueError
        For a non-convex penalty (no DCP form; ``fc.solve`` uses the local linear
        approximation for it), or an unknown solver name.
    SolverError
        For any status other than optimal / optimal_inaccurate (the latter warns with
        ``InaccurateSolutionWarning``), naming the status and what to try.
    InaccurateSolutionWarning
        (a warning) where alpha is within ``NEAR_CLEAN`` of 1 (``near_clean``).
    """
    require_host(prob.X, "cvxpy")
    if prob.penalty is not None and not prob.penalty.convex:
        raise ValueError(f"penalty {prob.penalty!r} is non-convex and has no DCP form; "
                         "fc.solve solves it by the local linear approximation (fc.lla_solve)")
    solver = check_solver(solver, installed=False)
    check_poisson_zeros(prob, solver)
    if near_clean(prob):
        warnings.warn(f"alpha = {prob.alpha!r} is within {NEAR_CLEAN:g} of 1, where the "
                      f"interior-point solvers' answers are unreliable (measured up to "
                      f"54% above the optimum, with certificates that confirmed them); "
                      f"backend='fast' solves such problems exactly",
                      InaccurateSolutionWarning, stacklevel=3)
    form = formulation(prob)

    def attempt(name):
        return solve_formulation(form, lambda c, b: robust_objective(prob, c, b),
                                 solver=name, tol=tol, max_iter=max_iter, verbose=verbose,
                                 prob=prob, eps=prob.eps, alpha=prob.alpha,
                                 engine=engine_name(prob.X))

    return with_fallback(attempt, solver)


def near_clean(prob):
    """True where 0 < 1 - alpha <= ``NEAR_CLEAN`` with eps > 0: the adversarial term
    weighs little against the clean one, and the interior-point solvers fail there."""
    return prob.eps > 0 and 0.0 < 1.0 - prob.alpha <= NEAR_CLEAN


def with_fallback(attempt, solver):
    """``attempt(solver)``, and where it fails numerically the other installed solvers'.

    A numerical failure of one interior-point method on a well-posed problem (seen with
    ECOS and Clarabel together on exponential cones; ECOS alone on 1 in 25 small Poisson
    twins, ``penalized_fit``) is not a verdict on the problem: the other solvers of
    ``FALLBACK_ORDER`` are tried, with a ``SolverFallbackWarning``, and the first failure
    is raised if all fail. A verdict (infeasible, unbounded, an iteration limit) is kept.
    """
    try:
        return attempt(solver)
    except SolverError as exc:
        if exc.status != "solver_error":
            raise
        first = exc
    for other in FALLBACK_ORDER:
        if other == solver or other not in installed_solvers():
            continue
        try:
            result = attempt(other)
        except SolverError:
            continue
        warnings.warn(f"{solver} failed numerically ({first}); the problem was solved with "
                      f"{other} instead (its certificate is in the Result)",
                      SolverFallbackWarning, stacklevel=4)
        return result
    raise first
