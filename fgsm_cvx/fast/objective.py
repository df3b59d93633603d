"""The (smoothed) worst-case term and its derivatives in the predictor and the shift.

For a symmetric set the adversarial term of sample i is h = max(l(eta + t), l(eta - t))
(docs/theory.md §2). The first-order solver needs it smooth; each family's kink is smoothed
with a "Huberised" absolute value that is exact outside a band of width mu,

.. math::

    |x|_\\mu = x^2 / (2\\mu) + \\mu / 2 \\text{ for } |x| \\le \\mu,
    \\quad |x| \\text{ otherwise}

(an upper approximation, |x| <= |x|_mu <= |x| + mu/2), so only the few samples inside
the band are perturbed and continuation on mu ends at the exact solution:

* logistic, phi(z eta - t): smooth, used as is;
* hinge, pos(1 - z eta + t): pos(u) = (u + |u|)/2 -> (u + |u|_mu)/2;
* symmetric losses, rho(|y - eta| + t): |y - eta| -> |y - eta|_mu (rho increasing on
  [0, inf), so the result stays convex);
* Poisson: max(a, b) = (a + b)/2 + t |(a - b)/(2t)|, the last term a perspective whose
  argument (a - b)/(2t) = e^eta sinh(t)/t - y -> l'(eta) as t -> 0 is in gradient units,
  so the smoothing band is set by the derivative, not by t (at t = 0, h = l(eta)). This
  smoothing is not guaranteed convex; the exact objective is checked at every stage.

Every map takes the array namespace ``xp`` of the predictors (numpy by default; the
namespace of a dask, CuPy, torch or array API engine otherwise): one formula per family,
whatever the engine. The shift t is a host float.

An asymmetric set (a box) has two shifts, h = max(l(eta + t_up), l(eta - t_dn));
``interval_terms`` evaluates it as the symmetric term at the interval's midpoint.
"""

from __future__ import annotations

import numpy as np

from ..families import Binomial, Gaussian, Hinge, Huber, Poisson, _SymmetricFamily


def needs_smoothing(family):
    """True when the worst-case term has kinks (everything but the logistic margin form)."""
    return not isinstance(family, Binomial)


def huber_abs(x, mu, xp=np):
    """(|x|_mu, d|x|_mu/dx); mu = 0 gives |x| and sign(x).

    .. math:: |x|_\\mu = x^2 / (2\\mu) + \\mu / 2 \\ (|x| \\le \\mu), \\quad |x| \\ \\text{else},

    computed as |x| + max(mu - |x|, 0)^2 / (2 mu) (inside the band
    |x| + (mu - |x|)^2 / (2 mu) = x^2 / (2 mu) + mu / 2) with the derivative
    clip(x / mu, -1, 1): fewer passes over the samples than selecting between the two
    pieces (1.5x faster at n = 2e4 and 1e5).
    """
    ax = xp.abs(x)
    if mu == 0.0:
        return ax, xp.sign(x)
    gap = xp.maximum(mu - ax, 0.0)
    return ax + gap * gap * (0.5 / mu), xp.clip(x * (1.0 / mu), -1.0, 1.0)


