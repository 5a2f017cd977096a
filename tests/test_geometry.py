"""Geometry: voxel counts, layer slices, coordinates, XML parsing (with property-based tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calobench.errors import GeometryError
from calobench.geometry import (
    BUILTIN_GEOMETRIES,
    Geometry,
    builtin_geometry,
    detect_geometry,
    parse_binning_xml,
    resolve_geometry,
)
from calobench.paths import binning_file


@pytest.mark.parametrize(
    ("name", "n_voxels", "layer_ids"),
    [
        ("ds1-photons", 368, (0, 1, 2, 3, 12)),
        ("ds1-pions", 533, (0, 1, 2, 3, 12, 13, 14)),
        ("ds2", 6480, tuple(range(45))),
        ("ds3", 40500, tuple(range(45))),
        ("calogan", 504, (0, 1, 2)),
    ],
)
def test_builtin_voxel_counts_and_layers(name: str, n_voxels: int, layer_ids: tuple[int, ...]) -> None:
    geometry = builtin_geometry(name)
    assert geometry.n_voxels == n_voxels
    assert geometry.layer_ids == layer_ids
    assert sum(geometry.layer_sizes) == n_voxels
    assert len(geometry.voxel_r) == n_voxels
    assert detect_geometry(n_voxels) is geometry


def test_ds1_photon_layer_slices_and_shapes() -> None:
    geometry = builtin_geometry("ds1-photons")
    assert geometry.layer_slices == (slice(0, 8), slice(8, 168), slice(168, 358), slice(358, 363), slice(363, 368))
    assert geometry.layer_shape(1) == (10, 16)
    assert geometry.layer_shape(2) == (10, 19)
    assert [geometry.binned_in_angle(i) for i in geometry.layer_ids] == [False, True, True, False, False]


def test_ds1_pion_slices() -> None:
    geometry = builtin_geometry("ds1-pions")
    sizes = [s.stop - s.start for s in geometry.layer_slices]
    assert sizes == [8, 100, 100, 5, 150, 160, 10]
    assert geometry.layer_slice(13) == slice(363, 523)


def test_coordinates_of_known_voxels() -> None:
    geometry = builtin_geometry("ds1-photons")
    # voxel 0: layer 0, single angular bin -> alpha_c = -pi + pi = 0, r_c = 2.5 mm
    assert geometry.voxel_r[0] == pytest.approx(2.5)
    assert geometry.voxel_alpha[0] == pytest.approx(0.0)
    assert geometry.voxel_eta[0] == pytest.approx(2.5)
    assert geometry.voxel_phi[0] == pytest.approx(0.0, abs=1e-12)
    # voxel 8: layer 1, angular bin 0, radial bin 0 (r in [0, 2]) -> r_c = 1, alpha_c = -pi + pi/10
    alpha = -math.pi + math.pi / 10
    assert geometry.voxel_layer[8] == 1
    assert geometry.voxel_r[8] == pytest.approx(1.0)
    assert geometry.voxel_eta[8] == pytest.approx(math.cos(alpha))
    assert geometry.voxel_phi[8] == pytest.approx(math.sin(alpha))
    # radial bin fastest: voxel 9 is the next radial bin of the same angular bin (r in [2, 4])
    assert geometry.voxel_r[9] == pytest.approx(3.0)
    assert geometry.voxel_alpha[9] == pytest.approx(alpha)
    # voxel 8 + 16 is angular bin 1, radial bin 0
    assert geometry.voxel_alpha[24] == pytest.approx(-math.pi + 3 * math.pi / 10)
    # DS2: layer 3, angular bin 4, radial bin 2 -> r_c = 11.625 mm
    ds2 = builtin_geometry("ds2")
    index = 3 * 144 + 4 * 9 + 2
    assert ds2.voxel_r[index] == pytest.approx(11.625)
    assert ds2.voxel_alpha[index] == pytest.approx(-math.pi + 4.5 * 2 * math.pi / 16)


def test_calogan_cell_centres() -> None:
    geometry = Geometry.calogan()
    assert [layer.shape for layer in geometry.layers] == [(3, 96), (12, 12), (12, 6)]
    # layer 0 cell (row 0, column 0): x centre -240 + 2.5, y centre -240 + 80
    assert geometry.voxel_eta[0] == pytest.approx(-237.5)
    assert geometry.voxel_phi[0] == pytest.approx(-160.0)
    # last cell of layer 0: row 2, column 95
    assert geometry.voxel_eta[287] == pytest.approx(237.5)
    assert geometry.voxel_phi[287] == pytest.approx(160.0)
    # layer 2 first cell: 40 mm (y) x 80 mm (x)
    assert geometry.voxel_eta[432] == pytest.approx(-200.0)
    assert geometry.voxel_phi[432] == pytest.approx(-220.0)
    assert all(geometry.binned_in_angle(i) for i in geometry.layer_ids)


def test_layer_view_and_energies() -> None:
    geometry = builtin_geometry("ds1-photons")
    voxels = np.arange(2 * 368, dtype=np.float64).reshape(2, 368)
    view = geometry.layer_view(voxels, 2)
    assert view.shape == (2, 10, 19)
    assert view[1, 0, 0] == voxels[1, 168]
    assert view[0, 1, 0] == voxels[0, 168 + 19]
    energies = geometry.layer_energies(voxels)
    assert energies.shape == (2, 5)
    assert energies[0].sum() == pytest.approx(voxels[0].sum())


def test_from_xml_matches_builtin_and_thresholds() -> None:
    geometry = Geometry.from_xml(binning_file("binning_dataset_2.xml"))
    assert geometry == builtin_geometry("ds2")
    assert geometry.threshold == pytest.approx(0.5e-3 / 0.033)
    assert builtin_geometry("ds1-photons").threshold == 1.0
    assert resolve_geometry(str(binning_file("binning_dataset_1_pions.xml"))).name == "ds1-pions"


def test_unknown_geometry_suggests() -> None:
    with pytest.raises(GeometryError, match="did you mean 'ds2'"):
        builtin_geometry("ds-2")
    with pytest.raises(GeometryError, match="no known geometry has 367 voxels"):
        detect_geometry(367)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not xml at all <", "not valid XML"),
        ("<Foo/>", "expected <Bins>"),
        ('<Bins><Bin name="x"><Layer id="0" r_edges="0" n_bin_alpha="1"/></Bin></Bins>', "no layer with voxels"),
        ('<Bins><Bin name="x"><Layer id="0" r_edges="0,a" n_bin_alpha="1"/></Bin></Bins>', "not a comma-separated"),
        ('<Bins><Bin name="x"><Layer id="0" r_edges="0,5,3" n_bin_alpha="1"/></Bin></Bins>', "strictly increasing"),
        ('<Bins><Bin name="x"><Layer id="0" r_edges="0,5" n_bin_alpha="0"/></Bin></Bins>', "n_bin_alpha must be >= 1"),
        ('<Bins><Bin name="x"><Layer r_edges="0,5" n_bin_alpha="1"/></Bin></Bins>', "is not an integer"),
        ('<Bins><Bin name="x"><Layer id="0" n_bin_alpha="1"/></Bin></Bins>', "missing attribute r_edges"),
        (
            '<Bins><Bin name="x"><Layer id="0" r_edges="0,1"/><Layer id="0" r_edges="0,2"/></Bin></Bins>',
            "repeats layer ids",
        ),
    ],
)
def test_malformed_xml_gives_clear_errors(text: str, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        parse_binning_xml(text)


def test_several_bins_need_a_particle() -> None:
    text = (
        '<Bins><Bin name="a"><Layer id="0" r_edges="0,1" n_bin_alpha="2"/></Bin>'
        '<Bin name="b"><Layer id="0" r_edges="0,1,2" n_bin_alpha="3"/></Bin></Bins>'
    )
    with pytest.raises(GeometryError, match="choose one"):
        parse_binning_xml(text)
    assert parse_binning_xml(text, particle="b").n_voxels == 6


layer_strategy = st.tuples(
    st.lists(st.floats(0.1, 100.0, allow_nan=False), min_size=0, max_size=12),
    st.integers(1, 64),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(layer_strategy, min_size=1, max_size=8))
def test_xml_parser_properties(layers: list[tuple[list[float], int]]) -> None:
    """For any layer list, voxel count, slices and edges follow from the XML text."""
    parts, expected = [], []
    for layer_id, (widths, n_alpha) in enumerate(layers):
        edges = np.concatenate([[0.0], np.cumsum(widths)]) if widths else np.array([0.0])
        edges_text = ",".join(repr(float(e)) for e in edges)
        parts.append(f'<Layer id="{layer_id}" r_edges="{edges_text}" n_bin_alpha="{n_alpha}"/>')
        if len(edges) > 1 and np.all(np.diff(edges) > 0):
            expected.append((layer_id, n_alpha, len(edges) - 1, edges))
    text = f'<Bins><Bin pid="22" name="photon">{"".join(parts)}</Bin></Bins>'
    if not expected:
        with pytest.raises(GeometryError):
            parse_binning_xml(text)
        return
    geometry = parse_binning_xml(text)
    assert geometry.particle == "photon"
    assert geometry.n_voxels == sum(a * r for _, a, r, _ in expected)
    assert geometry.layer_ids == tuple(i for i, *_ in expected)
    start = 0
    for (layer_id, n_alpha, n_r, edges), block in zip(expected, geometry.layer_slices):
        assert block == slice(start, start + n_alpha * n_r)
        start += n_alpha * n_r
        np.testing.assert_allclose(geometry.layers[geometry.layer_index(layer_id)].r_edges, edges)
        r = geometry.voxel_r[block].reshape(n_alpha, n_r)
        np.testing.assert_allclose(r[0], 0.5 * (edges[1:] + edges[:-1]))


def test_all_builtins_resolve() -> None:
    for name in BUILTIN_GEOMETRIES:
        assert resolve_geometry(name).name == name
