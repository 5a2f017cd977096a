"""The data-set registry: real CaloChallenge/CaloGAN sets (download + checksum) and synthetic ones.

Typical use::

    from calobench.datasets import get_dataset, open_role
    with open_role("calochallenge-ds2", "reference") as showers:
        for chunk in showers.iter_chunks():
            ...
"""

from calobench.datasets.access import ensure_files, get_dataset, make_file, make_files, open_role, role_checksums
from calobench.datasets.cards import cards_dir, load_cards
from calobench.datasets.checksums import ChecksumStore, md5_file
from calobench.datasets.download import RetryPolicy, download
from calobench.datasets.local import STATES, FileStatus, file_status, verify
from calobench.datasets.spec import ROLES, DatasetSpec, FileSpec

__all__ = [
    "ROLES",
    "STATES",
    "ChecksumStore",
    "DatasetSpec",
    "FileSpec",
    "FileStatus",
    "RetryPolicy",
    "cards_dir",
    "download",
    "ensure_files",
    "file_status",
    "get_dataset",
    "load_cards",
    "make_file",
    "make_files",
    "md5_file",
    "open_role",
    "role_checksums",
    "verify",
]
