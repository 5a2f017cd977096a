"""The BIB-AE's networks: architecture choice, shapes, conditioning, critics, post-processor."""

from __future__ import annotations

import pytest
import torch
from calobench_bibae.networks import (
    Decoder,
    Encoder,
    LatentCritic,
    PostProcessor,
    ShowerCritic,
    architecture_for,
    build_decoder_body,
    build_features,
)

from calobench.errors import ConfigError
from calobench.geometry import builtin_geometry


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ds1-photons", "mlp"), ("ds1-pions", "mlp"), ("ds2", "conv3d"), ("ds3", "conv3d"), ("calogan", "layer_conv")],
)
def test_architecture_per_geometry(name, expected):
    assert architecture_for(builtin_geometry(name)) == expected
    assert architecture_for(builtin_geometry(name), "mlp") == "mlp"


def test_unsuitable_architectures_are_refused():
    with pytest.raises(ConfigError, match="conv3d"):
        architecture_for(builtin_geometry("calogan"), "conv3d")
    with pytest.raises(ConfigError, match="layer_conv"):
        architecture_for(builtin_geometry("ds2"), "layer_conv")
    with pytest.raises(ConfigError, match="architecture"):
        architecture_for(builtin_geometry("ds2"), "transformer")


@pytest.mark.parametrize("name", ["ds1-photons", "ds2", "calogan"])
def test_encoder_decoder_critic_shapes(name):
    torch.manual_seed(0)
    geometry = builtin_geometry(name)
    arch, n_voxels, batch = architecture_for(geometry), geometry.n_voxels, 3
    encoder = Encoder(build_features(geometry, arch, [2, 4], []), 1, [8], 5)
    decoder = Decoder(build_decoder_body(geometry, arch, 12 + 1, [2, 4], [8]))
    critic = ShowerCritic(
        build_features(geometry, arch, [2, 4], [8]), build_features(geometry, arch, [2, 4], [8]), n_voxels, 1, 8
    )
    x, c = torch.rand(batch, n_voxels), torch.randn(batch, 1)
    mu, logvar = encoder(x, c)
    assert mu.shape == logvar.shape == (batch, 5)
    x_hat = decoder(torch.randn(batch, 12), c)
    assert x_hat.shape == (batch, n_voxels) and (x_hat >= 0).all()
    assert critic(x, x_hat, c).shape == (batch,)
    # conditioning reaches every network
    assert not torch.equal(
        decoder(torch.zeros(1, 12), torch.zeros(1, 1)), decoder(torch.zeros(1, 12), torch.ones(1, 1))
    )
    assert not torch.equal(encoder(x[:1], c[:1])[0], encoder(x[:1], c[:1] + 1)[0])
    assert not torch.equal(critic(x[:1], x[:1], c[:1]), critic(x[:1], x[:1], c[:1] + 1))


def test_the_conv3d_decoder_is_equivariant_to_angular_rotations_of_its_coarse_grid():
    """The circular padding makes the angle a ring: no angular bin is an edge."""
    torch.manual_seed(0)
    geometry = builtin_geometry("ds2")
    features = build_features(geometry, "conv3d", [3], [])
    x = torch.rand(2, geometry.n_voxels)
    grid = x.reshape(2, 1, 45, 16, 9)
    rolled = torch.roll(grid, 2, dims=3).reshape(2, -1)  # stride 2: a 2-bin rotation is one coarse bin
    out, out_rolled = (features.net(t.reshape(2, 1, 45, 16, 9)) for t in (x, rolled))
    torch.testing.assert_close(out_rolled, torch.roll(out, 1, dims=3))


def test_latent_critic_acts_per_component():
    critic = LatentCritic()
    z = torch.randn(4, 6)
    scores = critic(z)
    assert scores.shape == (4, 6)
    swapped = z[:, [1, 0, 2, 3, 4, 5]]
    torch.testing.assert_close(critic(swapped)[:, 0], scores[:, 1])
    assert [m.out_features for m in critic.net if isinstance(m, torch.nn.Linear)] == [50, 100, 50, 1]


def test_post_processor_starts_as_the_identity_and_is_per_voxel():
    torch.manual_seed(0)
    post = PostProcessor(10, 1, 8)
    s_hat, energy, c = torch.rand(3, 10), torch.rand(3, 1), torch.randn(3, 1)
    torch.testing.assert_close(post(s_hat, energy, c), s_hat)
    torch.nn.init.normal_(post.last.weight)
    out = post(s_hat, energy, c)
    assert out.shape == (3, 10) and (out >= 0).all()
    assert not torch.equal(out, post(s_hat, energy + 1, c))  # conditioned on the energy sum