def adversarial_terms(family, y, eta, t, mu, grad=True, xp=np):
    """h_i, and with ``grad`` its derivatives dh/deta_i and dh/dt, for the shift t >= 0.

    ``y`` and ``eta`` are arrays of the namespace ``xp`` (the family's internal coding of
    y); the derivatives in t are per sample (the caller takes their weighted sum).
    """
    if isinstance(family, Binomial):
        z = family.signed_label(y)
        if xp is np:
            return _logistic_terms_inplace(z, eta, t, grad)
        m = z * eta - t
        e = xp.exp(-xp.abs(m))
        value = xp.maximum(-m, 0.0) + xp.log1p(e)  # log(1 + e^{-m})
        if not grad:
            return value
        # phi' = -sigma(-m) = -e^{-max(m, 0)} / (1 + e): e / (1 + e) for m > 0, 1 / (1 + e)
        # else, with no overflow and no select (xp.where on a random mask costs more than
        # the exponential)
        s = xp.exp(-xp.maximum(m, 0.0)) / (1.0 + e)
        return value, -(z * s), s  # dm/deta = z, dm/dt = -1
    if isinstance(family, Hinge):
        z = family.signed_label(y)
        if xp is np and mu > 0.0:
            return _hinge_terms_inplace(z, eta, t, mu, grad)
        z_eta = z * eta
        if mu == 0.0:
            u = (1.0 + t) - z_eta
            value = xp.maximum(u, 0.0)  # pos(u) = (u + |u|) / 2
            if not grad:
                return value
            dpos = 0.5 * (1.0 + xp.sign(u))
            return value, -z * dpos, dpos  # du/deta = -z, du/dt = 1
        # pos_mu(u) = (u + |u|_mu) / 2, u = 1 - z eta + t: 0 below the band, u above it
        # and (u + mu)^2 / (4 mu) inside (|u| <= mu). With v = clip((u + mu) / (2 mu), 0, 1),
        # its derivative, pos_mu(u) = mu v^2 + max(u - mu, 0) on all three pieces: fewer
        # passes over the samples than (u + |u|_mu) / 2 by ``huber_abs`` (at n = 1e4
        # 40 against 58 us with the derivatives, 34 against 45 without; each FISTA
        # iteration evaluates it twice)
        v = xp.clip(((1.0 + t + mu) - z_eta) * (0.5 / mu), 0.0, 1.0)
        value = mu * (v * v) + xp.maximum((1.0 + t - mu) - z_eta, 0.0)
        if not grad:
            return value
        return value, -(z * v), v  # du/deta = -z, du/dt = 1
    if isinstance(family, _SymmetricFamily):
        if xp is np and type(family) in (Gaussian, Huber):
            return _symmetric_terms_inplace(family, y, eta, t, mu, grad)
        ar, dar = huber_abs(y - eta, mu, xp)
        u = ar + t
        value = family.loss(u, 0.0, xp)  # rho(u) = l(u, 0)
        if not grad:
            return value
        drho = -family.grad(u, 0.0, xp)  # rho'(u) = -l'(u, 0)
        return value, -drho * dar, drho
    if isinstance(family, Poisson):
        # a, b = e^{eta +- t} - y (eta +- t): (a + b)/2 = e^eta cosh t - y eta and
        # x = (a - b)/(2t) = e^eta sinh(t)/t - y, written without the cancellation of a - b.
        if xp is np:
            return _poisson_terms_inplace(y, eta, t, mu, grad)
        e = xp.exp(eta)
        sinhc, dsinhc, _, ch, sh = _sinhc_derivatives(t)
        ax, dax = huber_abs(e * sinhc - y, mu, xp)
        value = e * ch - y * eta + t * ax
        if not grad:
            return value
        return value, e * ch - y + dax * e * sh, e * sh + ax + t * dax * e * dsinhc
    raise NotImplementedError(f"the fast backend has no smoothed form for {family!r}; "
                              "use backend='cvxpy'")


def _smooth_abs_inplace(ax, mu):
    """|x| -> |x|_mu in place (``huber_abs``): ax += max(mu - ax, 0)^2 / (2 mu)."""
    if mu > 0.0:
        gap = np.subtract(mu, ax)
        np.maximum(gap, 0.0, out=gap)
        gap *= gap
        gap *= 0.5 / mu
        ax += gap


def _smooth_slope_inplace(x, mu):
    """x -> d|x|_mu/dx in place (``huber_abs``): clip(x / mu, -1, 1), sign(x) at
    mu = 0."""
    if mu > 0.0:
        x *= 1.0 / mu
        np.clip(x, -1.0, 1.0, out=x)
    else:
        np.sign(x, out=x)


