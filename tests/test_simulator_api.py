"""The simulator's API: determinism, chunking, perturbations, spectra, detectors and the formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from calobench.errors import ConfigError
from calobench.geometry import builtin_geometry
from calobench.simulator import (
    BLOCK_SIZE,
    PERTURBATIONS,
    Detector,
    gflash,
    incident_spectrum,
    iter_simulate,
    load_detector,
    parse_perturbations,
    simulate,
    spectra,
    synthetic_names,
)
from calobench.simulator.catalog import canonical_name, card

# ---------------------------------------------------------------------- determinism


def test_same_seed_same_showers_other_seed_other_showers():
    energies = incident_spectrum("ds1-pions", 600, seed=3)
    a = simulate("synthetic-ds1-pions", energies, seed=9)
    b = simulate("ds1-pions", energies, seed=9)
    c = simulate("ds1-pions", energies, seed=10)
    np.testing.assert_array_equal(a.energies, b.energies)
    assert not np.array_equal(a.energies, c.energies)
    np.testing.assert_array_equal(a.incident_energies, energies)


def test_result_does_not_depend_on_chunking():
    energies = incident_spectrum("ds2", 3 * BLOCK_SIZE + 17, seed=1)
    whole = simulate("ds2", energies, seed=4)
    chunks = list(iter_simulate("ds2", energies, seed=4, chunk_size=BLOCK_SIZE))
    assert len(chunks) == 4
    np.testing.assert_array_equal(np.concatenate([c.showers.energies for c in chunks]), whole.energies)
    # a prefix of the energies gives the same first showers
    prefix = simulate("ds2", energies[:BLOCK_SIZE], seed=4)
    np.testing.assert_array_equal(prefix.energies, whole.energies[:BLOCK_SIZE])


def test_empty_input_and_geometry():
    showers = simulate("ds3", np.zeros(0), seed=0)
    assert showers.energies.shape == (0, builtin_geometry("ds3").n_voxels)
    assert showers.geometry == builtin_geometry("ds3")


@pytest.mark.parametrize("bad", [np.array([1000.0, -5.0]), np.array([np.nan]), np.ones((2, 2))])
def test_invalid_incident_energies(bad):
    with pytest.raises(ConfigError, match="incident energies"):
        simulate("ds2", bad, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "3"])
def test_invalid_seed(seed):
    with pytest.raises(ConfigError, match="seed"):
        simulate("ds2", np.ones(3) * 1000, seed=seed)


def test_unknown_detector_and_method():
    with pytest.raises(ConfigError, match="did you mean"):
        simulate("ds22", np.ones(3) * 1000, seed=0)
    with pytest.raises(ConfigError, match="method"):
        simulate("ds2", np.ones(3) * 1000, seed=0, method="slow")


# ---------------------------------------------------------------------- perturbations


def _centre_of_gravity(showers, detector: Detector) -> np.ndarray:
    edges = detector.slab_x_edges
    centres = np.array([(edges[k] + edges[k + 1]) / 2 for k, s in enumerate(detector.slabs) if s.layer is not None])
    layers = showers.layer_energies()
    return (layers @ centres) / layers.sum(axis=1)


def _radial_width(showers) -> np.ndarray:
    r = showers.geometry.voxel_r
    x = showers.energies.astype(np.float64)
    return (x @ r) / x.sum(axis=1)


@pytest.fixture(scope="module")
def ds2_energies():
    return np.full(1500, 50_000.0)


def _perturbed(energies, **knobs):
    return simulate("ds2", energies, seed=5, perturbation=knobs)


def test_depth_scale_moves_the_shower_deeper(ds2_energies):
    detector = load_detector("ds2")
    nominal = _centre_of_gravity(_perturbed(ds2_energies), detector).mean()
    deeper = _centre_of_gravity(_perturbed(ds2_energies, depth_scale=1.03), detector).mean()
    assert deeper / nominal == pytest.approx(1.03, abs=0.012)


def test_spot_scale_increases_fluctuations(ds2_energies):
    nominal = _perturbed(ds2_energies).total_energy()
    fewer = _perturbed(ds2_energies, spot_scale=0.8).total_energy()
    # sampling-dominated resolution: sigma ~ 1/sqrt(N_spot)
    assert fewer.std() / nominal.std() == pytest.approx(np.sqrt(1 / 0.8), rel=0.12)
    assert fewer.mean() == pytest.approx(nominal.mean(), rel=0.005)


def test_radius_knobs_widen_the_shower(ds2_energies):
    nominal = _radial_width(_perturbed(ds2_energies)).mean()
    assert _radial_width(_perturbed(ds2_energies, core_radius_scale=1.1)).mean() > nominal * 1.01
    assert _radial_width(_perturbed(ds2_energies, tail_radius_scale=1.1)).mean() > nominal * 1.01


def test_sampling_fraction_scale_shifts_the_response(ds2_energies):
    nominal = _perturbed(ds2_energies).total_energy().mean()
    shifted = _perturbed(ds2_energies, sampling_fraction_scale=1.02).total_energy().mean()
    assert shifted / nominal == pytest.approx(1.02, abs=0.004)


def test_em_fraction_scale_changes_pion_response():
    energies = np.full(1500, 65536.0)
    nominal = simulate("ds1-pions", energies, seed=2).total_energy().mean()
    more_em = simulate("ds1-pions", energies, seed=2, perturbation={"em_fraction_scale": 1.2}).total_energy().mean()
    assert more_em > nominal * 1.01


def test_every_knob_is_documented_and_validated():
    for name, knob in PERTURBATIONS.items():
        assert knob.description and knob.name == name
    assert parse_perturbations(["depth_scale=1.03", " spot_scale = 0.8"]) == {"depth_scale": 1.03, "spot_scale": 0.8}
    with pytest.raises(ConfigError, match="unknown perturbation 'depth_scal'.*depth_scale"):
        parse_perturbations(["depth_scal=1.03"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_perturbations(["depth_scale"])
    with pytest.raises(ConfigError, match="out of range"):
        simulate("ds2", np.ones(2) * 1000, seed=0, perturbation={"spot_scale": 0.0})
    with pytest.raises(ConfigError, match="must be a number"):
        parse_perturbations(["spot_scale=lots"])


# ---------------------------------------------------------------------- spectra


def test_ds1_spectra_have_the_real_per_energy_counts():
    photons = incident_spectrum("synthetic-ds1-photons", 121_000, seed=0)
    values, counts = np.unique(photons, return_counts=True)
    np.testing.assert_array_equal(values, 2.0 ** np.arange(8, 23))
    np.testing.assert_array_equal(counts, [10_000] * 11 + [5_000, 3_000, 2_000, 1_000])
    pions = incident_spectrum("ds1-pions", 120_800, seed=0)
    _, counts = np.unique(pions, return_counts=True)
    np.testing.assert_array_equal(counts, [10_000] * 10 + [9_800, 5_000, 3_000, 2_000, 1_000])
    assert not np.all(np.diff(photons) >= 0)  # shuffled


def test_spectra_scale_and_ranges():
    small = incident_spectrum("ds1-photons", 1210, seed=1)
    _, counts = np.unique(small, return_counts=True)
    np.testing.assert_array_equal(counts, np.asarray(spectra.DS1_PHOTON_COUNTS) // 100)
    assert spectra.apportion([3, 1], 5).sum() == 5
    logu = incident_spectrum("ds3", 20000, seed=2)
    assert logu.min() >= 1e3 and logu.max() <= 1e6
    # log-uniform: each decade holds a third
    assert np.histogram(np.log10(logu), bins=[3, 4, 5, 6])[0] / len(logu) == pytest.approx([1 / 3] * 3, abs=0.02)
    uni = incident_spectrum("calogan-gamma", 20000, seed=2)
    assert uni.min() >= 1e3 and uni.max() <= 1e5
    assert np.mean(uni < 50500) == pytest.approx(0.5, abs=0.02)
    np.testing.assert_array_equal(incident_spectrum("ds2", 50, 7), incident_spectrum("ds2", 50, 7))


# ---------------------------------------------------------------------- detectors and cards


@pytest.mark.parametrize("name", synthetic_names())
def test_every_card_describes_its_geometry(name):
    data = card(name)
    detector = load_detector(name)
    assert detector.geometry == builtin_geometry(data["geometry"])
    assert detector.particle == data["particle"]
    assert {f["role"] for f in data["files"]} == {"train", "reference"}
    seeds = [f["seed"] for f in data["files"]]
    assert len(set(seeds)) == len(seeds)
    # every readout layer is one slab, in depth order of the layer ids
    layer_slabs = [s.layer for s in detector.slabs if s.layer is not None]
    assert sorted(layer_slabs) == list(detector.geometry.layer_ids) == layer_slabs


def test_names():
    assert set(synthetic_names()) == {
        "synthetic-ds1-photons",
        "synthetic-ds1-pions",
        "synthetic-ds2",
        "synthetic-ds3",
        "synthetic-calogan-eplus",
        "synthetic-calogan-gamma",
        "synthetic-calogan-piplus",
    }
    assert canonical_name("ds2") == "synthetic-ds2"


def test_detector_rejects_malformed_descriptions():
    config = dict(card("ds2")["simulator"])
    with pytest.raises(ConfigError, match="no slab for readout layer"):
        Detector.from_config("broken", "ds2", "electron", {**config, "slabs": config["slabs"][:-1]})
    slabs = [dict(s) for s in config["slabs"]]
    slabs[0]["medium"] = "air"
    with pytest.raises(ConfigError, match="unknown medium 'air'"):
        Detector.from_config("broken", "ds2", "electron", {**config, "slabs": slabs})
    with pytest.raises(ConfigError, match="particle"):
        Detector.from_config("broken", "ds2", "muon", config)
    media = {"w-si": {**config["media"]["w-si"], "sampling_fraction": 1.5}}
    with pytest.raises(ConfigError, match="sampling_fraction"):
        Detector.from_config("broken", "ds2", "electron", {**config, "media": media})


def test_depth_conversion_between_lambda_and_x0():
    detector = load_detector("ds1-pions")
    np.testing.assert_allclose(detector.lambda_to_x0(detector.slab_l_edges), detector.slab_x_edges)
    assert detector.lambda_to_x0(np.array([detector.slab_l_edges[-1] + 1.0]))[0] > detector.slab_x_edges[-1]


# ---------------------------------------------------------------------- formulas


def test_rectangle_integral_matches_numerical_integration():
    radius = 1.3
    for x, y in [(0.5, 2.0), (3.0, 1.0), (-2.0, 0.7), (0.1, -0.2)]:
        numeric, _ = integrate.dblquad(lambda v, u: radius**2 / (np.pi * (u * u + v * v + radius**2) ** 2), 0, x, 0, y)
        assert gflash.rectangle_integral(np.array(x), np.array(y), np.array(radius)) == pytest.approx(numeric, rel=1e-6)


def test_radial_cdf_is_the_integral_of_the_profile():
    r_core, r_tail, p = 0.2, 1.1, 0.7

    def density(r):
        return p * 2 * r * r_core**2 / (r**2 + r_core**2) ** 2 + (1 - p) * 2 * r * r_tail**2 / (r**2 + r_tail**2) ** 2

    for r in (0.1, 1.0, 5.0):
        assert gflash.radial_cdf(np.array(r), r_core, r_tail, p) == pytest.approx(integrate.quad(density, 0, r)[0])
    assert gflash.radial_cdf(np.array(1e9), r_core, r_tail, p) == pytest.approx(1.0)


def test_longitudinal_fluctuations_have_the_published_correlation():
    rng = np.random.default_rng(0)
    energy = np.full(200_000, 50_000.0)
    t_max, alpha = gflash.sample_longitudinal(energy, 7.35, 82.0, rng)
    moments = gflash.longitudinal_moments(energy[:1], 7.35, 82.0)
    assert np.log(t_max).mean() == pytest.approx(moments.mean_ln_t[0], abs=0.002)
    assert np.log(alpha).std() == pytest.approx(moments.sigma_ln_alpha[0], rel=0.01)
    assert np.corrcoef(np.log(t_max), np.log(alpha))[0, 1] == pytest.approx(moments.rho[0], abs=0.01)
    assert np.exp(moments.mean_ln_t[0]) == pytest.approx(np.log(50_000 / 7.35) - 0.812)


def test_critical_energy_and_moliere_radius_of_lead():
    ec = gflash.critical_energy(6.37, 82.0, 207.2)
    assert gflash.moliere_radius(5.6, ec) == pytest.approx(16.0, rel=0.01)
    assert gflash.critical_energy_from_moliere(5.6, gflash.moliere_radius(5.6, ec)) == pytest.approx(ec)
