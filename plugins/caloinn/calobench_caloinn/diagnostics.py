"""Where a CaloINN INN's layer energies go wrong: the layer-energy fractions u per incident energy,
taken three ways -- from the reference showers, straight from the flow (its u dimensions inverted,
before any voxel is built), and from the generated showers -- so that a miss can be told apart from
a reconstruction error (flow and showers agree) or an inversion bug (they do not).

``python -m calobench_caloinn.diagnostics RUN_DIR REFERENCE.hdf5 [--showers N] [--seed S]`` prints
the medians per energy (u_0 = E_dep / (f E_inc), u_i = E_i / sum_{j>=i} E_j; Krause & Shih,
arXiv 2106.05285, as CaloINN uses them). For a ``caloinn-vae`` run it prints how sharp the showers
are -- the data's, the VAE's reconstructions from the encoder means, and generated ones: voxels above
1 MeV per shower, the share of the energy in voxels below 1 MeV, and the brightest voxel's share.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

from calobench.errors import ConfigError
from calobench.formats import read_showers
from calobench.nn.coupling import sample_flow
from calobench.showers import Showers
from calobench_caloinn.inn import CaloINN
from calobench_caloinn.preprocessing import inn_u, shares_and_u
from calobench_caloinn.vae_inn import CaloVAEINN


@dataclass(frozen=True)
class UMedians:
    """Median u's (n_layers,) at one incident energy (MeV), three ways."""

    energy_mev: float
    reference: np.ndarray
    flow: np.ndarray
    showers: np.ndarray


def _u(model: CaloINN, voxels: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
    assert model.u0_scale is not None
    return shares_and_u(
        voxels, energies, model.layer_sizes, model.u0_scale, model.empty_tail, clip_total=not model.published_u
    )[1]


def flow_u(model: CaloINN, energy_mev: float, n: int, seed: int) -> torch.Tensor:
    """(n, n_layers) u's drawn from the flow at one energy, inverted as generation inverts them."""
    modules = model._require_modules()
    c = model.config
    generator = torch.Generator(device=model.device).manual_seed(seed)
    energies = torch.full((n,), float(energy_mev), device=model.device)
    with torch.no_grad():
        values = sample_flow(modules["inn"], model.condition(energies), generator)[:, model.geometry.n_voxels :]
    return inn_u(
        values.double().cpu(),
        noise_width=float(c["noise_width"]),
        alpha=float(c["alpha"]),
        u_transform=str(c["u_transform"]),
        u_noise=float(c["u_noise"]),
        legacy=model.legacy,
    )


def u_medians(model: CaloINN, reference: Showers, n: int = 2000, seed: int = 0) -> list[UMedians]:
    """Median u's per distinct incident energy of ``reference`` (one row per energy)."""
    if not isinstance(model, CaloINN):
        raise ConfigError(f"the u diagnostics need a trained caloinn run, got {type(model).__name__}")
    incident = np.asarray(reference.incident_energies, dtype=np.float64)
    voxels = torch.as_tensor(np.asarray(reference.energies, dtype=np.float64))
    rows = []
    for energy in np.unique(incident):
        chosen = torch.as_tensor(incident == energy)
        reference_u = _u(model, voxels[chosen], torch.as_tensor(incident[incident == energy]))
        generated = torch.as_tensor(model.sample(np.full(n, energy, dtype=np.float32), seed=seed), dtype=torch.float64)
        shower_u = _u(model, generated, torch.full((n,), float(energy), dtype=torch.float64))
        rows.append(
            UMedians(
                float(energy),
                reference_u.median(dim=0).values.numpy(),
                flow_u(model, float(energy), n, seed).median(dim=0).values.numpy(),
                shower_u.median(dim=0).values.numpy(),
            )
        )
    return rows


def format_table(rows: list[UMedians]) -> str:
    """A plain-text table: one line per energy and way."""
    lines = []
    for row in rows:
        for label, values in (("reference", row.reference), ("flow", row.flow), ("showers", row.showers)):
            numbers = " ".join(f"{v:6.3f}" for v in values)
            lines.append(f"{row.energy_mev:>12.0f} MeV  {label:<9}  {numbers}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Sharpness:
    """Means over showers: voxels above 1 MeV, energy share below 1 MeV, brightest voxel's share."""

    label: str
    voxels_above_1mev: float
    energy_below_1mev: float
    brightest_share: float


def sharpness(label: str, voxels: np.ndarray) -> Sharpness:
    total = np.maximum(voxels.sum(axis=1), 1e-12)
    return Sharpness(
        label,
        float((voxels > 1.0).sum(axis=1).mean()),
        float((np.where(voxels < 1.0, voxels, 0.0).sum(axis=1) / total).mean()),
        float((voxels.max(axis=1) / total).mean()),
    )


def vae_sharpness(model: CaloVAEINN, reference: Showers, seed: int = 0) -> list[Sharpness]:
    """The data, the VAE's reconstructions from the encoder means, and generated showers."""
    shares, u, layers, incident = model._prepared(reference)
    with torch.no_grad():
        x, c = model._encoder_inputs(*(t.to(model.device) for t in (shares, u, incident)))
        mu, _ = model._require_modules()["vae"].encode(x, c)
        reco = model._decode_voxels(mu, u.to(model.device), layers.to(model.device), incident.to(model.device))
    generated = model.sample(np.asarray(reference.incident_energies), seed=seed)
    return [
        sharpness("data", np.asarray(reference.energies, dtype=np.float64)),
        sharpness("reconstructed", reco.double().cpu().numpy()),
        sharpness("generated", generated.astype(np.float64)),
    ]


def main(argv: list[str] | None = None) -> None:
    from calobench.generator.serialization import load_generator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a saved caloinn run directory")
    parser.add_argument("reference", help="reference showers (HDF5, CaloChallenge layout)")
    parser.add_argument(
        "--showers", type=int, default=2000, help="generated showers per energy (caloinn-vae: reference showers used)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = load_generator(args.run, device="cpu")
    if isinstance(model, CaloVAEINN):
        reference = read_showers(args.reference, geometry=model.geometry)[: args.showers]
        for row in vae_sharpness(model, reference, args.seed):
            print(
                f"{row.label:<13}  voxels > 1 MeV {row.voxels_above_1mev:7.1f}  energy below 1 MeV "
                f"{row.energy_below_1mev:6.3f}  brightest voxel {row.brightest_share:6.3f}"
            )
        return
    if not isinstance(model, CaloINN):
        raise SystemExit(f"{args.run} holds a {type(model).__name__}, not a caloinn or caloinn-vae run")
    reference = read_showers(args.reference, geometry=model.geometry)
    print(format_table(u_medians(model, reference, args.showers, args.seed)))


if __name__ == "__main__":
    main()