def _logistic_terms_inplace(z, eta, t, grad):
    """``adversarial_terms`` of the logistic margin form phi(m) = log(1 + e^{-m}),
    m = z eta - t, on numpy arrays: the same formulas with three to five n-vectors where
    the expressions make sixteen, and one exponential where they take two.

    phi(m) = max(-m, 0) + log1p(e), e = e^{-|m|}, and phi'(m) = -sigma(-m) with
    sigma(-m) = e^{-max(m, 0)} / (1 + e) = max(e, -sign(m)) / (1 + e): the numerator is e
    for m > 0 and 1 for m <= 0 (e = 1 at m = 0), a comparison where the expressions take
    a second exponential. At n = 1e5 the map with its derivatives took 2.6 ms, now 1.7
    (about a third of a logistic FISTA iteration's time went to it: it costs more than
    one X^T (X v) pass at d = 50), without them 1.5 -> 1.2 ms; the temporaries of 8 n
    bytes each cost a page fault per 4 kB where the allocator returns them to the system.
    """
    m = np.multiply(z, eta)
    m -= t
    e = np.abs(m)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e^{-|m|}, in (0, 1]
    value = np.log1p(e)
    if grad:
        s = np.sign(m)
        np.negative(s, out=s)
        np.maximum(s, e, out=s)  # e^{-max(m, 0)}
        e += 1.0
        s /= e  # sigma(-m)
    np.negative(m, out=m)
    np.maximum(m, 0.0, out=m)
    value += m
    if not grad:
        return value
    d_eta = np.multiply(z, s)
    np.negative(d_eta, out=d_eta)
    return value, d_eta, s  # dm/deta = z, dm/dt = -1


def _hinge_terms_inplace(z, eta, t, mu, grad):
    """``adversarial_terms`` of the smoothed hinge, pos_mu(u) = mu v^2 + max(u - mu, 0)
    with u = 1 - z eta + t and v = clip((u + mu) / (2 mu), 0, 1) its derivative, on numpy
    arrays (mu > 0): three n-vectors where the expressions make nine. At n = 1e4 the map
    with its derivatives took 80 us, now 65 (without them 69 -> 57); a hinge FISTA
    iteration evaluates it about twice, where its two products with X take about
    270 us at d = 50. (What is left is mostly clip and maximum against a scalar, 10-12
    us each where an arithmetic operation takes 3-4.)"""
    w = np.multiply(z, eta)  # z eta
    v = np.subtract(1.0 + t + mu, w)
    v *= 0.5 / mu
    np.clip(v, 0.0, 1.0, out=v)  # v = clip((u + mu) / (2 mu), 0, 1)
    np.subtract(1.0 + t - mu, w, out=w)
    np.maximum(w, 0.0, out=w)  # max(u - mu, 0)
    value = np.multiply(v, v)
    value *= mu
    value += w
    if not grad:
        return value
    np.multiply(z, v, out=w)
    np.negative(w, out=w)
    return value, w, v  # du/deta = -z, du/dt = 1


def _symmetric_terms_inplace(family, y, eta, t, mu, grad):
    """``adversarial_terms`` of the gaussian and Huber losses, rho(|y - eta|_mu + t), on
    numpy arrays: the same formulas with three or four n-vectors where the expressions
    make twelve to fourteen, and the derivative of |r|_mu only where it is asked for.

    With u = |r|_mu + t >= 0: gaussian rho(u) = u^2 / 2, rho'(u) = u; Huber (threshold
    M) with c = min(u, M): rho(u) = c (u - c / 2), rho'(u) = c (``families.Huber``);
    dh/deta = -rho'(u) d|r|_mu/dr (``huber_abs``), dh/dt = rho'(u).
    """
    r = np.subtract(y, eta)
    u = np.abs(r)
    _smooth_abs_inplace(u, mu)
    u += t
    threshold = getattr(family, "threshold", None)
    if threshold is None:
        value = np.multiply(u, u)
        value *= 0.5
        drho = u
    else:
        drho = np.minimum(u, threshold)
        value = np.multiply(drho, -0.5)
        value += u
        value *= drho
    if not grad:
        return value
    _smooth_slope_inplace(r, mu)
    r *= drho
    np.negative(r, out=r)
    return value, r, drho


