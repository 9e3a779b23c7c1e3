"""Keyring reload: the watcher and SIGHUP pick up other processes' changes, survive bad files."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
from pathlib import Path

import pytest

from parsec.auth import jws
from parsec.auth.keyring import KeyRing, KeyRingError
from parsec.auth.watcher import DEFAULT_INTERVAL, KeyRingWatcher, install_sighup

FAST = 0.01
WAIT = 10.0


class Outcomes:
    """An on_reload callback that queues each outcome for the test to await."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[KeyRingError | None] = asyncio.Queue()

    def __call__(self, error: KeyRingError | None) -> None:
        self.queue.put_nowait(error)

    async def next(self) -> KeyRingError | None:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    async def success(self) -> None:
        """Wait until a reload succeeds, skipping failures seen on the way."""
        while await self.next() is not None:
            pass

    async def failure(self) -> KeyRingError:
        """Wait until a reload fails."""
        while (error := await self.next()) is None:
            pass
        return error


def test_default_interval_is_five_seconds() -> None:
    """The default poll interval is the Go Parsec's KeyringPollInterval, 5 s."""
    assert DEFAULT_INTERVAL == 5.0


@pytest.mark.parametrize("interval", [0, -1, math.nan])
def test_interval_must_be_positive(tmp_path: Path, interval: float) -> None:
    """A zero, negative or NaN interval is refused at construction."""
    with pytest.raises(ValueError, match="interval must be a positive number"):
        KeyRingWatcher(KeyRing.open(tmp_path), interval=interval)


async def test_picks_up_another_rings_change(tmp_path: Path) -> None:
    """A key another KeyRing generates and promotes on the same file becomes visible here."""
    server = KeyRing.open(tmp_path)
    operator = KeyRing.open(tmp_path)
    outcomes = Outcomes()
    async with KeyRingWatcher(server, interval=FAST, on_reload=outcomes):
        key = operator.generate("ES256")
        operator.promote(key.id)
        await outcomes.success()
        while server.active.id != key.id:  # both writes may not land in one poll
            await outcomes.success()
    assert server.get(key.id) is not None
    assert server.active.alg == "ES256"


async def test_old_tokens_survive_a_watched_rotation(tmp_path: Path) -> None:
    """After the watcher reloads a rotation, tokens of the demoted key still verify."""
    server = KeyRing.open(tmp_path)
    token = jws.sign({"sub": "u"}, server.active)
    operator = KeyRing.open(tmp_path)
    outcomes = Outcomes()
    async with KeyRingWatcher(server, interval=FAST, on_reload=outcomes):
        new = operator.generate("EdDSA")
        operator.promote(new.id)
        while server.active.id != new.id:
            await outcomes.success()
    assert jws.verify(token, server)[1] == {"sub": "u"}


