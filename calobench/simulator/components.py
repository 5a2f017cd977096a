"""Per-shower random parameters of a block of showers: which components deposit how much energy,
where they start, their longitudinal and lateral shapes.

A *component* deposits its energy along one depth coordinate (X0 for electromagnetic, lambda_int
for hadronic showers) with a Gamma profile, in *hits* whose number follows the spot profile and
whose lateral positions follow a core + tail profile; a pion also leaves a minimum-ionizing track
before its first interaction. Both the fast (expected-fraction) and the exact (spot-by-spot) paths
start from these parameters, so they differ only in how spots land in voxels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from calobench.simulator import gflash, hadronic
from calobench.simulator.detector import EM_PARTICLES, Detector

#: Mean free path of a high-energy photon for pair conversion, in X0.
CONVERSION_LENGTH_X0 = 9.0 / 7.0


def _column(values: np.ndarray, ndim: int) -> np.ndarray:
    """(B,) -> (B, 1, ..., 1) with ``ndim`` dimensions in total."""
    return values.reshape(values.shape + (1,) * (ndim - values.ndim))


@dataclass
class Component:
    """One shower component of B showers (arrays of shape (B,)).

    Attributes:
        kind: "em" (GFlash) or "hadronic".
        coordinate: depth coordinate of the profiles, "x0" or "lambda".
        energy: energy deposited by the whole profile, in file units (knobs applied).
        start: depth where the profile starts.
        alpha, beta: energy profile ``Gamma(alpha, beta)`` in the depth after ``start``.
        alpha_spot, beta_spot: profile of the spots (hits).
        spots: expected number of spots of the whole profile before the sampling-fraction
            thinning (``thinned``) and before the hit factor (1 + 1/s).
        thinned: whether spots are thinned by each step's true sampling fraction.
        t_max: depth of maximum (tau = depth / t_max in the lateral parameters).
        ln_e_gev: ln(E / GeV) of the component (EM lateral parameters).
        z: effective Z (EM lateral parameters).
        knobs: the perturbation factors (see :mod:`calobench.simulator.perturbations`).
        dipole_amplitude, dipole_phase: azimuthal modulation ``1 + a cos(alpha - phase)``.
        shift_x, shift_y: displacement of the lateral centre (mm; Cartesian readouts).
    """

    kind: str
    coordinate: str
    energy: np.ndarray
    start: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    alpha_spot: np.ndarray
    beta_spot: np.ndarray
    spots: np.ndarray
    thinned: bool
    t_max: np.ndarray
    ln_e_gev: np.ndarray
    z: float
    knobs: Mapping[str, float]
    dipole_amplitude: np.ndarray
    dipole_phase: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray

    def __len__(self) -> int:
        return len(self.energy)

    @property
    def same_spot_profile(self) -> bool:
        return self.alpha_spot is self.alpha and self.beta_spot is self.beta

    @property
    def has_asymmetry(self) -> bool:
        return bool(np.any(self.dipole_amplitude) or np.any(self.shift_x) or np.any(self.shift_y))

    def take(self, index: "int | np.ndarray | slice") -> "Component":
        """The component of a subset of the showers (arrays keep a leading axis)."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        values = {}
        for name in (
            "energy",
            "start",
            "alpha",
            "beta",
            "spots",
            "t_max",
            "ln_e_gev",
            "dipole_amplitude",
            "dipole_phase",
            "shift_x",
            "shift_y",
        ):
            values[name] = getattr(self, name)[index]
        same = self.same_spot_profile
        values["alpha_spot"] = values["alpha"] if same else self.alpha_spot[index]
        values["beta_spot"] = values["beta"] if same else self.beta_spot[index]
        return Component(
            kind=self.kind, coordinate=self.coordinate, thinned=self.thinned, z=self.z, knobs=self.knobs, **values
        )

    def radial(
        self, rel_depth: np.ndarray, moliere_mm: np.ndarray, lambda_mm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Rc, Rt, p) in mm at depths ``rel_depth`` (B, ...) after the start; the scales
        ``moliere_mm``/``lambda_mm`` broadcast against the trailing axes."""
        ndim = rel_depth.ndim
        tau = rel_depth / _column(self.t_max, ndim)
        if self.kind == "em":
            r_core, r_tail, p = gflash.radial_parameters(tau, _column(self.ln_e_gev, ndim), self.z)
            scale = moliere_mm
            r_core = r_core * self.knobs["core_radius_scale"]
            r_tail = r_tail * self.knobs["tail_radius_scale"]
            p = np.clip(p * self.knobs["core_fraction_scale"], 0.0, 1.0)
        else:
            r_core, r_tail, p = hadronic.hadronic_radial(tau, self.knobs["hadronic_radius_scale"])
            scale = lambda_mm
        return r_core * scale, r_tail * scale, p


@dataclass
class Block:
    """Everything random about a block of B showers except where the hits land.

    ``mip`` (B, n_layers) is the MIP-track energy per layer (file units), deposited on the axis:
    in the innermost radial bin at azimuth ``mip_angle`` (cylindrical) or at ``mip_xy`` (B, 2) mm
    (Cartesian; the axis position smeared by 1 mm so that it picks one of the central cells).
    """

    incident: np.ndarray
    components: list[Component]
    mip: np.ndarray
    mip_angle: np.ndarray
    mip_xy: np.ndarray
    extra: dict = field(default_factory=dict)


def em_component(
    detector: Detector, energy: np.ndarray, start_x0: np.ndarray, rng: np.random.Generator, knobs: Mapping[str, float]
) -> Component:
    """A GFlash electromagnetic component of energy ``energy`` (MeV) starting at ``start_x0``."""
    medium = detector.medium
    t_max, alpha = gflash.sample_longitudinal(
        energy,
        medium.critical_energy_mev,
        medium.z,
        rng,
        depth_scale=knobs["depth_scale"],
        fluctuation_scale=knobs["depth_fluctuation_scale"],
    )
    beta = (alpha - 1.0) / t_max
    alpha_spot, beta_spot = gflash.spot_profile(t_max, alpha, medium.z)
    response = knobs["sampling_fraction_scale"] * knobs["energy_scale"]
    zeros = np.zeros_like(energy)
    return Component(
        kind="em",
        coordinate="x0",
        energy=energy * response,
        start=start_x0,
        alpha=alpha,
        beta=beta,
        alpha_spot=alpha_spot,
        beta_spot=beta_spot,
        spots=gflash.spot_count(energy, medium.z) * knobs["spot_scale"],
        thinned=True,
        t_max=t_max,
        ln_e_gev=np.log(np.maximum(energy, 10.0) / 1000.0),
        z=medium.z,
        knobs=knobs,
        dipole_amplitude=zeros,
        dipole_phase=zeros,
        shift_x=zeros,
        shift_y=zeros,
    )


def _mip_track(
    detector: Detector, energy: np.ndarray, rng: np.random.Generator, knobs: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First interaction depth, MIP deposits per layer, shower energy left and whether it interacts."""
    l_edges = detector.slab_l_edges
    n = len(energy)
    first = rng.exponential(knobs["interaction_length_scale"], n)
    loss_edges = np.concatenate([[0.0], np.cumsum(detector.slab_mip_mev)])
    # depth at which the mean ionization loss uses up the energy (the pion stops there)
    ranged_out = energy < loss_edges[-1]
    stop = np.where(ranged_out, np.interp(energy, loss_edges, l_edges), np.inf)
    end = np.minimum(first, stop)
    interacts = first < stop
    lost = np.interp(np.minimum(end, l_edges[-1]), l_edges, loss_edges)
    shower_energy = np.where(interacts, np.maximum(energy - lost, 0.0), 0.0)

    thickness_l = np.diff(l_edges)
    thickness_x = np.diff(detector.slab_x_edges)
    path_l = np.clip(end[:, None] - l_edges[None, :-1], 0.0, thickness_l[None, :])
    path_x = path_l * (thickness_x / thickness_l)[None, :]
    mean = path_x * (detector.slab_mip_mev / thickness_x)[None, :]
    shape = hadronic.MIP_SHAPE_PER_X0 * (1.0 + path_x)
    deposit = np.where(path_x > 0, mean * rng.standard_gamma(shape) / shape, 0.0)
    mip = np.zeros((n, detector.geometry.n_layers))
    for k, layer in enumerate(detector.slab_layer_index):
        if layer >= 0:
            mip[:, layer] += deposit[:, k]
    return first, mip * knobs["sampling_fraction_scale"] * knobs["energy_scale"], shower_energy, interacts


