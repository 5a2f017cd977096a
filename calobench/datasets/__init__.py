"""The data-set registry: real CaloChallenge/CaloGAN sets (download + checksum) and synthetic ones."""

from calobench.datasets.spec import ROLES, DatasetSpec, FileSpec

__all__ = ["ROLES", "DatasetSpec", "FileSpec"]
