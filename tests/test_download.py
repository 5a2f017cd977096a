"""End-to-end tests of the data-set download against a local HTTP server on 127.0.0.1.

The server serves small generated HDF5 files, honours ``Range: bytes=N-`` and can misbehave on
request: drop the connection half-way, ignore the range, answer 503, stall, or serve a different
length than the card says.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib
import logging
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from calobench.cli.main import main
from calobench.datasets import DatasetSpec, FileSpec, RetryPolicy, download, file_status, verify
from calobench.datasets.checksums import ChecksumStore
from calobench.datasets.local import corrupt_path, partial_path
from calobench.errors import ChecksumError, DatasetError, DownloadError
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider
from calobench.testing import write_random_file

BLOCK = 4096


# ---------------------------------------------------------------------- the server
@dataclass
class Behaviour:
    """How the server treats one path; the ``*_once`` flags apply to the first GET only."""

    drop_once: bool = False  # send half the body, then close the connection
    ignore_range: bool = False  # always answer 200 with the whole file
    fail_once: int | None = None  # answer this HTTP status once (e.g. 503)
    stall_once: float = 0.0  # sleep this long before answering once
    status: int | None = None  # always answer this HTTP status (e.g. 404)
    body: bytes | None = None  # serve these bytes instead of the file's
    gets: int = 0


@dataclass
class FileServer:
    """A threaded HTTP server on loopback with its files, behaviours and a request log."""

    base: str
    files: dict[str, bytes]
    behaviours: dict[str, Behaviour]
    log: list[tuple[str, str | None, int]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def requests(self, name: str) -> list[tuple[str | None, int]]:
        return [(rng, status) for path, rng, status in self.log if path == f"/{name}"]


def _handler(server: FileServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

        def _record(self, status: int) -> None:
            server.log.append((self.path, self.headers.get("Range"), status))

        def do_GET(self) -> None:
            behaviour = server.behaviours.setdefault(self.path, Behaviour())
            behaviour.gets += 1
            first = behaviour.gets == 1
            name = self.path.lstrip("/")
            if behaviour.status is not None or name not in server.files:
                status = behaviour.status or 404
                self._record(status)
                self.send_error(status)
                return
            if first and behaviour.fail_once:
                self._record(behaviour.fail_once)
                self.send_error(behaviour.fail_once)
                return
            if first and behaviour.stall_once:
                time.sleep(behaviour.stall_once)
            body = behaviour.body if behaviour.body is not None else server.files[name]
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if match and not behaviour.ignore_range:
                start = int(match.group(1))
                if start >= len(body):
                    self._record(416)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._record(206)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self._record(200)
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            try:
                if first and behaviour.drop_once:
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, size check)
                self.close_connection = True

    return Handler


@pytest.fixture(scope="module")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Two small CaloChallenge files (ds1-photons geometry), a few hundred kB each."""
    directory = tmp_path_factory.mktemp("payloads")
    return {
        name: write_random_file(directory / name, "ds1-photons", n=150, seed=seed).read_bytes()
        for seed, name in enumerate(["train.hdf5", "reference.hdf5"])
    }


