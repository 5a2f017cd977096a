"""``caloflow-student``: CaloFlow II -- an IAF Flow II distilled from a trained teacher
(arXiv 2110.11377; DS1 version arXiv 2210.14245).

The student loads its teacher from ``config["teacher_checkpoint"]`` (a directory saved by
``caloflow-teacher``, or a run directory holding one), copies the teacher's Flow I and Flow-II
permutations, and trains IAF blocks of the same structure by probability density distillation
(distillation.py). Its saved model holds Flow I and the student Flow II, so it samples without
the teacher: one MADE pass per Flow-II block.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.errors import CheckpointError, ConfigError
from calobench.generator.serialization import GENERATOR_FILE, read_json
from calobench.generator.settings import TrainSettings
from calobench.generator.training import Stage
from calobench.showers import Showers
from calobench_caloflow.common import CaloFlowGenerator, model_dtype, published_size
from calobench_caloflow.distillation import distillation_loss
from calobench_caloflow.flow import ConditionalFlow
from calobench_caloflow.flow_i import build_flow_i, sample_layer_energies
from calobench_caloflow.flow_ii import build_flow_ii, flow_permutations
from calobench_caloflow.preprocessing import flow_ii_context, voxels_to_flow_ii
from calobench_caloflow.presets import STUDENT_PRESETS
from calobench_caloflow.teacher import CaloFlowTeacher

#: Published student MADE widths (CFDS1 README: 736 photons, 500 pions; CF default 504 for CaloGAN).
STUDENT_HIDDEN = {"ds1-photons": 736, "ds1-pions": 500, "calogan": 504}
#: How the z-term's incident energies are drawn, as published per geometry: ``"data"`` from the
#: training showers' spectrum (photons: the shuffled DS1 list, run_gamma_2023.py:642-657, 701),
#: ``"uniform"`` uniformly between the smallest and the largest training energy (pions: 256 MeV to
#: 4.19 TeV, run_piplus_2023.py:726; CaloGAN: 1 to 100 GeV, AD_with_CF run.py:997).
Z_ENERGIES = {"ds1-photons": "data", "ds1-pions": "uniform", "calogan": "uniform"}


def find_teacher_dir(path: str | Path) -> Path:
    """The directory holding a saved ``caloflow-teacher``: ``path`` itself or one directory below it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(
            f"teacher_checkpoint {str(path)!r} does not exist; expected a directory saved by "
            f"caloflow-teacher (with {GENERATOR_FILE})"
        )
    candidates = [path] + (sorted(p.parent for p in path.glob(f"*/{GENERATOR_FILE}")) if path.is_dir() else [])
    for candidate in candidates:
        file = candidate / GENERATOR_FILE
        if file.is_file():
            data = read_json(file, what="saved-model description")
            if isinstance(data, dict) and data.get("generator") == CaloFlowTeacher.name:
                return candidate
    raise ConfigError(
        f"teacher_checkpoint {str(path)!r} holds no saved caloflow-teacher ({GENERATOR_FILE} naming "
        f"{CaloFlowTeacher.name!r}, in the directory or one level below)"
    )


