"""A simple hadronic shower model for charged pions (there is no single standard parametrization).

Following the outline in shared/reference/gflash-parameters.md and the textbook picture (Wigmans,
"Calorimetry", 2nd ed., ch. 2; Groom, NIM A572 (2007) 633; PDG review "Passage of particles through
matter", hadronic showers):

* first interaction depth ~ Exponential(lambda_int); before it (and if the pion ranges out first,
  instead of it) a minimum-ionizing track;
* electromagnetic fraction ``f_em`` with mean ``1 - (E / 1 GeV)^(k - 1)``, k = 0.83, clipped to
  [0.1, 0.9], and Beta-distributed event-to-event fluctuations;
* the rest is hadronic: a fraction ``f_inv`` (mean ``1 - h/e``) is invisible (nuclear binding,
  neutrons), the visible part follows a Gamma profile in lambda_int with depth of maximum
  ``T_h = 0.2 ln(E/GeV) + 0.7`` and attenuation length ``lambda_att = E^0.13`` (PDG), and a core +
  tail lateral profile in units of lambda_int that widens with depth;
* the hadronic energy flow is not azimuthally symmetric event by event: a first-harmonic
  (dipole) modulation with random amplitude and direction in cylindrical readouts, a displaced
  centre in Cartesian ones.
"""

from __future__ import annotations

import numpy as np

#: f_em = 1 - (E / E0)^(K - 1) (Groom 2007; Wigmans), clipped to [F_EM_MIN, F_EM_MAX].
F_EM_E0_MEV = 1000.0
F_EM_K = 0.83
F_EM_MIN, F_EM_MAX = 0.1, 0.9
#: Beta concentration (a + b) of the event-to-event f_em fluctuations: sigma(f_em) ~ 0.2 at f_em = 0.5.
F_EM_CONCENTRATION = 6.0
#: Beta concentration of the invisible-fraction fluctuations.
F_INV_CONCENTRATION = 20.0
#: Log-normal spreads of the hadronic depth of maximum and attenuation length.
SIGMA_LN_T_HAD = 0.25
SIGMA_LN_ATT_HAD = 0.2
#: Lateral profile of the hadronic component, in interaction lengths: core and tail radii at the
#: interaction point, their growth per unit of tau_h = depth / T_h, and the core probability.
HAD_CORE_RADIUS = 0.07
HAD_TAIL_RADIUS = 0.30
HAD_RADIUS_GROWTH = 0.3
HAD_CORE_FRACTION = 0.6
#: Largest dipole amplitude (cylindrical readouts) and rms displacement in interaction lengths
#: (Cartesian readouts) of the hadronic energy flow.
DIPOLE_MAX = 0.6
SHIFT_RMS_LAMBDA = 0.05
#: Gamma shape of a MIP deposit per X0 crossed (Landau-like spread, narrower for longer paths).
MIP_SHAPE_PER_X0 = 3.0


def em_fraction_mean(energy_mev: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Mean electromagnetic fraction ``1 - (E/1 GeV)^(0.83 - 1)``, clipped, times ``scale``."""
    mean = 1.0 - (np.asarray(energy_mev, dtype=np.float64) / F_EM_E0_MEV) ** (F_EM_K - 1.0)
    return np.clip(np.clip(mean, F_EM_MIN, F_EM_MAX) * scale, 0.02, 0.98)


def beta_with_mean(mean: np.ndarray, concentration: float, rng: np.random.Generator) -> np.ndarray:
    """Beta draws with the given means and ``a + b = concentration``."""
    return rng.beta(mean * concentration, (1.0 - mean) * concentration)


def hadronic_profile(
    energy_mev: np.ndarray, rng: np.random.Generator, depth_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-shower (T_h, alpha_h, beta_h) of the hadronic Gamma profile, depths in lambda_int.

    ``T_h = 0.2 ln(E/GeV) + 0.7`` (at least 0.3) and ``lambda_att = (E/GeV)^0.13`` with log-normal
    fluctuations; ``beta_h = 1/lambda_att``, ``alpha_h = 1 + beta_h T_h``.
    """
    e_gev = np.maximum(np.asarray(energy_mev, dtype=np.float64), 1.0) / 1000.0
    t_max = np.maximum(0.2 * np.log(e_gev) + 0.7, 0.3) * np.exp(SIGMA_LN_T_HAD * rng.standard_normal(e_gev.shape))
    t_max = t_max * depth_scale
    attenuation = e_gev**0.13 * np.exp(SIGMA_LN_ATT_HAD * rng.standard_normal(e_gev.shape))
    beta = 1.0 / attenuation
    return t_max, 1.0 + beta * t_max, beta


def hadronic_radial(tau: np.ndarray, radius_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Rc, Rt, p) of the hadronic lateral profile in interaction lengths at tau_h = depth / T_h."""
    growth = 1.0 + HAD_RADIUS_GROWTH * tau
    return (
        HAD_CORE_RADIUS * radius_scale * growth,
        HAD_TAIL_RADIUS * radius_scale * growth,
        np.full_like(tau, HAD_CORE_FRACTION),
    )