def _logistic_second_inplace(z, eta, t, alpha):
    """``second_order_terms`` of the logistic margin form on numpy arrays, from
    ``_logistic_terms_inplace``'s map: with s = sigma(-m), m = z eta - t,
    (H, H_e, H_t) = (phi(m), -z s, s) and phi''(m) = s (1 - s) = H_ee = H_tt = -z H_et
    (the same array for H_ee and H_tt); alpha > 0 scales them by 1 - alpha and adds the
    clean term's alpha (phi(z eta), -z s_0, s_0 (1 - s_0)) to H, H_e, H_ee. At n = 6553
    (a Newton pass's block at d = 20) 181 -> 132 us."""
    H, H_e, H_t = _logistic_terms_inplace(z, eta, t, True)
    H_ee = np.subtract(1.0, H_t)
    H_ee *= H_t
    H_et = np.multiply(z, H_ee)
    np.negative(H_et, out=H_et)
    if alpha == 0.0:
        return H, H_e, H_t, H_ee, H_et, H_ee
    for v in (H, H_e, H_t, H_ee, H_et):
        v *= 1.0 - alpha
    H_tt = H_ee.copy()
    clean, d_clean, s0 = _logistic_terms_inplace(z, eta, 0.0, True)
    clean *= alpha
    H += clean
    d_clean *= alpha
    H_e += d_clean
    s0_1 = np.subtract(1.0, s0)
    s0_1 *= s0
    s0_1 *= alpha
    H_ee += s0_1
    return H, H_e, H_t, H_ee, H_et, H_tt


def _poisson_terms_inplace(y, eta, t, mu, grad):
    """``adversarial_terms`` of the Poisson loss on numpy arrays: the same formulas with
    four to six n-vectors where the expressions make about twenty-five.

    With e = e^eta, s(t) = sinh(t) / t and x = e s - y: h = e cosh t - y eta + t |x|_mu,
    dh/deta = e cosh t - y + |x|_mu' e sinh t (t s = sinh t) and
    dh/dt = e sinh t + |x|_mu + t |x|_mu' e s'(t).
    """
    e = np.exp(eta)
    sinhc, dsinhc, _, ch, sh = _sinhc_derivatives(t)
    x = np.multiply(e, sinhc)
    x -= y
    ax = np.abs(x)
    _smooth_abs_inplace(ax, mu)
    value = _poisson_value(e, y, eta, t, ch, ax)
    if not grad:
        return value
    _smooth_slope_inplace(x, mu)
    x *= e  # |x|_mu' e
    d_t = np.multiply(x, t * dsinhc)
    d_t += ax
    tmp = np.multiply(e, sh)
    d_t += tmp
    x *= sh
    np.multiply(e, ch, out=tmp)
    x += tmp
    x -= y
    return value, x, d_t


def _poisson_value(e, y, eta, t, ch, A):
    """e cosh t - y eta + t A, the Poisson term (e = e^eta) with A its |x| part (|x|_mu,
    or a piece's s x: ``second_order_terms``), with one temporary."""
    value = np.multiply(e, ch)
    tmp = np.multiply(y, eta)
    value -= tmp
    np.multiply(A, t, out=tmp)
    value += tmp
    return value


def has_second_order(family):
    """True for the families whose (smoothed) terms ``second_order_terms`` differentiates
    twice: logistic and the symmetric losses (gaussian, Huber).

    Not hinge: its smoothed term is linear outside the band, so the Hessian comes from the
    few samples inside it and is (nearly) singular; Newton measured slower than FISTA."""
    return isinstance(family, (Binomial, Poisson, _SymmetricFamily))


def _rho_curvature(family, u, xp):
    """rho''(u) of a symmetric loss rho(u) = l(u, 0): 1 (gaussian), 1{|u| <= M} (Huber)."""
    threshold = getattr(family, "threshold", None)
    if threshold is None:
        return xp.ones_like(u)
    return xp.astype(xp.abs(u) <= threshold, u.dtype)


