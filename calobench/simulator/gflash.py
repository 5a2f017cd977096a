"""The published GFlash parametrization of electromagnetic showers.

Formulas and constants from Grindhammer, Rudowicz & Peters, NIM A290 (1990) 469 and Grindhammer &
Peters, arXiv hep-ex/0001020 (the defaults Geant4's GFlash ships for homogeneous media). Energies
in GeV inside the formulas, depths in radiation lengths X0, radii in Moliere radii R_M.

* longitudinal: per shower a Gamma density in depth with correlated log-normal depth of maximum T
  and shape alpha (:func:`longitudinal_moments`, :func:`sample_longitudinal`);
* radial: core + tail, ``f(r) = p 2 r Rc^2/(r^2+Rc^2)^2 + (1-p) 2 r Rt^2/(r^2+Rt^2)^2`` with
  Rc, Rt, p functions of tau = t/T (:func:`radial_parameters`);
* fluctuations: ``N_spot = 93 ln(Z) E^0.876`` energy spots with their own longitudinal Gamma
  profile (:func:`spot_count`, :func:`spot_profile`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Smallest ln(E/Ec) at which the fits are evaluated. Below it (E below ~12 Ec, e.g. the soft
#: electromagnetic part of a low-energy pion) the parameters of ln(E/Ec) = 2.5 are used: the
#: published sigma(ln T) = 1/(-1.4 + 1.26 ln y) diverges at ln y = 1.1.
MIN_LN_Y = 2.5
#: Smallest shape parameter alpha (and alpha_spot) accepted; draws below it are redrawn so that
#: beta = (alpha - 1)/T stays positive.
MIN_ALPHA = 1.1


def critical_energy(x0_g_cm2: float, z: float, a: float) -> float:
    """Critical energy in MeV: ``Ec = 2.66 (X0 Z / A)^1.1`` (Grindhammer & Peters)."""
    return 2.66 * (x0_g_cm2 * z / a) ** 1.1


def moliere_radius(x0: float, ec_mev: float) -> float:
    """Moliere radius in the unit of ``x0``: ``R_M = X0 * 21 MeV / Ec``."""
    return x0 * 21.0 / ec_mev


def critical_energy_from_moliere(x0: float, moliere: float) -> float:
    """The critical energy (MeV) that makes ``R_M = X0 * 21 MeV / Ec`` hold."""
    return 21.0 * x0 / moliere


@dataclass(frozen=True)
class LongitudinalMoments:
    """Means, spreads and correlation of (ln T, ln alpha) at given energies (arrays)."""

    mean_ln_t: np.ndarray
    mean_ln_alpha: np.ndarray
    sigma_ln_t: np.ndarray
    sigma_ln_alpha: np.ndarray
    rho: np.ndarray


def longitudinal_moments(energy_mev: np.ndarray, ec_mev: float, z: float) -> LongitudinalMoments:
    """GFlash homogeneous-media fits (hep-ex/0001020, eqs. for <ln T>, <ln alpha>, sigmas, rho)."""
    ln_y = np.maximum(np.log(np.maximum(np.asarray(energy_mev, dtype=np.float64), 1e-300) / ec_mev), MIN_LN_Y)
    return LongitudinalMoments(
        mean_ln_t=np.log(ln_y - 0.812),
        mean_ln_alpha=np.log(0.81 + (0.458 + 2.26 / z) * ln_y),
        sigma_ln_t=1.0 / (-1.4 + 1.26 * ln_y),
        sigma_ln_alpha=1.0 / (-0.58 + 0.86 * ln_y),
        rho=0.705 - 0.023 * ln_y,
    )


def spot_profile_factors(z: float) -> tuple[float, float]:
    """(T_spot / T, alpha_spot / alpha) = (0.698 + 0.00212 Z, 0.639 + 0.00334 Z)."""
    return 0.698 + 0.00212 * z, 0.639 + 0.00334 * z


def sample_longitudinal(
    energy_mev: np.ndarray,
    ec_mev: float,
    z: float,
    rng: np.random.Generator,
    depth_scale: float = 1.0,
    fluctuation_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-shower depth of maximum T (X0) and shape alpha with the published correlated fluctuations.

    ``ln T = <ln T> + s_T (sqrt((1+rho)/2) g1 + sqrt((1-rho)/2) g2)``,
    ``ln alpha = <ln alpha> + s_a (sqrt((1+rho)/2) g1 - sqrt((1-rho)/2) g2)``.
    Pairs giving alpha (or alpha_spot) below :data:`MIN_ALPHA` are redrawn. ``depth_scale``
    multiplies T (a perturbation of the depth of maximum), ``fluctuation_scale`` both sigmas.
    """
    moments = longitudinal_moments(energy_mev, ec_mev, z)
    n = moments.mean_ln_t.shape[0]
    _, alpha_factor = spot_profile_factors(z)
    min_ln_alpha = np.log(MIN_ALPHA / min(1.0, alpha_factor))
    plus = np.sqrt((1.0 + moments.rho) / 2.0)
    minus = np.sqrt((1.0 - moments.rho) / 2.0)
    ln_t = np.empty(n)
    ln_alpha = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        g1 = rng.standard_normal(todo.size)
        g2 = rng.standard_normal(todo.size)
        lt = moments.mean_ln_t[todo] + fluctuation_scale * moments.sigma_ln_t[todo] * (
            plus[todo] * g1 + minus[todo] * g2
        )
        la = moments.mean_ln_alpha[todo] + fluctuation_scale * moments.sigma_ln_alpha[todo] * (
            plus[todo] * g1 - minus[todo] * g2
        )
        ln_t[todo], ln_alpha[todo] = lt, la
        todo = todo[la < min_ln_alpha]
    return np.exp(ln_t) * depth_scale, np.exp(ln_alpha)


