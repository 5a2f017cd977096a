"""The Generator interface: constructor keywords, configuration, and the checks on what sample() returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calobench.errors import ConfigError, GeometryError, PluginError
from calobench.generator import Generator
from calobench.generator.serialization import geometry_from_dict, geometry_to_dict
from calobench.geometry import Geometry, builtin_geometry, parse_binning_xml


class Faulty(Generator):
    """Returns whatever ``output`` makes of (n, n_voxels)."""

    name = "faulty"
    presets = {"smoke": {"mode": "ok"}, "quick": {"mode": "ok"}, "paper": {"mode": "ok"}}

    def fit(self, train, valid=None, *, seed=0, workdir=None):
        pass

    def sample(self, incident_energies, seed=None, batch_size=None):
        n, v = len(incident_energies), self.geometry.n_voxels
        mode = self.config["mode"]
        if mode == "short":
            return np.zeros((n, v - 1), dtype=np.float32)
        if mode == "float64":
            return np.zeros((n, v))
        if mode == "list":
            return np.zeros((n, v), dtype=np.float32).tolist()
        if mode == "negative":
            return np.full((n, v), -1.0, dtype=np.float32)
        return np.ones((n, v), dtype=np.float32)

    def save(self, directory: Path) -> None:
        pass

    @classmethod
    def load(cls, directory: Path, device=None):
        raise NotImplementedError


@pytest.mark.parametrize(
    "mode, message",
    [
        ("short", r"returned shape \(3, 367\) from sample\(\); expected \(3, 368\)"),
        ("float64", "returned dtype float64 from sample\\(\\); expected float32"),
        ("list", "returned list from sample\\(\\); expected a numpy array"),
        ("negative", "negative"),
    ],
)
def test_wrong_output_is_a_plugin_error_naming_the_generator(mode, message):
    model = Faulty(builtin_geometry("ds1-photons"), {"mode": mode}, preset="smoke")
    with pytest.raises(PluginError, match=message) as info:
        model.sample_showers(np.array([1e3, 2e3, 3e3]), seed=0)
    assert "faulty" in str(info.value)


def test_good_output_becomes_showers():
    model = Faulty(builtin_geometry("ds1-photons"), preset="smoke")
    showers = model.sample_showers([1e3, 2e3], seed=0)
    assert showers.energies.shape == (2, 368) and showers.incident_energies.dtype == np.float64


def test_constructor_keywords_and_config():
    model = Faulty(builtin_geometry("ds1-photons"), {"mode": "short"}, preset="paper", dataset="some-set", device="cpu")
    assert model.dataset == "some-set" and model.requested_device == "cpu" and model.config == {"mode": "short"}
    assert Faulty(builtin_geometry("ds1-photons")).dataset is None
    with pytest.raises(ConfigError, match="no preset 'huge'"):
        Faulty(builtin_geometry("ds1-photons"), preset="huge")
    with pytest.raises(ConfigError, match="no config key 'mdoe'.*did you mean 'mode'"):
        Faulty(builtin_geometry("ds1-photons"), {"mdoe": 1})


def test_supported_geometries_are_enforced():
    class OnlyCalogan(Faulty):
        name = "only-calogan"
        supported_geometries = ("calogan",)

    with pytest.raises(ConfigError, match="does not support geometry 'ds1-photons'; supported: calogan"):
        OnlyCalogan(builtin_geometry("ds1-photons"))


def test_geometry_round_trips_through_json():
    for name in ("ds1-photons", "calogan", "ds2"):
        assert geometry_to_dict(builtin_geometry(name)) == {"name": name}
        assert geometry_from_dict(geometry_to_dict(builtin_geometry(name))) == builtin_geometry(name)
    custom = parse_binning_xml(
        '<Bins><Bin pid="22" name="photon"><Layer id="0" r_edges="0,5,10" n_bin_alpha="3"/>'
        '<Layer id="1" r_edges="0,2" n_bin_alpha="1"/></Bin></Bins>',
        name="mine",
    )
    data = geometry_to_dict(custom)
    assert len(data["layers"]) == 2
    restored = geometry_from_dict(data)
    assert isinstance(restored, Geometry) and restored == custom and restored.name == "mine"
    assert geometry_from_dict(geometry_to_dict(builtin_geometry("ds1-photons").with_threshold(0.5))).threshold == 0.5
    with pytest.raises(GeometryError, match="malformed stored geometry"):
        geometry_from_dict({"name": "x", "layers": [{"id": 0}]})


def test_contract_check_catches_a_sample_that_ignores_the_seed():
    from calobench.testing import check_generator_contract, random_showers

    with pytest.raises(AssertionError, match="the seed does not change the sample"):
        check_generator_contract(Faulty, random_showers("ds1-photons", 8, seed=0))


def test_contract_check_applies_contract_config(tmp_path):
    from calobench.testing import check_generator_contract, random_showers

    class Prepared(Faulty):
        name = "prepared"
        seen: list = []

        @classmethod
        def contract_config(cls, train, valid, workdir):
            cls.seen.append(len(train))
            return {"mode": "short"}

    with pytest.raises(PluginError, match="returned shape"):
        check_generator_contract(Prepared, random_showers("ds1-photons", 8, seed=0))
    assert Prepared.seen == [8]
