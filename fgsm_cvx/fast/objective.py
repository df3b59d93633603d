"""The (smoothed) worst-case term and its derivatives in the predictor and the shift.

For a symmetric set the adversarial term of sample i is h = max(l(eta + t), l(eta - t))
(THEORY.md §2). The first-order solver needs it smooth; each family's kink is smoothed
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
* other losses (Poisson): max(a, b) = (a + b)/2 + t |(a - b)/(2t)|, the last term a
  perspective whose argument (a - b)/(2t) -> l'(eta) as t -> 0 is in gradient units, so
  the smoothing band shrinks with the derivative, not with t (at t = 0 h = l(eta)).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..families import Binomial, Hinge, Poisson, _MarginFamily, _SymmetricFamily


def needs_smoothing(family):
    """True when the worst-case term has kinks (everything but the logistic margin form)."""
    return not isinstance(family, Binomial)


def huber_abs(x, mu):
    """(|x|_mu, d|x|_mu/dx); mu = 0 gives |x| and sign(x)."""
    ax = np.abs(x)
    if mu == 0.0:
        return ax, np.sign(x)
    inside = ax <= mu
    value = np.where(inside, 0.5 * x * x / mu + 0.5 * mu, ax)
    return value, np.where(inside, x / mu, np.sign(x))


def adversarial_terms(family, y, eta, t, mu):
    """h_i and its derivatives dh/deta_i and dh/dt for the symmetric shift t >= 0."""
    if isinstance(family, _MarginFamily):
        z = family.signed_label(y)
        m = z * eta - t
        if isinstance(family, Hinge):
            u = 1.0 - m
            au, dau = huber_abs(u, mu)
            value, dphi = 0.5 * (u + au), -0.5 * (1.0 + dau)  # pos(u) = (u + |u|) / 2
        elif isinstance(family, Binomial):
            value, dphi = np.logaddexp(0.0, -m), -expit(-m)  # log(1 + e^{-m})
        else:  # pragma: no cover - every margin family is listed above
            raise NotImplementedError(type(family).__name__)
        return value, z * dphi, -dphi  # dm/deta = z, dm/dt = -1
    if isinstance(family, _SymmetricFamily):
        r = y - eta
        ar, dar = huber_abs(r, mu)
        u = ar + t
        value = family.loss(u, 0.0)  # rho(u) = l(u, 0)
        drho = -family.grad(u, 0.0)  # rho'(u) = -l'(u, 0)
        return value, -drho * dar, drho
    if isinstance(family, Poisson):
        # a, b = e^{eta +- t} - y (eta +- t): (a + b)/2 = e^eta cosh t - y eta and
        # x = (a - b)/(2t) = e^eta sinh(t)/t - y, written without the cancellation of a - b.
        e = np.exp(eta)
        ch, sh = np.cosh(t), np.sinh(t)
        sinhc = sh / t if t > 1e-4 else 1.0 + t * t / 6.0
        dsinhc = (t * ch - sh) / (t * t) if t > 1e-4 else t / 3.0  # d/dt sinh(t)/t
        x = e * sinhc - y
        ax, dax = huber_abs(x, mu)
        value = e * ch - y * eta + t * ax
        return value, e * ch - y + dax * e * sh, e * sh + ax + t * dax * e * dsinhc
    # generic: (a + b)/2 + t |x|_mu with x = (a - b) / (2t)
    a, b = family.loss(y, eta + t), family.loss(y, eta - t)
    ga, gb = family.grad(y, eta + t), family.grad(y, eta - t)
    if t == 0.0:
        x = ga  # the limit of (a - b)/(2t): l'(eta)
        ax, dax = huber_abs(x, mu)
        return a, ga, ax + dax * (ga - x)
    x = (a - b) / (2.0 * t)
    ax, dax = huber_abs(x, mu)
    value = 0.5 * (a + b) + t * ax
    d_eta = 0.5 * (ga + gb) + 0.5 * dax * (ga - gb)
    d_t = 0.5 * (ga - gb) + ax + dax * (0.5 * (ga + gb) - x)
    return value, d_eta, d_t
