"""The antivirus client against the real clamd fixture, and against tiny misbehaving servers for the failure classes."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pydantic
import pytest

from auxip.ingest.scanner import ClamdScanner, ScanError, ScannerSettings, ScannerUnavailable, ScannerVersion
from auxip_testing.clamd import LIMITS, ClamdServer, eicar, run_clamd
from auxip_testing.process import free_port

SIGNATURE = "Auxip-Test-EICAR.UNOFFICIAL"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data, not a secret


def _scanner(url: str, **settings: float) -> ClamdScanner:
    return ClamdScanner(ScannerSettings(url=url, **settings))


@pytest.fixture
def scanner(clamd: ClamdServer) -> ClamdScanner:
    return _scanner(f"tcp://{clamd.host}:{clamd.port}", timeout_seconds=30, connect_timeout_seconds=2)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@contextlib.asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with server:
        yield f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _read_instream(reader: asyncio.StreamReader) -> int:
    """Consume an INSTREAM body like clamd does; returns its length."""
    total = 0
    while length := struct.unpack("!I", await reader.readexactly(4))[0]:
        await reader.readexactly(length)
        total += length
    return total


def _fake_clamd(instream_reply: bytes, version_reply: bytes = b"ClamAV 1.4.6\0", delay: float = 0.0) -> Handler:
    """A server that speaks the framing but answers what the test wants."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command = await reader.readuntil(b"\0")
        if command == b"zINSTREAM\0":
            await _read_instream(reader)
            await asyncio.sleep(delay)
            writer.write(instream_reply)
        elif command == b"zVERSION\0":
            writer.write(version_reply)
        await writer.drain()
        writer.close()

    return handle


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.integration
async def test_clean_file_is_clean_with_the_engine_version(
    scanner: ClamdScanner, clamd: ClamdServer, tmp_path: Path
) -> None:
    data = b"S1A_AUX_CAL_V20190228T092500.SAFE manifest\n" * 100
    verdict = await scanner.scan_path(_write(tmp_path / "manifest.safe", data))
    engine = clamd.version.removeprefix("ClamAV ")  # a private database: no "/<version>/<date>" parts
    assert (verdict.clean, verdict.signature, verdict.infected_member) == (True, None, None)
    assert (verdict.engine_version, verdict.signature_version) == (engine, None)
    assert verdict.scanned_bytes == len(data)
    assert verdict.elapsed_seconds > 0
    assert await scanner.version() == ScannerVersion(engine, None, None)
    await scanner.ping()


async def test_version_with_an_official_database_is_parsed() -> None:
    reply = b"ClamAV 1.4.6/27400/Wed Sep 18 08:35:41 2024\0"
    async with _server(_fake_clamd(b"stream: OK\0", version_reply=reply)) as url:
        scanner = _scanner(url, connect_timeout_seconds=2)
        assert await scanner.version() == ScannerVersion("1.4.6", "27400", "Wed Sep 18 08:35:41 2024")
        verdict = await scanner.scan_stream(_chunks(b"data"))
    assert (verdict.clean, verdict.engine_version, verdict.signature_version) == (True, "1.4.6", "27400")


@pytest.mark.integration
async def test_eicar_file_is_found_with_its_signature(scanner: ClamdScanner, tmp_path: Path) -> None:
    verdict = await scanner.scan_path(_write(tmp_path / "eicar.com", eicar()))
    assert (verdict.clean, verdict.signature, verdict.infected_member) == (False, SIGNATURE, None)
    assert verdict.scanned_bytes == len(eicar())


@pytest.mark.integration
async def test_eicar_in_the_middle_of_a_multi_megabyte_file_is_found(clamd: ClamdServer, tmp_path: Path) -> None:
    chunk = 64 * 1024
    # The signature straddles a chunk boundary, deep inside the file.
    data = _noise(40 * chunk - 30, seed=1) + eicar() + _noise(3 << 20, seed=2)
    scanner = _scanner(f"tcp://{clamd.host}:{clamd.port}", chunk_size=chunk, timeout_seconds=30)
    verdict = await scanner.scan_path(_write(tmp_path / "S1A_OPER_AUX_RESORB.EOF", data))
    assert (verdict.clean, verdict.signature, verdict.scanned_bytes) == (False, SIGNATURE, len(data))


