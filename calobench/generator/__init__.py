"""The generator interface, presets, output checks and the shared torch base.

* :mod:`calobench.generator.base` -- :class:`Generator`, presets, ``--set`` overrides.
* :mod:`calobench.generator.torch_base` -- :class:`TorchGenerator` (device, seeding, staged
  training with checkpoints and resume, save/load, batched sampling).
* :mod:`calobench.generator.training` -- :class:`Stage`, :class:`Trainer` (one training stage).
* :mod:`calobench.generator.settings` -- :class:`TrainSettings`, :func:`with_training_defaults`.
* :mod:`calobench.generator.baselines` -- ``baseline-uncorrelated`` and ``simulator-truth``.
* :mod:`calobench.generator.runs` -- training run directories (``calobench train``) and sampling
  from them (``calobench sample``); :mod:`calobench.generator.cli` holds the commands.
* :mod:`calobench.generator.examples` -- :class:`TinyGaussian`, a minimal complete TorchGenerator.
* :mod:`calobench.generator.schedules`, :mod:`~calobench.generator.device`,
  :mod:`~calobench.generator.seeding`, :mod:`~calobench.generator.checkpoint`,
  :mod:`~calobench.generator.serialization` -- the small pieces.

torch is imported only when the torch pieces are used (``from calobench.generator.torch_base import
TorchGenerator``), so that the interface stays importable cheaply.
"""

from calobench.generator.base import PRESETS, Generator, parse_override, resolve_config

__all__ = ["PRESETS", "Generator", "parse_override", "resolve_config"]