def second_order_terms(family, y, eta, t, mu, alpha, xp=np, ref=None):
    """The per-sample term H = alpha l(eta) + (1 - alpha) h_mu(eta, t) and its first and
    second derivatives in (eta, t): (H, H_e, H_t, H_ee, H_et, H_tt).

    ``ref`` (at mu = 0 only; ``kinks.py``): the reference signs s of the kink
    coordinates, r = y - eta (symmetric) or x (Poisson), |.| -> s (.): each sample enters
    by the smooth piece of its side (rho(s r + t); Poisson's endpoint
    e^eta cosh t - y eta + t s x), extended past the kink if it crossed, and a sample
    pinned at its kink (s = 0) by the smooth part there (rho(t); e^eta cosh t - y eta).

    Used by the Newton step (``newton.py``), whose Hessian in (beta, b, t) is the sum over
    samples of J_i^T [[H_ee, H_et], [H_et, H_tt]] J_i with J_i the Jacobian of
    (eta_i, t). By the chain rule, for a term f(u) with u = u(eta, t):
    f_ee = f'' u_e^2 + f' u_ee, f_et = f'' u_e u_t, f_tt = f'' u_t^2 (u_et = u_tt = 0 here).

    * logistic: phi(m), m = z eta - t, phi'' = sigma(m) sigma(-m); the clean term phi(z eta);
    * symmetric: rho(a + t), a = |y - eta|_mu: H_ee = rho'' a'^2 + rho' a'', H_et = -rho'' a',
      H_tt = rho'', with a' = d|r|_mu/dr and a'' = 1{|r| <= mu} / mu; the clean term rho(|r|)
      has curvature rho''(|r|);
    * Poisson: e^eta cosh t - y eta + t A(x), A = |.|_mu, x = e^eta s(t) - y with
      s(t) = sinh(t) / t (``adversarial_terms``). With x_e = x_ee = e^eta s,
      x_t = x_et = e^eta s', x_tt = e^eta s'' and the product rule on t A(x):
      H_ee = e^eta cosh t + t (A'' x_e^2 + A' x_ee),
      H_et = e^eta sinh t + A' x_e + t (A'' x_e x_t + A' x_et),
      H_tt = e^eta cosh t + 2 A' x_t + t (A'' x_t^2 + A' x_tt);
      at t = 0 all three are e^eta, the clean curvature. The clean term adds e^eta to H_ee.
    """
    a = alpha
    if isinstance(family, Binomial):
        z = family.signed_label(y)
        if xp is np:
            return _logistic_second_inplace(z, eta, t, a)

        def margin(m):  # phi(m), phi'(m), phi''(m) for phi(m) = log(1 + e^{-m})
            e = xp.exp(-xp.abs(m))
            value = xp.maximum(-m, 0.0) + xp.log1p(e)
            s_neg = xp.exp(-xp.maximum(m, 0.0)) / (1.0 + e)  # sigma(-m) (``adversarial_terms``)
            return value, -s_neg, s_neg * (1.0 - s_neg)

        v, d1, d2 = margin(z * eta - t)
        H, H_e, H_t, H_ee, H_et, H_tt = (1 - a) * v, (1 - a) * z * d1, -(1 - a) * d1, \
            (1 - a) * d2, -(1 - a) * z * d2, (1 - a) * d2
        if a > 0.0:
            cv, c1, c2 = margin(z * eta)
            H, H_e, H_ee = H + a * cv, H_e + a * z * c1, H_ee + a * c2
        return H, H_e, H_t, H_ee, H_et, H_tt
    if isinstance(family, _SymmetricFamily):
        r = y - eta
        # the pieces of the reference signs (mu = 0), else the smoothed |r|
        ar, dar = huber_abs(r, mu, xp) if ref is None else (ref * r, ref)
        u = ar + t
        rho1 = -family.grad(u, 0.0, xp)  # rho'(u) = -l'(u, 0)
        rho2 = _rho_curvature(family, u, xp)
        inside = xp.astype(xp.abs(r) <= mu, r.dtype) / mu if mu > 0 else 0.0 * r
        H = (1 - a) * family.loss(u, 0.0, xp)
        H_e, H_t = -(1 - a) * rho1 * dar, (1 - a) * rho1  # dr/deta = -1
        H_ee = (1 - a) * (rho2 * dar * dar + rho1 * inside)
        H_et, H_tt = (1 - a) * rho2 * dar, (1 - a) * rho2  # d(a)/deta = -dar
        H_et = -H_et
        if a > 0.0:
            H = H + a * family.loss(y, eta, xp)
            H_e = H_e + a * family.grad(y, eta, xp)
            H_ee = H_ee + a * _rho_curvature(family, xp.abs(r), xp)
        return H, H_e, H_t, H_ee, H_et, H_tt
    if isinstance(family, Poisson):
        if xp is np:
            return _poisson_second_inplace(y, eta, t, mu, a, ref)
        e = xp.exp(eta)
        s, s1, s2, ch, sh = _sinhc_derivatives(t)
        x_e, x_t = e * s, e * s1  # = x_ee, x_et
        # the pieces of the reference signs (mu = 0): |x| -> s x, else the smoothed |x|
        A, A1 = huber_abs(x_e - y, mu, xp) if ref is None else (ref * (x_e - y), ref)
        A2 = xp.astype(xp.abs(x_e - y) <= mu, e.dtype) / mu if mu > 0 else 0.0 * e
        H = (1 - a) * (e * ch - y * eta + t * A)
        H_e = (1 - a) * (e * ch - y + A1 * e * sh)  # t s = sinh t
        H_t = (1 - a) * (e * sh + A + t * A1 * x_t)
        H_ee = (1 - a) * (e * ch + t * (A2 * x_e * x_e + A1 * x_e))
        H_et = (1 - a) * (e * sh + A1 * x_e + t * (A2 * x_e * x_t + A1 * x_t))
        H_tt = (1 - a) * (e * ch + 2.0 * A1 * x_t + t * (A2 * x_t * x_t + A1 * e * s2))
        if a > 0.0:  # the clean term e^eta - y eta
            H, H_e, H_ee = H + a * (e - y * eta), H_e + a * (e - y), H_ee + a * e
        return H, H_e, H_t, H_ee, H_et, H_tt
    raise NotImplementedError(f"no second-order terms for {family!r}")


