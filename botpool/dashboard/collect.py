"""Read every host of an inventory for the dashboard: what the checks read, plus Prometheus.

No second collector: a refresh of one host is the checks' own reading (botpool.hosts.drift
read_host: the host snapshot; botpool.hosts.probe: every bot asked through its port;
botpool.core.health: the findings) with the host's Prometheus answers added to the probe's
command. So a refresh costs TWO remote commands per host, whatever its number of bots (one
connection per host, host keys verified: botpool.hosts.remote). A window other than the
last hour costs one more command per host, at most once per refresh interval.

Prometheus is asked the way botpool.hosts.prometheus asks it: from inside the monitoring
container, one `docker exec`, every query of the refresh at once.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from botpool.core import health, snapshot
from botpool.core.pipeline import Desired, HostRef, desired
from botpool.core.source import LayoutError
from botpool.dashboard import prometheus
from botpool.dashboard.model import HostReading
from botpool.hosts import probe
from botpool.hosts.prometheus import ask_command, split
from botpool.hosts.remote import RemoteError, RemoteHost


def prometheus_command(want: Desired, window: str, now: float) -> str:
    """Shell printing a section mark, then the JSON answers of every query of the window."""
    return ask_command(want.plan.layout, prometheus.queries(window, now))


class HostReader:
    """Reads one inventory host; its desired state is planned and rendered once."""

    def __init__(self, remote: RemoteHost) -> None:
        self.remote = remote
        self.lock = threading.Lock()  # one command at a time on the host's connection
        self._desired: Desired | None = None

    def want(self) -> Desired:
        if self._desired is None:
            self._desired = desired(HostRef(self.remote.layout, self.remote.layout_host))
        return self._desired

    def read(self, window: str = prometheus.DEFAULT_WINDOW) -> HostReading:
        """A full refresh: snapshot, then probe and Prometheus in one command."""
        reading = HostReading(self.remote.name, self.remote.layout_host, window=window)
        before = self.remote.commands
        with self.lock:
            try:
                want = self.want()
                reading.plan, reading.monitoring = want.plan, want.plan.layout.monitoring.enabled
                snap = snapshot.parse(self.remote.run(want.snapshot_command(), "the host snapshot"))
                command = probe.command_for(want, snap)
                if reading.monitoring:
                    command = prometheus_command(want, window, time.time()) + "\n" + command
                lines, answers, error = split(self.remote.run(command, "the bot probe"))
                seen = health.parse(lines)
                reading.snapshot, reading.health = snap, seen
                reading.findings = health.evaluate(want.host, snap, seen, want.plan.layout.checks)
                reading.answers, reading.prometheus_error = answers, error
            except (RemoteError, LayoutError) as exc:
                reading.error = str(exc)
            except (ValueError, KeyError, IndexError) as exc:  # a host printed nonsense
                reading.error = f"{self.remote.name}: unreadable answer: {type(exc).__name__}"
        reading.commands = self.remote.commands - before
        reading.read_at = time.time()
        return reading

    def history(self, base: HostReading, window: str) -> HostReading:
        """The same reading with Prometheus' answers over another window (one command)."""
        if base.error or not base.monitoring:
            return replace(base, window=window)
        before = self.remote.commands
        with self.lock:
            try:
                lines = self.remote.run(
                    prometheus_command(self.want(), window, time.time()), "asking Prometheus"
                )
                _, answers, error = split(lines)
            except (RemoteError, LayoutError) as exc:
                answers, error = {}, str(exc)
        return replace(
            base,
            window=window,
            answers=answers,
            prometheus_error=error,
            commands=self.remote.commands - before,
        )


class Fleet:
    """The latest reading of every host, refreshed in the background; other windows are
    read on demand and kept for one refresh interval."""

    def __init__(self, remotes: list[RemoteHost], interval_s: float) -> None:
        self.readers = [HostReader(r) for r in remotes]
        self.interval_s = interval_s
        self.readings: list[HostReading] = [
            HostReading(r.name, r.layout_host, error="not read yet") for r in remotes
        ]
        self.refreshes = 0
        self._windows: dict[str, tuple[float, list[HostReading]]] = {}
        self._window_lock = threading.Lock()

    def refresh(self) -> list[HostReading]:
        """Read every host in parallel (a host that is down costs its connect timeout)."""
        with ThreadPoolExecutor(max_workers=16) as pool:
            readings = list(pool.map(lambda reader: reader.read(), self.readers))
        self.readings = readings
        self.refreshes += 1
        return readings

    def run(self, stop: threading.Event) -> None:
        """Refresh every interval until stopped."""
        while not stop.is_set():
            began = time.monotonic()
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - one failed refresh must not end them all
                print(f"refresh failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            stop.wait(max(1.0, self.interval_s - (time.monotonic() - began)))

    def window(self, window: str) -> list[HostReading]:
        """Every host's reading, with Prometheus' answers over that window."""
        if window == prometheus.DEFAULT_WINDOW:
            return self.readings
        with self._window_lock:
            kept = self._windows.get(window)
            if kept and time.monotonic() - kept[0] < self.interval_s:
                return kept[1]
            current = self.readings
            with ThreadPoolExecutor(max_workers=16) as pool:
                pairs = zip(self.readers, current, strict=True)
                read = list(pool.map(lambda pair: pair[0].history(pair[1], window), pairs))
            self._windows[window] = (time.monotonic(), read)
            return read