@pytest.fixture
def server(payloads: dict[str, bytes]) -> Iterator[FileServer]:
    state = FileServer("", dict(payloads), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALOBENCH_DATA", str(tmp_path / "data"))


class Sleeps(list):
    """An injectable ``sleep`` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def remote_spec(
    server: FileServer,
    *,
    md5s: dict[str, str] | None = None,
    sizes: bool = True,
    urls: dict[str, str | None] | None = None,
    name: str = "test-remote",
) -> DatasetSpec:
    files = []
    for role, filename in (("train", "train.hdf5"), ("reference", "reference.hdf5")):
        data = server.files[filename]
        files.append(
            FileSpec(
                name=filename,
                role=role,
                url=(urls or {}).get(filename, server.url(filename)),
                md5=(md5s or {}).get(filename, md5(data)),
                size=len(data) if sizes else None,
                n_showers=150,
            )
        )
    return DatasetSpec(
        name=name,
        title="test data set on a local server",
        kind="real",
        geometry="ds1-photons",
        particle="photon",
        format="calochallenge",
        files=tuple(files),
        energy_range_mev=(1e3, 1e5),
        doi="10.0000/test.1",
    )


def fetch(spec: DatasetSpec, sleeps: Sleeps, **kwargs):
    options = dict(
        progress=False, retry=RetryPolicy(attempts=3, delays=(1.0, 5.0), sleep=sleeps), timeout=5.0, block_size=BLOCK
    )
    options.update(kwargs)
    return download(spec, **options)


def assert_installed(spec: DatasetSpec, server: FileServer) -> None:
    for status in file_status(spec):
        assert status.state == "verified", status
        assert status.path.read_bytes() == server.files[status.file.name]
        assert not partial_path(status.path).exists()


# ---------------------------------------------------------------------- tests
def test_clean_download_with_progress(server: FileServer, sleeps: Sleeps, capsys: pytest.CaptureFixture) -> None:
    spec = remote_spec(server)
    statuses = fetch(spec, sleeps, progress=True)
    assert [s.state for s in statuses] == ["verified", "verified"]
    assert_installed(spec, server)
    assert sleeps == []
    assert server.requests("train.hdf5") == [(None, 200)]
    err = capsys.readouterr().err
    assert "train.hdf5" in err and "reference.hdf5" in err  # the tqdm bars, labelled by file
    # the checksum is remembered: verified again without downloading or re-hashing
    store = ChecksumStore(spec.directory())
    assert store.cached_md5("train.hdf5") == md5(server.files["train.hdf5"])
    fetch(spec, sleeps)
    assert len(server.requests("train.hdf5")) == 1


def test_interrupted_transfer_resumes_within_one_run(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server)
    server.behaviours["/train.hdf5"] = Behaviour(drop_once=True)
    fetch(spec, sleeps)
    assert_installed(spec, server)
    half = len(server.files["train.hdf5"]) // 2
    assert server.requests("train.hdf5") == [(None, 200), (f"bytes={half}-", 206)]
    assert sleeps == [1.0]


def test_interrupted_transfer_resumes_from_part_file_on_next_run(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server)
    server.behaviours["/train.hdf5"] = Behaviour(drop_once=True)
    with pytest.raises(DownloadError) as info:
        fetch(spec, sleeps, retry=RetryPolicy(attempts=1, sleep=sleeps))
    message = str(info.value)
    half = len(server.files["train.hdf5"]) // 2
    assert server.url("train.hdf5") in message
    assert f"{half} bytes so far" in message and "resumes" in message and "truncated" in message
    path = spec.path(spec.files[0])
    assert not path.exists()
    assert partial_path(path).stat().st_size == half
    assert file_status(spec)[0].state == "partial"

    fetch(spec, sleeps)
    assert_installed(spec, server)
    assert server.requests("train.hdf5")[-1] == (f"bytes={half}-", 206)


def test_wrong_checksum_leaves_nothing_under_the_final_name(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server, md5s={"train.hdf5": "0" * 32})
    with pytest.raises(ChecksumError) as info:
        fetch(spec, sleeps)
    assert "0" * 32 in str(info.value) and md5(server.files["train.hdf5"]) in str(info.value)
    path = spec.path(spec.files[0])
    assert not path.exists() and not partial_path(path).exists()
    assert corrupt_path(path).read_bytes() == server.files["train.hdf5"]
    assert file_status(spec, ["train.hdf5"])[0].state == "missing"


def test_server_that_ignores_range_restarts_from_zero(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server)
    path = spec.path(spec.files[0])
    path.parent.mkdir(parents=True)
    partial_path(path).write_bytes(b"\xff" * 1000)  # a stale partial download that must not be kept
    server.behaviours["/train.hdf5"] = Behaviour(ignore_range=True)
    fetch(spec, sleeps)
    assert_installed(spec, server)
    assert server.requests("train.hdf5") == [("bytes=1000-", 200)]


def test_416_with_a_complete_part_file_installs_it(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server, sizes=False)  # size unknown: only the server can say the part is complete
    path = spec.path(spec.files[0])
    path.parent.mkdir(parents=True)
    partial_path(path).write_bytes(server.files["train.hdf5"])
    fetch(spec, sleeps, files=["train.hdf5"])
    assert path.read_bytes() == server.files["train.hdf5"]
    assert server.requests("train.hdf5") == [(f"bytes={len(server.files['train.hdf5'])}-", 416)]


def test_416_with_an_overlong_part_file_restarts(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server, sizes=False)
    path = spec.path(spec.files[0])
    path.parent.mkdir(parents=True)
    size = len(server.files["train.hdf5"])
    partial_path(path).write_bytes(b"\0" * (size + 10))
    fetch(spec, sleeps, files=["train.hdf5"])
    assert path.read_bytes() == server.files["train.hdf5"]
    assert server.requests("train.hdf5") == [(f"bytes={size + 10}-", 416), (None, 200)]
    assert sleeps == []


def test_connection_refused_is_a_clear_download_error(server: FileServer, sleeps: Sleeps) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/train.hdf5"
    spec = remote_spec(server, urls={"train.hdf5": url})
    with pytest.raises(DownloadError) as info:
        fetch(spec, sleeps, files=["train.hdf5"])
    message = str(info.value)
    assert url in message and "refused" in message.lower() and "after 3 attempts" in message
    assert "nothing was received" in message
    assert sleeps == [1.0, 5.0]
    assert not spec.path(spec.files[0]).exists()


def test_404_fails_at_once_without_retrying(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server, urls={"train.hdf5": server.url("gone.hdf5")})
    with pytest.raises(DownloadError) as info:
        fetch(spec, sleeps, files=["train.hdf5"])
    assert "HTTP 404" in str(info.value) and server.url("gone.hdf5") in str(info.value)
    assert server.requests("gone.hdf5") == [(None, 404)]
    assert sleeps == []


def test_transient_http_error_and_timeout_are_retried(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server)
    server.behaviours["/train.hdf5"] = Behaviour(fail_once=503)
    server.behaviours["/reference.hdf5"] = Behaviour(stall_once=1.0)
    fetch(spec, sleeps, timeout=0.3)
    assert_installed(spec, server)
    assert sleeps == [1.0, 1.0]
    assert [s for _, s in server.requests("train.hdf5")] == [503, 200]


def test_server_offering_a_different_size_than_the_card(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server)
    server.behaviours["/train.hdf5"] = Behaviour(body=server.files["train.hdf5"] + b"extra")
    with pytest.raises(DownloadError, match="offers .* bytes but the card says"):
        fetch(spec, sleeps, files=["train.hdf5"])
    assert not spec.path(spec.files[0]).exists()


def test_not_enough_disk_space(server: FileServer, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = remote_spec(server)
    usage = shutil.disk_usage(Path.cwd())
    download_module = importlib.import_module("calobench.datasets.download")
    monkeypatch.setattr(download_module.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(DownloadError, match="not enough disk space"):
        fetch(spec, sleeps)
    assert server.log == []


def test_corrupt_local_file_is_moved_aside_and_fetched_again(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server)
    path = spec.path(spec.files[0])
    path.parent.mkdir(parents=True)
    bad = bytearray(server.files["train.hdf5"])
    bad[-1] ^= 0xFF
    path.write_bytes(bytes(bad))
    fetch(spec, sleeps)
    assert_installed(spec, server)
    assert corrupt_path(path).read_bytes() == bytes(bad)


def test_file_without_md5_is_trusted_on_first_use(
    server: FileServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    spec = remote_spec(server, md5s={"train.hdf5": None}, sizes=False)
    with caplog.at_level(logging.WARNING, "calobench.datasets"):
        fetch(spec, sleeps)
    assert "no published md5" in caplog.text
    status = file_status(spec, ["train.hdf5"])[0]
    assert status.state == "verified" and status.md5_origin == "download"
    assert status.expected_md5 == md5(server.files["train.hdf5"])
    # a later change of the file is caught against the recorded md5
    path = status.path
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert verify(spec, ["train.hdf5"], progress=False)[0].state == "corrupt"


def test_file_without_url_explains_the_manual_download(server: FileServer, sleeps: Sleeps) -> None:
    spec = remote_spec(server, urls={"train.hdf5": None})
    with pytest.raises(DownloadError) as info:
        fetch(spec, sleeps)
    message = str(info.value)
    assert "https://doi.org/10.0000/test.1" in message
    assert str(spec.path(spec.files[0])) in message and "calobench datasets path test-remote" in message


def test_download_refuses_synthetic_sets(server: FileServer) -> None:
    spec = DatasetSpec(
        name="synthetic-x",
        title="x",
        kind="synthetic",
        geometry="ds1-photons",
        particle="photon",
        format="calochallenge",
        energy_range_mev=(1e3, 1e5),
        files=(FileSpec("a.hdf5", "train"), FileSpec("b.hdf5", "reference")),
        maker=lambda *args, **kwargs: None,
    )
    with pytest.raises(DatasetError, match="datasets make synthetic-x"):
        download(spec)


def test_cli_download_and_verify(
    server: FileServer, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = remote_spec(server, name="cli-remote")
    host = PluginHost(entry_points=[])
    host.datasets.add(spec.name, spec, Provider("tests", "tests", "0"))
    previous = set_host(host)
    try:
        assert main(["datasets", "download", "cli-remote", "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert out.count("verified") == 2
        assert main(["datasets", "verify", "cli-remote", "--force", "--no-progress"]) == 0
        spec.path(spec.files[1]).unlink()
        assert main(["datasets", "verify", "cli-remote", "--no-progress"]) == 1
        captured = capsys.readouterr()
        assert "reference.hdf5 missing" in captured.err and "datasets download cli-remote" in captured.err
    finally:
        set_host(previous)
