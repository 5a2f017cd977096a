"""``caloflow-teacher``: CaloFlow I -- Flow I (layer energies) and the MAF Flow II (voxels), trained by
maximum likelihood in two stages (arXiv 2106.05285; DS1 version arXiv 2210.14245)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.generator.seeding import derive_seed
from calobench.generator.settings import TrainSettings
from calobench.generator.training import Stage
from calobench.showers import Showers
from calobench_caloflow.common import CaloFlowGenerator, model_dtype, published_size
from calobench_caloflow.flow_i import build_flow_i, flow_i_inputs
from calobench_caloflow.flow_ii import build_flow_ii
from calobench_caloflow.preprocessing import add_noise, layer_sums, voxels_to_flow_ii
from calobench_caloflow.presets import TEACHER_PRESETS

#: Published Flow-II MADE widths (CFDS1 README: 378 photons, 533 pions; the code default 378 for CaloGAN).
TEACHER_HIDDEN = {"ds1-photons": 378, "ds1-pions": 533, "calogan": 378}


class CaloFlowTeacher(CaloFlowGenerator):
    """CaloFlow's MAF teacher: exact density, sampling costs one MADE pass per voxel and block."""

    name = "caloflow-teacher"
    description = "CaloFlow I: Flow I (layer energies) + MAF-RQS Flow II (voxels), max. likelihood (2106.05285)"
    presets = TEACHER_PRESETS
    published_name = "CaloFlow teacher"

    # ------------------------------------------------------------------ architecture
    def fit_preprocessing(self, train: Showers) -> None:
        self.conventions = self.conventions_from_data(train)

    def build_flows(self, rng: np.random.Generator) -> dict[str, nn.Module]:
        c = self.config
        dtype = model_dtype(c["dtype"])
        flow1 = build_flow_i(
            self.geometry.n_layers,
            c["flow1_blocks"],
            c["flow1_hidden"],
            c["flow1_hidden_layers"],
            c["flow1_bins"],
            c["tail_bound"],
            rng,
        )
        hidden = published_size(c["flow2_hidden"], self.geometry.name, TEACHER_HIDDEN, "flow2_hidden")
        flow2 = build_flow_ii(
            self.layer_sizes,
            c["flow2_blocks"],
            hidden,
            c["flow2_hidden_layers"],
            c["flow2_bins"],
            c["tail_bound"],
            c["flow2_dropout"],
            "maf",
            rng=rng,
        )
        return {"flow1": flow1.to(dtype), "flow2": flow2.to(dtype)}

    def build_modules(self) -> dict[str, nn.Module]:
        # permutations drawn from the fit seed; on load they are overwritten by the saved buffers
        return self.build_flows(np.random.default_rng(derive_seed(self._fit_seed, "permutations")))

    # ------------------------------------------------------------------ training
    def flow1_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """-mean log p(u | E_inc) of Flow I, layer energies taken after the voxel noise."""
        assert self.conventions is not None and self.modules is not None
        incident, voxels = (t.to(torch.float64) for t in batch)
        noisy = add_noise(voxels, self.conventions.noise_flow1_mev)
        inputs, context = flow_i_inputs(layer_sums(noisy, self.layer_sizes), incident, self.conventions)
        flow = self.modules["flow1"]
        dtype = next(flow.parameters()).dtype
        return -flow.log_prob(inputs.to(dtype), context.to(dtype)).mean()

    def flow2_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """-mean log p(x | E_inc, E_i) of Flow II on noisy, layer-normalized logit voxels."""
        assert self.conventions is not None and self.modules is not None
        incident, voxels = (t.to(torch.float64) for t in batch)
        inputs, context = voxels_to_flow_ii(voxels, incident, self.layer_sizes, self.conventions)
        flow = self.modules["flow2"]
        dtype = next(flow.parameters()).dtype
        return -flow.log_prob(inputs.to(dtype), context.to(dtype)).mean()

    def stages(self, train: Showers, valid: Showers | None) -> Iterable[Stage]:
        assert self.modules is not None
        tensors = self.shower_tensors(train)
        valid_tensors = None if valid is None or len(valid) == 0 else self.shower_tensors(valid)
        yield Stage(
            "flow1",
            {"flow1": self.modules["flow1"]},
            self.flow1_loss,
            tensors,
            valid_tensors,
            TrainSettings.from_config(self.config, "flow1_"),
        )
        yield Stage(
            "flow2",
            {"flow2": self.modules["flow2"]},
            self.flow2_loss,
            tensors,
            valid_tensors,
            TrainSettings.from_config(self.config, "flow2_"),
        )

    # ------------------------------------------------------------------ sampling
    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        modules = self._require_modules()
        return self.generate(modules["flow1"], modules["flow2"], incident_energies, generator)

    def architecture(self) -> dict[str, Any]:
        """What a student needs to rebuild this teacher's Flow I and the shape of its Flow II."""
        c = self.config
        return {
            key: c[key]
            for key in (
                "flow1_blocks",
                "flow1_hidden",
                "flow1_hidden_layers",
                "flow1_bins",
                "flow2_blocks",
                "flow2_bins",
                "flow2_hidden_layers",
                "tail_bound",
                "dtype",
            )
        } | {"flow2_hidden": published_size(c["flow2_hidden"], self.geometry.name, TEACHER_HIDDEN, "flow2_hidden")}
