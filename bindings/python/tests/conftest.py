"""Shared helpers for the tests of the `ocs` Python package (the uniffi
bindings of ocs-ffi). bindings/python/run.sh builds and installs the wheel,
then runs pytest on this folder."""

import asyncio
import os
import pathlib
import threading
import time

import pytest

import ocs

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = ROOT / "target" / "python"

# Long enough for Kamailio's 5 s presence NOTIFY timer plus a retry.
TIMEOUT = 15.0


class Recorder:
    """Collects what listeners report (on an ocs thread) for the test
    (on the asyncio thread) to wait for."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def add(self, item):
        with self._lock:
            self._items.append(item)

    def items(self):
        with self._lock:
            return list(self._items)

    def clear(self):
        with self._lock:
            self._items.clear()

    async def wait_for(self, pred, what, timeout=TIMEOUT, since=0):
        """The first item from index `since` on that `pred` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            for item in self.items()[since:]:
                if pred(item):
                    return item
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {self.items()}")
            await asyncio.sleep(0.05)


class Presence(ocs.PresenceListener):
    """Records ("presence", ContactPresence) and ("ended", uri, reason)."""

    def __init__(self):
        self.rec = Recorder()

    def on_presence(self, presence):
        self.rec.add(("presence", presence))

    def on_ended(self, uri, reason):
        self.rec.add(("ended", uri, reason))

    async def wait(self, pred, what, timeout=TIMEOUT):
        item = await self.rec.wait_for(
            lambda i: i[0] == "presence" and pred(i[1]), what, timeout
        )
        return item[1]


class Messages(ocs.ImListener):
    """Records ("message", from, text) and ("typing", from, active)."""

    def __init__(self):
        self.rec = Recorder()

    def on_message(self, sender, text):
        self.rec.add(("message", sender, text))

    def on_typing(self, sender, active):
        self.rec.add(("typing", sender, active))


class Log(ocs.Logger):
    """The process-wide logger: every record, for assertions."""

    def __init__(self):
        self.rec = Recorder()

    def log(self, record):
        self.rec.add(record)


LOG = Log()


@pytest.fixture(scope="session", autouse=True)
def logger():
    # A logger can be set once per process.
    ocs.set_logger(LOG, ocs.LogLevel.VERBOSE)
    with pytest.raises(ocs.OcsError.InvalidArgument):
        ocs.set_logger(Log(), ocs.LogLevel.INFO)
    return LOG


@pytest.fixture(autouse=True)
def print_log(logger):
    """Prints the test's log records; pytest shows them when it fails."""
    start = len(logger.rec.items())
    yield
    for r in logger.rec.items()[start:]:
        print(f"{r.level.name:7} {r.event_id:4} {r.user}: {r.message}")


@pytest.fixture(scope="session")
def out_dir():
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


def run(coro, timeout=60):
    """Runs a test coroutine on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def kamailio_port():
    """Kamailio's port from the environment or target/kamailio.env
    (written by scripts/kamailio.sh start); None when it is not running."""
    port = os.environ.get("OCS_KAMAILIO_PORT")
    env = ROOT / "target" / "kamailio.env"
    if not port and env.exists():
        for line in env.read_text().splitlines():
            if line.startswith("OCS_KAMAILIO_PORT="):
                port = line.split("=", 1)[1].strip()
    return int(port) if port else None