def spot_profile(t_max: np.ndarray, alpha: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """(alpha_spot, beta_spot) of the spots' longitudinal Gamma profile."""
    t_factor, alpha_factor = spot_profile_factors(z)
    t_spot = t_max * t_factor
    alpha_spot = np.maximum(alpha * alpha_factor, MIN_ALPHA)
    return alpha_spot, (alpha_spot - 1.0) / t_spot


def spot_count(energy_mev: np.ndarray, z: float) -> np.ndarray:
    """Number of energy spots of a shower in a homogeneous medium: ``93 ln(Z) E[GeV]^0.876``."""
    return 93.0 * np.log(z) * (np.asarray(energy_mev, dtype=np.float64) / 1000.0) ** 0.876


def radial_parameters(tau: np.ndarray, ln_e_gev: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Rc, Rt, p) in Moliere radii at tau = t/T (GFlash homogeneous-media fits).

    ``Rc = z1 + z2 tau``; ``Rt = k1 (exp(k3 (tau - k2)) + exp(k4 (tau - k2)))``;
    ``p = p1 exp((p2 - tau)/p3 - exp((p2 - tau)/p3))``.
    """
    z1 = 0.0251 + 0.00319 * ln_e_gev
    z2 = 0.1162 - 0.000381 * z
    k1, k2, k3 = 0.659 - 0.00309 * z, 0.645, -2.59
    k4 = 0.3585 + 0.0412 * ln_e_gev
    p1, p2 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z
    p3 = 1.313 - 0.0686 * ln_e_gev
    r_core = z1 + z2 * tau
    r_tail = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    x = (p2 - tau) / p3
    p = p1 * np.exp(x - np.exp(x))
    return r_core, r_tail, p


def radial_cdf(r: np.ndarray, r_core: np.ndarray, r_tail: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Fraction of the core + tail profile inside radius ``r`` (same unit as the radii)."""
    r2 = r * r
    return p * r2 / (r2 + r_core * r_core) + (1.0 - p) * r2 / (r2 + r_tail * r_tail)


def rectangle_integral(x: np.ndarray, y: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Integral of the 2-D density ``R^2 / (pi (x^2 + y^2 + R^2)^2)`` over [0, x] x [0, y] (signed).

    This density is the one whose radial distribution is ``2 r R^2 / (r^2 + R^2)^2``; the closed
    form ``(x/a atan(y/a) + y/b atan(x/b)) / (2 pi)``, ``a = sqrt(x^2+R^2)``, ``b = sqrt(y^2+R^2)``
    gives cell fractions of Cartesian readouts by inclusion-exclusion. Broadcasts.
    """
    r2 = radius * radius
    a = np.sqrt(x * x + r2)
    b = np.sqrt(y * y + r2)
    return (x / a * np.arctan(y / a) + y / b * np.arctan(x / b)) / (2.0 * np.pi)