@pytest.mark.integration
async def test_eicar_in_a_directory_tree_names_the_member_and_stops_there(
    scanner: ClamdScanner, tmp_path: Path
) -> None:
    safe = tmp_path / "S1A_AUX_CAL_V20190228T092500_G20190301T120000.SAFE"
    # Members are scanned in path order: these two come before the infected one, the others after it.
    before = {"data/s1a-aux-cal.xml": 2000, "data/sub/s1a-calibration.bin": 1 << 20}
    after = {"data/sub/s1a-noise.bin": 300, "manifest.safe": 500, "support/s1-object-types.xsd": 700}
    for seed, (name, size) in enumerate({**before, **after}.items()):
        _write(safe / name, _noise(size, seed))
    infected = _noise(1000, 9) + eicar() + _noise(1000, 10)
    _write(safe / "data/sub/s1a-eicar.bin", infected)
    verdict = await scanner.scan_path(safe)
    assert (verdict.clean, verdict.signature) == (False, SIGNATURE)
    assert verdict.infected_member == "data/sub/s1a-eicar.bin"
    assert verdict.scanned_bytes == sum(before.values()) + len(infected)


@pytest.mark.integration
async def test_symlinks_in_a_tree_are_not_followed(scanner: ClamdScanner, tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside" / "eicar.com", eicar())
    safe = tmp_path / "product.SAFE"
    _write(safe / "manifest.safe", b"<xfdu/>")
    (safe / "link.com").symlink_to(outside)
    (safe / "linked_dir").symlink_to(outside.parent, target_is_directory=True)
    verdict = await scanner.scan_path(safe)
    assert (verdict.clean, verdict.scanned_bytes) == (True, len(b"<xfdu/>"))
    with pytest.raises(ScanError, match="neither a regular file nor a directory"):
        await scanner.scan_path(safe / "link.com")


@pytest.mark.integration
async def test_empty_file_and_empty_directory_are_clean(scanner: ClamdScanner, tmp_path: Path) -> None:
    verdict = await scanner.scan_path(_write(tmp_path / "empty.xml", b""))
    assert (verdict.clean, verdict.scanned_bytes) == (True, 0)
    (tmp_path / "empty.SAFE").mkdir()
    assert (await scanner.scan_path(tmp_path / "empty.SAFE")).clean


@pytest.mark.integration
async def test_stream_chunks_are_reframed_and_empty_ones_skipped(clamd: ClamdServer) -> None:
    scanner = _scanner(f"tcp://{clamd.host}:{clamd.port}", chunk_size=4096, timeout_seconds=30)
    # An empty chunk sent as such would end the stream before the signature; a 3-chunk-size block must be split.
    verdict = await scanner.scan_stream(_chunks(b"header", b"", _noise(3 * 4096, 1) + eicar(), b"trailer"))
    assert (verdict.clean, verdict.signature) == (False, SIGNATURE)
    assert verdict.scanned_bytes == 6 + 3 * 4096 + len(eicar()) + 7
    assert (await scanner.scan_stream(_chunks())).clean


@pytest.mark.integration
async def test_a_failing_source_is_not_blamed_on_clamd(scanner: ClamdScanner) -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"first block"
        raise TimeoutError("the upstream download stalled")

    with pytest.raises(TimeoutError, match="upstream download stalled"):
        await scanner.scan_stream(source())


@pytest.mark.integration
@pytest.mark.slow
async def test_200_megabytes_are_scanned(scanner: ClamdScanner, tmp_path: Path) -> None:
    block = _noise(1 << 20, seed=3)
    path = tmp_path / "S1A_AUX_LARGE.bin"
    with path.open("wb") as file:
        for _ in range(200):
            file.write(block)
    # clamd's first large stream is several times slower than the next ones (the blocking harness client sees it too).
    for run in ("first", "second"):
        started = time.perf_counter()
        verdict = await scanner.scan_path(path)
        seconds = time.perf_counter() - started
        assert (verdict.clean, verdict.scanned_bytes) == (True, 200 << 20)
        print(f"\nclamd INSTREAM, {run} run: 200 MiB in {seconds:.2f} s = {200 / seconds:.0f} MiB/s")


async def test_closed_port_is_unavailable_at_once(tmp_path: Path) -> None:
    scanner = _scanner(f"tcp://127.0.0.1:{free_port()}", connect_timeout_seconds=2)
    started = time.perf_counter()
    with pytest.raises(ScannerUnavailable, match="cannot connect"):
        await scanner.scan_stream(_chunks(b"data"))
    with pytest.raises(ScannerUnavailable):
        await scanner.ping()
    assert time.perf_counter() - started < 1
    with pytest.raises(ScannerUnavailable, match="cannot connect"):
        await _scanner(f"unix://{tmp_path}/clamd.ctl").ping()


@contextlib.contextmanager
def _full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full: the kernel drops new SYNs, so a connect just hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with contextlib.ExitStack() as fillers:
            for _ in range(4):
                filler = fillers.enter_context(socket.socket())
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            time.sleep(0.1)
            yield port


async def test_connect_timeout_is_respected() -> None:
    with _full_backlog() as port:
        scanner = _scanner(f"tcp://127.0.0.1:{port}", connect_timeout_seconds=0.3, timeout_seconds=30)
        started = time.perf_counter()
        with pytest.raises(ScannerUnavailable, match=r"did not accept a connection within 0\.3 s"):
            await scanner.scan_stream(_chunks(b"data"))
        assert 0.25 < time.perf_counter() - started < 1.5


async def test_server_that_never_answers_times_out_as_unavailable() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1 << 16):
            pass  # swallow everything, answer nothing

    async with _server(silent) as url:
        scanner = _scanner(url, connect_timeout_seconds=0.3, timeout_seconds=0.5)
        with pytest.raises(ScannerUnavailable, match=r"did not answer PING within 0\.3 s"):
            await scanner.ping()
        with pytest.raises(ScannerUnavailable, match="did not answer VERSION"):
            await scanner.scan_stream(_chunks(b"data"))
    # VERSION answered but INSTREAM never is: the scan timeout applies.
    async with _server(_fake_clamd(b"stream: OK\0", delay=60)) as url:
        scanner = _scanner(url, connect_timeout_seconds=0.3, timeout_seconds=0.5)
        started = time.perf_counter()
        with pytest.raises(ScannerUnavailable, match=r"no verdict within 0\.5 s"):
            await scanner.scan_stream(_chunks(b"data"))
        assert 0.45 < time.perf_counter() - started < 2


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (b"INSTREAM size limit exceeded. ERROR\0", ScanError, r"^INSTREAM size limit exceeded\.$"),
        (b"stream: maybe\0", ScanError, "unexpected INSTREAM reply 'stream: maybe'"),
        (b"stream: OK, probably\0", ScanError, "unexpected INSTREAM reply"),
        (b"220 ftp.example.org ready\r\n", ScanError, "unexpected INSTREAM reply"),
        (b"stream: OK" + b"!" * 70_000, ScanError, "without its terminator"),
        (b"", ScannerUnavailable, "hung up without answering INSTREAM"),
    ],
)
async def test_replies_other_than_ok_or_found_are_never_clean(
    reply: bytes, error: type[Exception], message: str
) -> None:
    async with _server(_fake_clamd(reply)) as url:
        with pytest.raises(error, match=message):
            await _scanner(url, connect_timeout_seconds=1, timeout_seconds=2).scan_stream(_chunks(b"data"))