def _poisson_second_inplace(y, eta, t, mu, alpha, ref):
    """``second_order_terms`` of the Poisson loss on numpy arrays: the same terms with
    about a dozen n-vectors where the expressions make about forty.

    With e = e^eta, s, s', s'' the derivatives of s(t) = sinh(t) / t, x = e s - y,
    A = |x|_mu, A' and A'' its derivatives (``ref`` at mu = 0: A = ref x, A' = ref,
    A'' = 0) and P = A'' e^2, the formulas of ``second_order_terms`` with x_e = e s,
    x_t = e s' collect e:
    H = e cosh t - y eta + t A, H_e = e (cosh t + A' sinh t) - y,
    H_t = e (sinh t + t s' A') + A, H_ee = e (cosh t + t s A') + t s^2 P,
    H_et = e (sinh t + (s + t s') A') + t s s' P,
    H_tt = e (cosh t + (2 s' + t s'') A') + t s'^2 P;
    alpha > 0 scales them by 1 - alpha and adds the clean term's alpha (e - y eta, e - y,
    e) to H, H_e, H_ee.
    """
    e = np.exp(eta)
    s, s1, s2, ch, sh = _sinhc_derivatives(t)
    x = np.multiply(e, s)
    x -= y
    P = None  # A'' e^2 with A'' = 1{|x| <= mu} / mu: zero but inside the smoothing band
    if mu > 0.0:
        # (the indicator first: outside the band e^2 may overflow, and inf * 0 is NaN)
        P = (np.abs(x) <= mu).astype(np.float64)
        P *= 1.0 / mu
        P *= e
        P *= e
    if ref is not None:
        slope = np.asarray(ref, dtype=np.float64)
        A = np.multiply(slope, x)
    else:
        A = np.abs(x)
        _smooth_abs_inplace(A, mu)
        slope = x  # (x is not needed past here)
        _smooth_slope_inplace(slope, mu)

    def collect(c0, c1, c2=None):  # e (c0 + c1 A') [+ c2 P]
        out = np.multiply(slope, c1)
        out += c0
        out *= e
        if c2 is not None and P is not None:
            out += c2 * P
        return out

    H = _poisson_value(e, y, eta, t, ch, A)
    H_e = collect(ch, sh)
    H_e -= y
    H_t = collect(sh, t * s1)
    H_t += A
    H_ee = collect(ch, t * s, t * s * s)
    H_et = collect(sh, s + t * s1, t * s * s1)
    H_tt = collect(ch, 2.0 * s1 + t * s2, t * s1 * s1)
    if alpha > 0.0:  # the clean term e^eta - y eta
        for v in (H, H_e, H_t, H_ee, H_et, H_tt):
            v *= 1.0 - alpha
        clean = np.multiply(e, alpha)
        H_ee += clean
        H_e += clean
        H_e -= alpha * y
        H += clean
        clean_y = np.multiply(y, eta)
        clean_y *= alpha
        H -= clean_y
    return H, H_e, H_t, H_ee, H_et, H_tt


