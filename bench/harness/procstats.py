"""Process CPU and memory from /proc: utime+stime (clock ticks) and VmRSS/VmHWM."""
from __future__ import annotations

import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # comm (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    return cpu_ticks(pid) / CLK_TCK


def mem_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


class RssSampler:
    """Samples one process's VmRSS every `interval` seconds in a thread; `peak_kib` is the highest
    value seen while it ran."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                rss = mem_kib(self.pid).get("VmRSS", 0)
            except (FileNotFoundError, ProcessLookupError):
                return
            self.peak_kib = max(self.peak_kib, rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def wait_quiescent(pids: list[int], window: float = 0.25, max_ticks: int = 1,
                   timeout: float = 10.0) -> float:
    """Waits until none of `pids` used more than `max_ticks` clock ticks of CPU over `window`
    seconds (background flushing, compaction, GC done); returns the seconds waited."""
    def ticks(p):
        try:
            return cpu_ticks(p)
        except (FileNotFoundError, ProcessLookupError):
            return 0  # gone: counts as idle

    start = time.monotonic()
    while True:
        before = {p: ticks(p) for p in pids}
        time.sleep(window)
        after = {p: ticks(p) for p in pids}
        if all(after[p] - before[p] <= max_ticks for p in pids):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return time.monotonic() - start


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def busy_processes(exclude: set[int], min_ticks: int = 5, window: float = 1.0) -> list[str]:
    """Other processes that used CPU during a short window (so a results file can say when
    something else was competing for the two cores)."""
    def snapshot():
        out = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid in exclude:
                continue
            try:
                out[pid] = cpu_ticks(pid)
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError, PermissionError):
                pass
        return out
    first = snapshot()
    time.sleep(window)
    second = snapshot()
    busy = []
    for pid, ticks in second.items():
        used = ticks - first.get(pid, ticks)
        if used >= min_ticks:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
            except OSError:
                cmd = "?"
            busy.append(f"pid {pid} {100.0 * used / CLK_TCK / window:.0f}% cpu: {cmd}")
    return busy


def machine_busy_ticks() -> int:
    """CPU ticks of user, nice and system time on all CPUs since boot (/proc/stat); interrupt and
    softirq time (loopback networking) is left out, it is not in any process's utime/stime."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    return fields[0] + fields[1] + fields[2]


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