@pytest.mark.integration
async def test_stream_over_clamds_limit_is_a_scan_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A clamd of its own with a 1 MiB StreamMaxLength: it answers ERROR and hangs up while the client still sends.
    monkeypatch.setitem(LIMITS, "StreamMaxLength", "1M")
    with run_clamd() as small:
        scanner = _scanner(f"tcp://{small.host}:{small.port}", chunk_size=64 * 1024, timeout_seconds=30)
        with pytest.raises(ScanError, match=r"^INSTREAM size limit exceeded\.$") as raised:
            await scanner.scan_stream(_chunks(*[_noise(64 * 1024, seed) for seed in range(64)]))
        assert raised.value.detail == "INSTREAM size limit exceeded."
        assert (await scanner.scan_stream(_chunks(_noise(500_000, 1)))).clean


async def test_unix_socket_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "clamd.ctl"

    async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.readuntil(b"\0") == b"zPING\0":
            writer.write(b"PONG\0")
        writer.close()

    async with await asyncio.start_unix_server(pong, path):
        await _scanner(f"unix://{path}", connect_timeout_seconds=1).ping()


async def test_garbage_to_version_and_ping() -> None:
    async with _server(_fake_clamd(b"stream: OK\0", version_reply=b"SSH-2.0-OpenSSH_9.2\r\n")) as url:
        scanner = _scanner(url, connect_timeout_seconds=1)
        with pytest.raises(ScanError, match="unexpected VERSION reply"):
            await scanner.scan_stream(_chunks(b"data"))
        with pytest.raises(ScannerUnavailable, match="hung up without answering PING"):
            await scanner.ping()


