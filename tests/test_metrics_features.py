"""High-level features against a plain, literal numpy implementation of the CaloChallenge protocol."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.formats import open_showers
from calobench.geometry import builtin_geometry
from calobench.metrics.features import compute_features, high_level_vector, stream_features
from calobench.showers import Showers
from calobench.testing import random_showers, write_random_file

EPS = 1e-16


def plain_features(showers: Showers, threshold: float) -> dict[str, np.ndarray]:
    """The protocol in the order of operations of the CaloChallenge code (HighLevelFeatures.py),
    written out layer by layer from the binning definitions (independent of calobench.geometry's
    coordinate arrays): the voxels keep their type, sums run in it, moments in float64."""
    geometry = showers.geometry
    energies = np.where(showers.energies < threshold, np.zeros_like(showers.energies), showers.energies)
    out: dict[str, list] = {
        k: [] for k in ("e_layer", "ec_eta", "ec_phi", "width_eta", "width_phi", "ec_r", "width_r", "sparsity")
    }
    start = 0
    for layer in geometry.layers:
        n_alpha, n_r = layer.shape
        block = energies[:, start : start + n_alpha * n_r]
        start += n_alpha * n_r
        edges = [float(e) for e in layer.r_edges]
        alpha_edges = np.linspace(-np.pi, np.pi, n_alpha + 1)
        alpha = [alpha_edges[j] + (alpha_edges[j + 1] - alpha_edges[j]) / 2 for j in range(n_alpha) for _ in range(n_r)]
        r_mid = [edges[i] + (edges[i + 1] - edges[i]) / 2 for _ in range(n_alpha) for i in range(n_r)]
        coords = {
            "r": np.array(n_alpha * [(edges[i] + edges[i + 1]) * 0.5 for i in range(n_r)]),
            "eta": r_mid * np.cos(alpha),
            "phi": r_mid * np.sin(alpha),
        }
        out["e_layer"].append(block.sum(axis=-1))
        out["sparsity"].append(1.0 - (block > 0).mean(axis=-1))
        for name, x in coords.items():
            if name != "r" and n_alpha == 1:
                continue
            centre = (x * block).sum(axis=-1) / (block.sum(axis=-1) + EPS)
            second = (x * x * block).sum(axis=-1) / (block.sum(axis=-1) + EPS)
            out[f"ec_{name}"].append(centre)
            out[f"width_{name}"].append(np.sqrt((second - centre**2).clip(min=0.0)))
    result = {k: np.stack(v, axis=1) for k, v in out.items()}
    result["e_tot"] = energies.sum(axis=-1)
    return result


@pytest.mark.parametrize("name", ["ds1-photons", "ds1-pions", "ds2"])
def test_features_match_the_protocol(name: str) -> None:
    geometry = builtin_geometry(name)
    showers = random_showers(geometry, n=40, seed=3, sparsity=0.6)
    threshold = geometry.threshold
    expected = plain_features(showers, threshold)
    features = compute_features(showers)
    for key in ("e_tot", "e_layer", "sparsity"):  # bit for bit, in the voxels' type
        np.testing.assert_array_equal(getattr(features, key), expected[key].astype(np.float64), err_msg=key)
    for key, value in expected.items():
        np.testing.assert_allclose(getattr(features, key), value, rtol=1e-12, atol=1e-12, err_msg=key)
    np.testing.assert_array_equal(features.e_inc, showers.incident_energies)
    assert features.voxel_dtype == str(showers.energies.dtype)


def test_threshold_zeroes_voxels_before_everything() -> None:
    geometry = builtin_geometry("ds1-photons")
    showers = random_showers(geometry, n=5, seed=1)
    low = showers.energies.copy()
    low[:] = 0.5  # every voxel below the 1 MeV threshold
    features = compute_features(Showers(showers.incident_energies, low, geometry))
    assert np.all(features.e_tot == 0)
    assert np.all(features.sparsity == 1)
    assert np.all(features.width_r == 0) and np.all(features.ec_r == 0)


def test_streaming_equals_in_memory(tmp_path) -> None:
    path = write_random_file(tmp_path / "s.h5", "ds1-pions", n=300, seed=5)
    with open_showers(path) as handle:
        streamed = stream_features(handle.iter_chunks(chunk_size=37))
        whole = compute_features(handle.read())
    for key in whole.PER_SHOWER:
        np.testing.assert_allclose(getattr(streamed, key), getattr(whole, key), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "width"), [("ds1-photons", 30), ("ds1-pions", 46), ("ds2", 362), ("ds3", 362)])
def test_high_level_vector_has_the_published_width(name: str, width: int) -> None:
    showers = random_showers(name, n=3, seed=0)
    vector = high_level_vector(compute_features(showers))
    assert vector.shape == (3, width)
    assert np.isfinite(vector).all()


def test_high_level_vector_order() -> None:
    showers = random_showers("ds1-photons", n=4, seed=2)
    f = compute_features(showers)
    v = high_level_vector(f)
    np.testing.assert_allclose(v[:, 0], np.log10(f.e_inc))
    np.testing.assert_allclose(v[:, 1:6], np.log10(f.e_layer + 1e-8))
    np.testing.assert_allclose(v[:, 6:8], f.ec_eta / 100)
    np.testing.assert_allclose(v[:, 14], np.log10(f.e_tot + 1e-8))
    np.testing.assert_allclose(v[:, 15:20], f.sparsity)
    np.testing.assert_allclose(v[:, 25:30], f.width_r / 100)
