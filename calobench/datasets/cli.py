"""``calobench datasets ...``: list, inspect, download, verify, locate, make and plot data sets."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from calobench.cli.command import Command
from calobench.cli.types import count, seed
from calobench.datasets.access import ensure_files, get_dataset, make_files
from calobench.datasets.download import download, landing_page
from calobench.datasets.local import FileStatus, file_status, human_size, origin_text, verify
from calobench.datasets.spec import ROLES, DatasetSpec
from calobench.errors import CalobenchError, ChecksumError, DatasetError


# ---------------------------------------------------------------------- formatting
def server_size(spec: DatasetSpec) -> str:
    """Total size of the files on the server, as far as the card knows it."""
    if spec.kind != "real":
        return "made locally"
    files = spec.unique_files()
    known = [f.size for f in files if f.size is not None]
    unknown = len(files) - len(known)
    if not known:
        return "unknown"
    return human_size(sum(known)) + (f" + {unknown} unknown" if unknown else "")


def role_showers(spec: DatasetSpec, role: str) -> str:
    """Showers in a role: exact where the card knows them, ``~121k`` where only approximate."""
    total, approximate = 0, False
    for file in spec.files_for(role):
        if file.rows is not None:
            total += file.rows[1] - file.rows[0]
        elif file.n_showers is not None:
            total += file.n_showers
        elif spec.extra.get("approx_showers_per_file"):
            total += int(spec.extra["approx_showers_per_file"])
            approximate = True
        else:
            return "?"
    if approximate:
        return f"~{total / 1000:.0f}k"
    return str(total)


def local_state(statuses: list[FileStatus]) -> str:
    """One word when all files agree (``verified``), else counts (``1 verified, 1 missing``)."""
    counts = Counter(s.state for s in statuses)
    if len(counts) == 1:
        state = next(iter(counts))
        return state if len(statuses) == 1 else f"{state} (all {len(statuses)})"
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def status_lines(statuses: list[FileStatus], spec: DatasetSpec) -> list[str]:
    lines = []
    for s in statuses:
        roles = "+".join(dict.fromkeys(f.role for f in spec.files if f.name == s.file.name))
        size = "-" if s.local_size is None else human_size(s.local_size)
        if s.expected_size is not None:
            size += f" / {human_size(s.expected_size)}"
        lines.append(f"  {s.file.name:<26} {roles:<17} {s.state:<19} {size:<21} {s.detail}")
    return lines


# ---------------------------------------------------------------------- subcommands
def _list(args: argparse.Namespace) -> int:
    from calobench.plugins import datasets

    registry = datasets()
    header = (
        f"{'name':<28} {'kind':<10} {'geometry':<12} {'particle':<9} {'showers train/ref':<18} "
        f"{'size on server':<22} local state"
    )
    print(header)
    for entry in registry.entries():
        spec: DatasetSpec = entry.value
        showers = f"{role_showers(spec, 'train')} / {role_showers(spec, 'reference')}"
        print(
            f"{spec.name:<28} {spec.kind:<10} {spec.geometry:<12} {spec.particle:<9} {showers:<18} "
            f"{server_size(spec):<22} {local_state(file_status(spec))}"
        )
    return 0


def _info(args: argparse.Namespace) -> int:
    from calobench.plugins import datasets

    spec = get_dataset(args.name)
    geometry = spec.geometry_object
    low, high = spec.energy_range_mev
    print(f"{spec.name}: {spec.title}")
    rows = [
        ("kind", spec.kind),
        ("provided by", str(datasets().provider(spec.name))),
        ("card", str(spec.card) if spec.card else "-"),
        ("format", spec.format),
        ("geometry", f"{spec.geometry} ({geometry.n_layers} layers, {geometry.n_voxels} voxels)"),
        ("particle", spec.particle),
        ("energy range", f"{low:.10g} - {high:.10g} MeV"),
        (
            "showers",
            f"train {role_showers(spec, 'train')}, reference {role_showers(spec, 'reference')}"
            + (f", extra {role_showers(spec, 'extra')}" if spec.files_for("extra") else ""),
        ),
        ("size on server", server_size(spec)),
        ("DOI", f"{spec.doi} (https://doi.org/{spec.doi})" if spec.doi else "-"),
        ("landing page", landing_page(spec) or "-"),
        ("license", spec.license or "-"),
        ("citation", spec.citation or "-"),
        ("description", spec.description or "-"),
    ]
    rows += [(key, str(value)) for key, value in sorted(spec.extra.items()) if key != "landing_page"]
    rows.append(("directory", str(spec.directory())))
    width = max(len(key) for key, _ in rows) + 2
    for key, value in rows:
        print(f"  {key + ':':<{width}}{value}")
    print("files:")
    for s in file_status(spec):
        file = s.file
        uses = ", ".join(
            f"{e.role}" + (f" rows {e.rows[0]}:{e.rows[1]}" if e.rows else "")
            for e in spec.files
            if e.name == file.name
        )
        print(f"  - {file.name} ({uses})")
        if spec.kind == "synthetic":
            source = f"made locally (`calobench datasets make {spec.name}`)"
        else:
            source = file.url or "none: download by hand from " + (landing_page(spec) or "the source")
        print(f"      url:      {source}")
        print("      size:     " + (f"{file.size} bytes ({human_size(file.size)})" if file.size else "not published"))
        print(f"      showers:  {file.n_showers if file.n_showers is not None else 'not stated'}")
        if file.md5:
            md5 = f"{file.md5} (published)"
        elif s.expected_md5:
            md5 = f"none published; {s.expected_md5} {origin_text(s.md5_origin)} (trust on first use)"
        else:
            md5 = "none published; trust on first use: the md5 is recorded the first time the file is verified"
        print(f"      md5:      {md5}")
        print(f"      local:    {s.path}")
        print(f"      state:    {s.state}" + (f" ({s.detail})" if s.detail else ""))
    return 0


def _report(spec: DatasetSpec, statuses: list[FileStatus]) -> int:
    print(f"{spec.name}:")
    for line in status_lines(statuses, spec):
        print(line)
    bad = [s for s in statuses if s.state != "verified"]
    if not bad:
        return 0
    summary = ", ".join(f"{s.file.name} {s.state}" for s in bad)
    error = ChecksumError if any(s.state == "corrupt" for s in bad) else DatasetError
    action = "make" if spec.kind == "synthetic" else "download"
    raise error(
        f"data set {spec.name!r}: {len(bad)} of {len(statuses)} files not verified ({summary}); "
        f"`calobench datasets {action} {spec.name}` fetches what is missing"
    )


def _download(args: argparse.Namespace) -> int:
    spec = get_dataset(args.name)
    statuses = download(spec, args.files, progress=not args.no_progress, include_extra=args.all)
    skipped = [f.name for f in spec.unique_files() if f.name not in {s.file.name for s in statuses}]
    code = _report(spec, statuses)
    if skipped:
        print(f"not downloaded (role extra): {', '.join(skipped)}; add --all or --files to fetch them")
    return code


def _verify(args: argparse.Namespace) -> int:
    spec = get_dataset(args.name)
    return _report(spec, verify(spec, args.files, progress=not args.no_progress, force=args.force))


def _path(args: argparse.Namespace) -> int:
    spec = get_dataset(args.name)
    if args.role is not None and not spec.files_for(args.role):
        raise DatasetError(f"data set {spec.name!r} has no {args.role!r} files")
    files = spec.files_for(args.role) if args.role else spec.files
    for path in dict.fromkeys(spec.path(f) for f in files):
        print(path)
    return 0


def _make(args: argparse.Namespace) -> int:
    spec = get_dataset(args.name)
    for path, made in make_files(spec, args.role, n_showers=args.showers, seed=args.seed, force=args.force):
        print(f"made {path}" if made else f"kept {path} (exists; --force makes it again)")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        from calobench.plots.overview import write_overview_plots
    except ModuleNotFoundError as exc:
        raise CalobenchError(f"plotting is not available in this installation ({exc})") from exc
    source: str | Sequence[Any]  # a shower file, or the parts of a data set
    if Path(args.source).exists():
        source = args.source
    else:
        try:
            spec = get_dataset(args.source)
        except DatasetError as exc:
            raise DatasetError(f"{args.source!r} is neither a shower file nor a data set: {exc}") from None
        source = ensure_files(spec, args.role)
    for path in write_overview_plots(source, Path(args.out), max_showers=args.max_showers):
        print(path)
    return 0


# ---------------------------------------------------------------------- parser
def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND", required=True)

    def add(name: str, help: str, run) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(_datasets_run=run)
        return p

    add("list", "every registered data set: kind, geometry, particle, showers, size, local state", _list)
    p = add("info", "the whole card of a data set, with local paths and states", _info)
    p.add_argument("name")
    p = add("download", "download a real data set (resumable, md5-verified)", _download)
    p.add_argument("name")
    p.add_argument("--files", nargs="+", metavar="FILE", help="only these files (default: train and reference)")
    p.add_argument("--all", action="store_true", help="also the files of role 'extra'")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p = add("verify", "check the local files against their md5 checksums", _verify)
    p.add_argument("name")
    p.add_argument("--files", nargs="+", metavar="FILE", help="only these files")
    p.add_argument("--force", action="store_true", help="re-hash even files whose checksum is cached")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p = add("path", "print the local paths of a data set's files (where to put files fetched by hand)", _path)
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES, help="only the files of this role")
    p = add("make", "make the files of a synthetic data set", _make)
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES, help="only the files of this role (default: all)")
    p.add_argument("--showers", type=count("--showers"), metavar="N", help="showers per file (default: the card's)")
    p.add_argument("--seed", type=seed(), metavar="S", help="random seed (default: the card's)")
    p.add_argument("--force", action="store_true", help="make files again even if they exist")
    p = add("show", "write overview plots of a data set's role or of a shower file", _show)
    p.add_argument("source", metavar="NAME|FILE", help="a data-set name or a shower file")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the PNG files")
    p.add_argument("--role", choices=ROLES, default="reference", help="role to plot (default: reference)")
    p.add_argument("--max-showers", type=count("--max-showers"), metavar="N", help="plot at most N showers")


def _run(args: argparse.Namespace) -> int:
    return int(args._datasets_run(args) or 0)


COMMAND = Command("datasets", "list, inspect, download, verify, locate and make data sets", _add_arguments, _run)