async def test_concurrent_sessions_are_bounded() -> None:
    in_flight, peak = 0, 0

    async def slow_clamd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, peak
        if await reader.readuntil(b"\0") == b"zVERSION\0":
            writer.write(b"ClamAV 1.4.6\0")
        else:
            in_flight += 1
            peak = max(peak, in_flight)
            await _read_instream(reader)
            await asyncio.sleep(0.05)
            writer.write(b"stream: OK\0")
            in_flight -= 1
        await writer.drain()
        writer.close()

    async with _server(slow_clamd) as url:
        scanner = _scanner(url, max_concurrent_scans=4, connect_timeout_seconds=2)
        verdicts = await asyncio.gather(*(scanner.scan_stream(_chunks(b"x" * 1000)) for _ in range(16)))
    assert all(verdict.clean for verdict in verdicts)
    assert peak == 4


@pytest.mark.integration
async def test_concurrent_scans_get_their_own_verdicts(clamd: ClamdServer, tmp_path: Path) -> None:
    scanner = _scanner(f"tcp://{clamd.host}:{clamd.port}", max_concurrent_scans=4, timeout_seconds=30)
    files = []
    for index in range(50):
        infected = index % 7 == 3
        body = _noise(10_000 + index, index) + (eicar() if infected else b"") + _noise(500, index + 100)
        files.append((_write(tmp_path / f"file-{index:02d}.bin", body), infected))
    verdicts = await asyncio.gather(*(scanner.scan_path(path) for path, _ in files))
    assert [not verdict.clean for verdict in verdicts] == [infected for _, infected in files]
    assert {verdict.signature for verdict in verdicts if not verdict.clean} == {SIGNATURE}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "clamd://127.0.0.1:3310"}, "unsupported clamd url"),
        ({"url": "tcp://127.0.0.1"}, "needs a host and a port"),
        ({"url": "unix://run/clamd.ctl"}, "needs an absolute socket path"),
        ({"url": "tcp://127.0.0.1:3310", "chunk_size": 0}, "greater than or equal"),
        ({"url": "tcp://127.0.0.1:3310", "retries": 3}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_are_rejected(settings: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        ScannerSettings.model_validate(settings)


def test_settings_defaults() -> None:
    settings = ScannerSettings(url="unix:///run/clamav/clamd.ctl")
    assert (settings.timeout_seconds, settings.connect_timeout_seconds) == (300, 5)
    assert (settings.chunk_size, settings.max_concurrent_scans) == (1 << 20, 4)