def sample_block(
    detector: Detector, incident: np.ndarray, rng: np.random.Generator, knobs: Mapping[str, float]
) -> Block:
    """Draw the per-shower parameters of a block of showers with incident energies ``incident`` (MeV)."""
    incident = np.asarray(incident, dtype=np.float64)
    n = len(incident)
    n_layers = detector.geometry.n_layers
    if detector.particle in EM_PARTICLES:
        # a photon first converts, after an exponential path of mean 9/7 X0 (PDG); GFlash's
        # profile is that of the electrons and positrons
        start = rng.exponential(CONVERSION_LENGTH_X0, n) if detector.particle == "photon" else np.zeros(n)
        component = em_component(detector, incident, start, rng, knobs)
        return Block(incident, [component], np.zeros((n, n_layers)), np.zeros(n), np.zeros((n, 2)))

    first, mip, shower_energy, interacts = _mip_track(detector, incident, rng, knobs)
    f_em = hadronic.beta_with_mean(
        hadronic.em_fraction_mean(np.maximum(shower_energy, 1.0), knobs["em_fraction_scale"]),
        hadronic.F_EM_CONCENTRATION,
        rng,
    )
    invisible_mean = np.clip((1.0 - 1.0 / detector.e_over_h) * knobs["invisible_fraction_scale"], 1e-3, 0.95)
    f_inv = hadronic.beta_with_mean(np.full(n, invisible_mean), hadronic.F_INV_CONCENTRATION, rng)
    em_energy = f_em * shower_energy
    em = em_component(detector, em_energy, detector.lambda_to_x0(first), rng, knobs)

    had_visible = (1.0 - f_em) * shower_energy * (1.0 - f_inv)
    t_max, alpha, beta = hadronic.hadronic_profile(np.maximum(shower_energy, 1.0), rng, knobs["hadronic_depth_scale"])
    response = knobs["sampling_fraction_scale"] * knobs["energy_scale"]
    shift_rms = hadronic.SHIFT_RMS_LAMBDA * detector.medium.lambda_int_mm
    cartesian = detector.geometry.kind == "cartesian"
    amplitude = rng.uniform(0.0, hadronic.DIPOLE_MAX, n)
    phase = rng.uniform(-np.pi, np.pi, n)
    shift = rng.normal(0.0, shift_rms, (n, 2))
    had = Component(
        kind="hadronic",
        coordinate="lambda",
        energy=had_visible * response,
        start=first,
        alpha=alpha,
        beta=beta,
        alpha_spot=alpha,
        beta_spot=beta,
        spots=detector.hadronic_hits_per_gev * had_visible / 1000.0 * knobs["spot_scale"],
        thinned=False,
        t_max=t_max,
        ln_e_gev=np.log(np.maximum(shower_energy, 1.0) / 1000.0),
        z=detector.medium.z,
        knobs=knobs,
        dipole_amplitude=np.zeros(n) if cartesian else amplitude,
        dipole_phase=phase,
        shift_x=shift[:, 0] if cartesian else np.zeros(n),
        shift_y=shift[:, 1] if cartesian else np.zeros(n),
    )
    mip_angle = rng.uniform(-np.pi, np.pi, n)
    mip_xy = rng.normal(0.0, 1.0, (n, 2))
    return Block(
        incident,
        [em, had],
        mip,
        mip_angle,
        mip_xy,
        extra={"first_interaction": first, "f_em": f_em, "f_inv": f_inv, "interacts": interacts},
    )