async def test_survives_a_corrupt_write(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A corrupt file is logged, the last good ring is kept, and a later fix is picked up."""
    server = KeyRing.open(tmp_path)
    before = server.keys()
    outcomes = Outcomes()
    async with KeyRingWatcher(server, interval=FAST, on_reload=outcomes):
        with caplog.at_level(logging.WARNING, logger="parsec.auth"):
            (tmp_path / "keyring.json").write_text('{"format_version": "2", "keys": [')
            error = await outcomes.failure()
        assert "is not a valid keyring" in str(error)
        assert server.keys() == before
        assert "keeping the last good one" in caplog.text
        fixed = KeyRing.open(tmp_path / "elsewhere")
        (tmp_path / "keyring.json").write_bytes(fixed.snapshot_json())
        await outcomes.success()
    assert server.active == fixed.active


async def test_survives_a_deleted_file(tmp_path: Path) -> None:
    """A deleted file keeps the ring as it was; the file coming back is reloaded."""
    server = KeyRing.open(tmp_path)
    before = server.keys()
    snapshot = server.snapshot_json()
    outcomes = Outcomes()
    async with KeyRingWatcher(server, interval=FAST, on_reload=outcomes):
        (tmp_path / "keyring.json").unlink()
        error = await outcomes.failure()
        assert "does not exist" in str(error)
        assert server.keys() == before
        (tmp_path / "keyring.json").write_bytes(snapshot)
        await outcomes.success()
    assert server.keys() == before


async def test_failing_callback_does_not_stop_the_watcher(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_reload that raises is logged and polling goes on."""
    server = KeyRing.open(tmp_path)
    operator = KeyRing.open(tmp_path)
    calls: asyncio.Queue[None] = asyncio.Queue()

    def explode(error: KeyRingError | None) -> None:
        calls.put_nowait(None)
        raise RuntimeError("callback bug")

    async with KeyRingWatcher(server, interval=FAST, on_reload=explode):
        operator.generate()
        await asyncio.wait_for(calls.get(), WAIT)
        second = operator.generate()
        while server.get(second.id) is None:
            await asyncio.wait_for(calls.get(), WAIT)
    assert "on_reload callback failed" in caplog.text


def test_poll_reports_changes(tmp_path: Path) -> None:
    """poll() reloads only when the file changed since the last look or the creation."""
    server = KeyRing.open(tmp_path)
    watcher = KeyRingWatcher(server)
    assert watcher.poll() is False
    key = KeyRing.open(tmp_path).generate()
    assert watcher.poll() is True
    assert server.get(key.id) == key
    assert watcher.poll() is False


async def test_change_before_start_is_noticed(tmp_path: Path) -> None:
    """A change between creating and starting the watcher is picked up once it runs."""
    server = KeyRing.open(tmp_path)
    outcomes = Outcomes()
    watcher = KeyRingWatcher(server, interval=FAST, on_reload=outcomes)
    key = KeyRing.open(tmp_path).generate()
    async with watcher:
        await outcomes.success()
    assert server.get(key.id) == key


async def test_ephemeral_ring_is_not_watched() -> None:
    """A ring without a file has nothing to watch: start and poll do nothing."""
    ring = KeyRing.open(None)
    async with KeyRingWatcher(ring, interval=FAST) as watcher:
        assert watcher.poll() is False


async def test_lifecycle_errors(tmp_path: Path) -> None:
    """A second start is refused; aclose is idempotent; a closed watcher cannot restart."""
    watcher = KeyRingWatcher(KeyRing.open(tmp_path), interval=FAST)
    await watcher.aclose()
    with pytest.raises(RuntimeError, match="started once"):
        await watcher.start()
    other = KeyRingWatcher(KeyRing.open(tmp_path), interval=FAST)
    await other.start()
    with pytest.raises(RuntimeError, match="started once"):
        await other.start()
    await other.aclose()
    await other.aclose()


async def test_aclose_ends_the_poller(tmp_path: Path) -> None:
    """While started there is one poller task; after aclose() there is none."""

    def pollers() -> list[asyncio.Task[object]]:
        return [task for task in asyncio.all_tasks() if task.get_name() == "parsec-keyring-watcher"]

    async with KeyRingWatcher(KeyRing.open(tmp_path), interval=FAST):
        assert len(pollers()) == 1
    assert pollers() == []


# -- SIGHUP -----------------------------------------------------------------------------------


async def test_sighup_reloads(tmp_path: Path) -> None:
    """SIGHUP to this process reloads the ring on the running loop."""
    server = KeyRing.open(tmp_path)
    key = KeyRing.open(tmp_path).generate("RS256")
    outcomes = Outcomes()
    uninstall = install_sighup(server, asyncio.get_running_loop(), on_reload=outcomes)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert await outcomes.next() is None
    finally:
        uninstall()
    assert server.get(key.id) == key


async def test_sighup_with_a_bad_file_keeps_the_ring(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A SIGHUP while the file is corrupt logs a warning and keeps the last good ring."""
    server = KeyRing.open(tmp_path)
    before = server.keys()
    (tmp_path / "keyring.json").write_text("garbage")
    outcomes = Outcomes()
    uninstall = install_sighup(server, asyncio.get_running_loop(), on_reload=outcomes)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        error = await outcomes.next()
    finally:
        uninstall()
    assert error is not None
    assert server.keys() == before
    assert "SIGHUP, but the keyring was not reloaded" in caplog.text


async def test_uninstall_restores_the_previous_handler(tmp_path: Path) -> None:
    """The uninstaller puts back the handler that was there before; calling it twice is fine."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda number, frame: seen.append(number))
    try:
        installed = signal.getsignal(signal.SIGHUP)
        uninstall = install_sighup(KeyRing.open(tmp_path), asyncio.get_running_loop())
        assert signal.getsignal(signal.SIGHUP) is not installed
        uninstall()
        uninstall()
        assert signal.getsignal(signal.SIGHUP) is installed
    finally:
        signal.signal(signal.SIGHUP, previous)


async def test_unexpected_failure_does_not_stop_the_watcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug-like exception while polling is logged and the next change is still reloaded."""
    server = KeyRing.open(tmp_path)
    real_reload = server.reload
    raised = asyncio.Event()
    outcomes = Outcomes()

    def reload_that_fails_once() -> None:
        if not raised.is_set():
            raised.set()
            raise RuntimeError("a bug")
        real_reload()

    monkeypatch.setattr(server, "reload", reload_that_fails_once)
    async with KeyRingWatcher(server, interval=FAST, on_reload=outcomes):
        KeyRing.open(tmp_path).generate()
        await asyncio.wait_for(raised.wait(), WAIT)
        key = KeyRing.open(tmp_path).generate()
        await outcomes.success()
    assert server.get(key.id) == key
    assert "keyring watcher failed to check" in caplog.text
