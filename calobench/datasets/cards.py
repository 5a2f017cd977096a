"""Reading the shipped data-set cards (``datasets/cards/*.toml``, see :mod:`calobench.datasets.spec`)."""

from __future__ import annotations

from pathlib import Path

from calobench.datasets.spec import DatasetSpec, Maker
from calobench.errors import DatasetError
from calobench.paths import resources_dir
from calobench.textfiles import read_toml


def cards_dir() -> Path:
    """The shipped ``cards`` directory (repository ``datasets/cards`` or the wheel's ``calobench/_datasets/cards``)."""
    return resources_dir() / "cards"


def card_kind(path: str | Path) -> str:
    """The ``kind`` of a card ("real" or "synthetic") without building the spec."""
    path = Path(path)
    data = read_toml(path, "data-set card", DatasetError)
    kind = data.get("kind")
    if kind not in ("real", "synthetic"):
        raise DatasetError(f"data-set card {path} is malformed: kind must be 'real' or 'synthetic', got {kind!r}")
    return kind


def load_cards(
    directory: str | Path | None = None, kind: str | None = None, maker: Maker | None = None
) -> list[DatasetSpec]:
    """Every card in ``directory`` (default: the shipped cards) of the given ``kind``, sorted by file name.

    A card that cannot be parsed raises :class:`DatasetError` naming the file.
    """
    directory = cards_dir() if directory is None else Path(directory)
    specs = []
    for path in sorted(directory.glob("*.toml")):
        if kind is not None and card_kind(path) != kind:
            continue
        spec = DatasetSpec.from_card(path, maker=maker)
        if spec.name != path.stem:
            raise DatasetError(
                f"data-set card {path} names the data set {spec.name!r}; the file must be called {spec.name}.toml"
            )
        specs.append(spec)
    return specs
