"""Exception hierarchy: every error a user can cause is a :class:`CalobenchError`.

The command line prints such errors as one line on stderr (``--debug`` shows the traceback);
anything else is a bug and is shown in full.
"""

from __future__ import annotations


class CalobenchError(Exception):
    """Base class of all errors that carry a message meant for the user."""


class GeometryError(CalobenchError):
    """A binning XML file or a geometry request is malformed or unknown."""


class ShowerFileError(CalobenchError):
    """A shower file or in-memory shower array does not have the expected shape or content."""


class VoxelCountError(ShowerFileError):
    """Showers whose voxel count does not fit the geometry they are read in."""


class RegistryError(CalobenchError):
    """A name is registered twice, or an unknown name was asked for."""


class PluginError(CalobenchError):
    """A plugin failed to load or registered something invalid."""


class DatasetError(CalobenchError):
    """A data set is unknown, incomplete on disk or its card is malformed."""


class DownloadError(DatasetError):
    """A download failed (network, HTTP status, interrupted transfer)."""


class ChecksumError(DownloadError):
    """A downloaded or local file does not match its published checksum."""


class ConfigError(CalobenchError):
    """A model configuration, preset or ``--set key=value`` override is invalid."""


class CheckpointError(CalobenchError):
    """A checkpoint directory is missing, incomplete or from an incompatible model."""


class OutputError(CalobenchError):
    """An output cannot be written: a directory or file in the way, no permission, the disk full."""