class CaloFlowStudent(CaloFlowGenerator):
    """CaloFlow's IAF student: sampling costs one MADE pass per Flow-II block."""

    name = "caloflow-student"
    description = "CaloFlow II: IAF-RQS Flow II distilled from a caloflow-teacher (2110.11377); fast sampling"
    presets = STUDENT_PRESETS
    dependencies = {"teacher_checkpoint": CaloFlowTeacher.name}
    published_name = "CaloFlow student"

    @classmethod
    def contract_config(cls, train: Showers, valid: Showers | None, workdir: Path) -> dict[str, Any]:
        """A smoke-preset teacher trained under ``workdir`` for the generator contract check."""
        teacher = CaloFlowTeacher(train.geometry, preset="smoke", device="cpu")
        teacher.fit(train, valid, seed=0, workdir=workdir / "teacher-work")
        teacher.save(workdir / "teacher")
        return {"teacher_checkpoint": str(workdir / "teacher")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teacher_architecture: dict[str, Any] | None = None
        self._teacher: CaloFlowTeacher | None = None
        self._z_pool: torch.Tensor | None = None
        mode = self.config["z_energies"]
        self.z_energies: str = Z_ENERGIES[self.geometry.name] if mode is None else str(mode)
        if self.z_energies not in ("data", "uniform"):
            raise ConfigError(f"z_energies must be 'data', 'uniform' or null (published), got {mode!r}")
        self.accumulation = self._accumulation(self.config["accumulation"])

    @staticmethod
    def _accumulation(value: Any) -> tuple[tuple[int, int], ...]:
        """``accumulation`` as ``((first_epoch, k), ...)``: from ``first_epoch`` on, the gradients of ``k``
        batches are summed before a step (CaloFlow II on CaloGAN, AD_with_CF run.py:1103-1122)."""
        try:
            pairs = tuple((int(first), int(k)) for first, k in value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"accumulation must be a list of [first_epoch, k] pairs, got {value!r}") from exc
        if any(first < 0 or k < 1 for first, k in pairs):
            raise ConfigError(f"accumulation needs first_epoch >= 0 and k >= 1, got {value!r}")
        return pairs

    # ------------------------------------------------------------------ the teacher
    def load_teacher(self) -> CaloFlowTeacher:
        path = self.config.get("teacher_checkpoint")
        if not path:
            raise ConfigError(
                "caloflow-student needs a trained teacher: set teacher_checkpoint=DIR, a directory "
                "saved by caloflow-teacher (or a run directory holding one)"
            )
        teacher = CaloFlowTeacher.load(find_teacher_dir(path), device=self.device)
        if teacher.geometry != self.geometry:
            raise ConfigError(
                f"the teacher in {path} was trained on geometry {teacher.geometry.name!r}, "
                f"the student is asked for {self.geometry.name!r}"
            )
        for parameter in teacher._require_modules().parameters():
            parameter.requires_grad_(False)
        teacher._require_modules().eval()
        return teacher

    def fit_preprocessing(self, train: Showers) -> None:
        self._teacher = self.load_teacher()
        self.conventions = self._teacher.conventions
        self.teacher_architecture = self._teacher.architecture()

    def preprocessing_state(self) -> dict[str, Any]:
        return {**super().preprocessing_state(), "teacher_architecture": self.teacher_architecture}

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        super().load_preprocessing_state(state)
        self.teacher_architecture = dict(state["teacher_architecture"])

    # ------------------------------------------------------------------ architecture
    @property
    def student_hidden(self) -> int:
        return published_size(self.config["hidden"], self.geometry.name, STUDENT_HIDDEN, "hidden")

    def build_modules(self) -> dict[str, nn.Module]:
        arch = self.teacher_architecture
        if arch is None:
            raise CheckpointError("the student has no teacher architecture: fit() or load() it first")
        if self._teacher is not None:  # fit: copy the teacher's Flow I and permutations
            teacher_modules = self._teacher._require_modules()
            flow1 = copy.deepcopy(teacher_modules["flow1"]).cpu()
            permutations = flow_permutations(teacher_modules["flow2"])
        else:  # load: placeholders, overwritten by the saved weights and buffers
            flow1 = build_flow_i(
                self.geometry.n_layers,
                arch["flow1_blocks"],
                arch["flow1_hidden"],
                arch["flow1_hidden_layers"],
                arch["flow1_bins"],
                arch["tail_bound"],
                np.random.default_rng(0),
            )
            permutations = [torch.arange(self.geometry.n_voxels)] * (arch["flow2_blocks"] - 1)
        for parameter in flow1.parameters():
            parameter.requires_grad_(False)
        dtype = model_dtype(arch.get("dtype", "float32"))
        flow2 = build_flow_ii(
            self.layer_sizes,
            arch["flow2_blocks"],
            self.student_hidden,
            self.config["hidden_layers"],
            arch["flow2_bins"],
            arch["tail_bound"],
            self.config["dropout"],
            "iaf",
            permutations=permutations,
        ).to(dtype)
        if self._teacher is not None and self.config["init_from_teacher"]:
            self._initialize_from_teacher(flow2, arch)
        return {"flow1": flow1.to(dtype), "flow2": flow2}

    def _initialize_from_teacher(self, flow2: ConditionalFlow, arch: dict[str, Any]) -> None:
        """Start the IAF from the teacher's MADE weights (calobench's choice for ``quick``; the published
        students start from scratch). Block for block the IAF then already computes the teacher's spline
        parameters, evaluated on z instead of x: on synthetic DS1 photons the quick student's KL after its
        one epoch is 8.8 nats from the teacher's weights and 204 nats from scratch."""
        if (self.student_hidden, self.config["hidden_layers"]) != (arch["flow2_hidden"], arch["flow2_hidden_layers"]):
            raise ConfigError(
                f"init_from_teacher needs the teacher's MADE shape: hidden={arch['flow2_hidden']} and "
                f"hidden_layers={arch['flow2_hidden_layers']} (got {self.student_hidden} and "
                f"{self.config['hidden_layers']}); set init_from_teacher=false for another width"
            )
        assert self._teacher is not None
        flow2.load_state_dict(self._teacher._require_modules()["flow2"].state_dict())

    # ------------------------------------------------------------------ training
    def z_incident_energies(self, n: int, device: torch.device) -> torch.Tensor:
        """(n,) incident energies (MeV, float64) of the z-term, drawn with torch's global RNG as
        published for the geometry (:data:`Z_ENERGIES`), independent of the x-term's batch."""
        assert self._z_pool is not None
        pool = self._z_pool
        if self.z_energies == "data":
            chosen = pool[torch.randint(len(pool), (n,))]
        else:
            low, high = pool.min(), pool.max()
            chosen = low + (high - low) * torch.rand(n, dtype=torch.float64)
        return chosen.to(device)

    def distillation_loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict]:
        """The CaloFlow II loss (distillation.py), with the KL estimate among the extras: its epoch
        mean over the training steps picks the best epoch, as published (run_gamma_2023.py:666-675)."""
        assert self.modules is not None and self._teacher is not None and self.conventions is not None
        teacher_flow: ConditionalFlow = self._teacher._require_modules()["flow2"]
        student_flow: ConditionalFlow = self.modules["flow2"]
        incident, voxels = (t.to(torch.float64) for t in batch)
        dtype = next(student_flow.parameters()).dtype
        x, context_x = voxels_to_flow_ii(voxels, incident, self.layer_sizes, self.conventions)
        z_incident = self.z_incident_energies(len(incident), incident.device)
        with torch.no_grad():  # conditions of the z-term: drawn E_inc, layer energies from Flow I
            layer_energies = sample_layer_energies(self.modules["flow1"], z_incident, self.conventions)
        context_z = flow_ii_context(z_incident, layer_energies, self.conventions)
        noise = float(self.config["noise_width"]) * torch.randn(x.shape, device=x.device, dtype=dtype)
        parts = distillation_loss(
            teacher_flow,
            student_flow,
            x.to(dtype),
            context_x.to(dtype),
            noise,
            context_z.to(dtype),
            beta=float(self.config["beta"]),
            guided=bool(self.config["guided"]),
        )
        return parts.loss, {"x_term": float(parts.x_term), "z_term": float(parts.z_term), "kl": float(parts.kl)}

    def stages(self, train: Showers, valid: Showers | None) -> Iterable[Stage]:
        """One stage; no validation pass: the epoch with the lowest mean KL of its training steps is
        kept (``monitor="kl"``), as published."""
        assert self.modules is not None
        tensors = self.shower_tensors(train)
        self._z_pool = tensors[0].to(torch.float64)
        yield Stage(
            "student",
            {"flow2": self.modules["flow2"]},
            self.distillation_loss,
            tensors,
            None,
            TrainSettings.from_config(self.config),
            monitor="kl",
            accumulation=self.accumulation,
        )

    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        try:
            super().fit(train, valid, seed=seed, workdir=workdir)
        finally:
            self._teacher = None  # the trained student does not keep its teacher

    # ------------------------------------------------------------------ sampling
    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        modules = self._require_modules()
        return self.generate(modules["flow1"], modules["flow2"], incident_energies, generator)