def _sinhc_derivatives(t):
    """(s, s', s'', cosh t, sinh t) for s(t) = sinh(t) / t at the host float t >= 0, by
    Taylor series below 1e-2 (the closed forms cancel there):
    s = 1 + t^2/6 + t^4/120, s' = t/3 + t^3/30, s'' = 1/3 + t^2/10 (errors O(t^6), O(t^5),
    O(t^4): below 1e-8 relative)."""
    with np.errstate(over="ignore"):  # cosh t = inf is the honest value
        ch, sh = float(np.cosh(t)), float(np.sinh(t))
    if t < 1e-2:
        t2 = t * t
        return 1.0 + t2 / 6.0 + t2 * t2 / 120.0, t / 3.0 + t * t2 / 30.0, \
            1.0 / 3.0 + t2 / 10.0, ch, sh
    # (products, not t**3: a Python float's power raises OverflowError past 1e103)
    t3 = t * t * t
    return sh / t, (t * ch - sh) / (t * t), (t * t * sh - 2.0 * t * ch + 2.0 * sh) / t3, \
        ch, sh


def interval_terms(family, y, eta, t_up, t_dn, mu, grad=True, xp=np):
    """The worst case over an asymmetric interval, h = max(l(eta + t_up), l(eta - t_dn)),
    smoothed, and with ``grad`` its derivatives dh/deta, dh/dt_up, dh/dt_dn per sample.

    The interval [eta - t_dn, eta + t_up] is the symmetric interval of half-width
    T = (t_up + t_dn)/2 around its midpoint c = eta + (t_up - t_dn)/2, so

    .. math:: h(\\eta, t_{up}, t_{dn}) = h_{sym}(c, T),

    h_sym the single-shift term of ``adversarial_terms`` (same smoothing: exact outside
    its band of width mu, convex where it was, since c and T are affine). Per family:

    * logistic, hinge: the margin z c - T = z eta - t_z with t_z = t_dn for z = +1 and
      t_up for z = -1 (the shift that lowers the margin), formed up to rounding at the
      scale of max(|eta|, t_up, t_dn);
    * symmetric losses: rho(|y - c|_mu + T) = rho(|r + (t_dn - t_up)/2|_mu + (t_up + t_dn)/2),
      r = y - eta, since max over delta in [-t_dn, t_up] of |r - delta| is
      max(r + t_dn, t_up - r) = |r + (t_dn - t_up)/2| + (t_up + t_dn)/2;
    * Poisson: the perspective form of ``adversarial_terms`` at (c, T), i.e. the
      endpoint values a, b = l(c +- T) combined as (a + b)/2 + |a - b|/2 without forming
      a - b.

    By the chain rule (dc/deta = 1, dc/dt_up = -dc/dt_dn = 1/2, dT/dt_up = dT/dt_dn = 1/2),

    .. math::

        \\partial_\\eta h = \\partial_c h_{sym}, \\quad
        \\partial_{t_{up}} h = (\\partial_c h_{sym} + \\partial_T h_{sym}) / 2, \\quad
        \\partial_{t_{dn}} h = (\\partial_T h_{sym} - \\partial_c h_{sym}) / 2

    (for the margin families these are exactly 0 on the shift that does not lower the
    margin). ``t_up`` and ``t_dn`` are host floats.
    """
    half = 0.5 * (t_up - t_dn)  # c = eta + half
    width = 0.5 * (t_up + t_dn)  # T
    out = adversarial_terms(family, y, eta + half, width, mu, grad=grad, xp=xp)
    if not grad:
        return out
    value, d_c, d_T = out
    return value, d_c, 0.5 * (d_c + d_T), 0.5 * (d_T - d_c)


def _clean_second_order(family, y, eta, mu, xp):
    """The clean term l(eta) and its first two derivatives in eta (the clean part of
    ``second_order_terms``, which shares its exponential with the shifted term there):
    Poisson e^eta - y eta, e^eta - y, e^eta; logistic phi(z eta) with phi'' = s (1 - s),
    s = sigma(-z eta) (``adversarial_terms`` at t = 0); the others by
    ``second_order_terms`` at alpha = 1."""
    if isinstance(family, Poisson):
        e = xp.exp(eta)
        return e - y * eta, e - y, e
    if isinstance(family, Binomial):
        value, d_eta, s = adversarial_terms(family, y, eta, 0.0, mu, xp=xp)
        return value, d_eta, s * (1.0 - s)
    C, C_e, _, C_ee, _, _ = second_order_terms(family, y, eta, 0.0, mu, 1.0, xp)
    return C, C_e, C_ee


def interval_second_order_terms(family, y, eta, t_up, t_dn, mu, alpha, xp=np):
    """The per-sample term H = alpha l(eta) + (1 - alpha) h_mu(eta, t_up, t_dn) of a box
    (``interval_terms``) and its derivatives in (eta, t) with t = (t_up, t_dn):
    (H, H_e, (H_u, H_d), H_ee, (H_eu, H_ed), ((H_uu, H_ud), (H_ud, H_dd))).

    h = A(c, T) at the midpoint c = eta + (t_up - t_dn)/2 and half-width
    T = (t_up + t_dn)/2, A the single-shift term (``second_order_terms`` at alpha = 0).
    The map (eta, t_up, t_dn) -> (c, T) is linear with Jacobian rows
    dc = (1, 1/2, -1/2) and dT = (0, 1/2, 1/2), so the second derivatives are
    J^T [[A_cc, A_cT], [A_cT, A_TT]] J:

    .. math::

        h_{ee} = A_{cc}, \\quad h_{eu} = (A_{cc} + A_{cT}) / 2, \\quad
        h_{ed} = (A_{cT} - A_{cc}) / 2,

        h_{uu} = (A_{cc} + 2 A_{cT} + A_{TT}) / 4, \\quad
        h_{ud} = (A_{TT} - A_{cc}) / 4, \\quad
        h_{dd} = (A_{cc} - 2 A_{cT} + A_{TT}) / 4;

    the clean term alpha l(eta) adds to H, H_e and H_ee only (at eta, not c).
    """
    a = alpha
    half, width = 0.5 * (t_up - t_dn), 0.5 * (t_up + t_dn)
    A, A_c, A_T, A_cc, A_cT, A_TT = second_order_terms(family, y, eta + half, width, mu,
                                                       0.0, xp)
    k = 1.0 - a  # (new arrays below: the in-place maps may share H_ee's and H_tt's)
    H, H_e, H_ee = k * A, k * A_c, k * A_cc
    H_u, H_d = (0.5 * k) * (A_c + A_T), (0.5 * k) * (A_T - A_c)
    H_eu, H_ed = (0.5 * k) * (A_cc + A_cT), (0.5 * k) * (A_cT - A_cc)
    H_uu = (0.25 * k) * (A_cc + 2.0 * A_cT + A_TT)
    H_ud = (0.25 * k) * (A_TT - A_cc)
    H_dd = (0.25 * k) * (A_cc - 2.0 * A_cT + A_TT)
    if a > 0.0:  # the clean term at eta
        C, C_e, C_ee = _clean_second_order(family, y, eta, mu, xp)
        H, H_e, H_ee = H + a * C, H_e + a * C_e, H_ee + a * C_ee
    return H, H_e, (H_u, H_d), H_ee, (H_eu, H_ed), ((H_uu, H_ud), (H_ud, H_dd))


def worst_case_terms(family, y, eta, shift, mu, grad=True, xp=np):
    """``adversarial_terms`` for a single shift t (a float), ``interval_terms`` for a pair
    (t_up, t_dn): (h, dh/deta, dh/dt) or (h, dh/deta, dh/dt_up, dh/dt_dn) with ``grad``."""
    if isinstance(shift, tuple):
        return interval_terms(family, y, eta, *shift, mu, grad=grad, xp=xp)
    return adversarial_terms(family, y, eta, shift, mu, grad=grad, xp=xp)
