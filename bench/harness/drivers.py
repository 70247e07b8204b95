"""Client drivers. A driver turns a workload into client processes; the harness times them and
reads the broker's /proc around them.

Every workload step is split in two: run() is what is measured (wall time, client CPU from the
child's rusage), verify() comes after, outside the measurement, and raises when what was moved
is not exactly what was sent.

Drivers:
  kcat        throughput: kcat -P -l FILE / kcat -C -e -f '%s\\n' (librdkafka)
  confluent   end-to-end latency: confluent-kafka producer + consumer processes (harness/e2e_worker.py)
  samsa-perf  `samsa perf produce|consume|e2e --json` (Samsa's Swift client), when the binary has it
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import payload

HARNESS = Path(__file__).resolve().parent


class DriverError(RuntimeError):
    pass


@dataclass
class ChildResult:
    returncode: int
    wall_s: float
    cpu_s: float  # user + system of the child (from wait4's rusage)
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def crash_summary(stderr: str) -> str:
    """The telling lines of a Swift crash report (runtime failure, crashed thread, its first
    frames) or else the end of stderr."""
    lines = stderr.splitlines()
    keep = [l.strip() for l in lines if "runtime failure" in l or "Fatal error" in l]
    for i, l in enumerate(lines):
        if l.rstrip().endswith("crashed:"):
            keep.append(l.strip())
            keep += [x.strip() for x in lines[i + 1:i + 6] if x.strip()]
            break
    return "\n".join(keep) if keep else stderr[-2000:]


ACTIVE: set[subprocess.Popen] = set()  # client processes not reaped yet (killed if the harness is stopped)


def spawn(cmd: list[str], out: Path, err: Path, env: dict | None = None) -> subprocess.Popen:
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env)
    ACTIVE.add(proc)
    return proc


def kill_active():
    for proc in list(ACTIVE):
        if proc.returncode is None:
            try:
                proc.kill()
                os.waitpid(proc.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        ACTIVE.discard(proc)


def reap(proc: subprocess.Popen, t0: float, out: Path, err: Path, timeout: float) -> ChildResult:
    """Waits for proc (killing it after timeout) and returns its exit code, wall time and CPU."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            ACTIVE.discard(proc)
            raise DriverError(f"{proc.args[0]} timed out after {timeout}s: {' '.join(map(str, proc.args))}\n"
                              f"stderr: {err.read_text(errors='replace')[-2000:]}")
        time.sleep(0.002)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    ACTIVE.discard(proc)
    return ChildResult(proc.returncode, wall, ru.ru_utime + ru.ru_stime, out, err)


def run_child(cmd: list[str], out: Path, err: Path, timeout: float, env: dict | None = None) -> ChildResult:
    t0 = time.monotonic()
    proc = spawn(cmd, out, err, env)
    return reap(proc, t0, out, err, timeout)


@dataclass
class Step:
    """One measured client action. run() returns client-side figures (must include records,
    payload_bytes, wall_s, client_cpu_s); verify() returns what was checked or raises."""
    label: str
    run: Callable[[], dict]
    verify: Callable[[dict], dict] = field(default=lambda r: {"checked": "nothing"})


def topic_watermarks(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    """{partition: (low, high)} from ListOffsets (earliest, latest), via confluent-kafka."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "samsa-bench-check", "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=15)
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)
                for p in sorted(md.topics[topic].partitions)}
    finally:
        c.close()


# --------------------------------------------------------------------------------------------
# kcat


class KcatDriver:
    name = "kcat"
    workloads = ("produce", "consume")

    def __init__(self, work_dir: Path, librdkafka: str = "wheel", timeout: float = 900):
        self.work_dir = Path(work_dir)
        self.kcat = shutil.which("kcat")
        self.timeout = timeout
        self.env = dict(os.environ)
        self.librdkafka_source = "Debian's librdkafka (system)"
        self.available = self.kcat is not None
        self.unavailable_reason = "" if self.available else "kcat not on PATH"
        if self.available and librdkafka == "wheel":
            # Debian bookworm's kcat 1.7.1 links librdkafka 2.0.2, which cannot parse tansu 0.6.0's
            # ApiVersions v3 response ("Read underflow" at byte 274/279). Both brokers are driven
            # through the same newer librdkafka instead: the one the confluent-kafka wheel ships.
            import confluent_kafka
            libs = glob.glob(str(Path(confluent_kafka.__file__).resolve().parent.parent
                                 / "confluent_kafka.libs" / "librdkafka*.so*"))
            if not libs:
                raise DriverError("confluent-kafka wheel has no bundled librdkafka (confluent_kafka.libs)")
            libdir = self.work_dir / "kcat-librdkafka"
            libdir.mkdir(parents=True, exist_ok=True)
            link = libdir / "librdkafka.so.1"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(libs[0])
            self.env["LD_LIBRARY_PATH"] = str(libdir) + (":" + self.env["LD_LIBRARY_PATH"]
                                                          if self.env.get("LD_LIBRARY_PATH") else "")
            self.librdkafka_source = f"confluent-kafka wheel's {Path(libs[0]).name} via LD_LIBRARY_PATH"
        self.version = self._version() if self.available else "n/a"

    def _version(self) -> str:
        out = subprocess.run([self.kcat, "-V"], capture_output=True, text=True, env=self.env).stdout
        line = next((l for l in out.splitlines() if l.startswith("Version")), out.strip())
        return line

    def producer_config(self, acks: str) -> dict:
        return {"acks": acks, "linger.ms": 5, "batch.size": 1000000, "batch.num.messages": 10000,
                "compression.codec": "none", "enable.idempotence": "false",
                "queue.buffering.max.messages": 100000, "queue.buffering.max.kbytes": 1048576,
                "max.in.flight.requests.per.connection": 1000000, "message.max.bytes": 1000000}

    def consumer_config(self) -> dict:
        return {"fetch.wait.max.ms": 500, "fetch.min.bytes": 1, "fetch.max.bytes": 52428800,
                "max.partition.fetch.bytes": 1048576, "queued.min.messages": 100000,
                "queued.max.messages.kbytes": 65536, "check.crcs": "false",
                # librdkafka >= 2.1 backs off fetching for fetch.queue.backoff.ms (default 1000) each
                # time kcat's output falls behind (queued.min.messages reached): a 1 s client-side
                # stall that hits whichever broker serves faster. 0 = fetch again as soon as there is room.
                "fetch.queue.backoff.ms": 0}

    def settings(self) -> dict:
        return {"produce": "kcat -P -b BOOTSTRAP -t TOPIC -l DATAFILE (one record per line) -X ...",
                "producer_config(acks=1 | all)": self.producer_config("<acks>"),
                "consume": "kcat -C -b BOOTSTRAP -t TOPIC -o beginning -e -c COUNT -q -f '%s\\n' -X ... > FILE",
                "consumer_config": self.consumer_config(),
                "librdkafka": self.librdkafka_source}

    @staticmethod
    def _x(config: dict) -> list[str]:
        out = []
        for k, v in config.items():
            out += ["-X", f"{k}={v}"]
        return out

    def produce(self, bootstrap: str, topic: str, ds: payload.DataSet, acks: str, tag: str) -> Step:
        out, err = self.work_dir / f"{tag}.out", self.work_dir / f"{tag}.err"
        cmd = [self.kcat, "-P", "-b", bootstrap, "-t", topic, "-l", str(ds.path)] + self._x(self.producer_config(acks))

        def run():
            r = run_child(cmd, out, err, self.timeout, self.env)
            stderr = r.stderr()
            if r.returncode != 0 or "ERROR" in stderr or "failed" in stderr.lower():
                raise DriverError(f"kcat produce failed (exit {r.returncode}): {stderr[-2000:]}")
            return {"records": ds.count, "payload_bytes": ds.payload_bytes, "wall_s": r.wall_s,
                    "client_cpu_s": r.cpu_s}

        # Produced data is checked by the consume step that always follows (every record read
        # back exactly once, byte-identical).
        return Step(f"kcat produce {ds.count}x{ds.size}B acks={acks}", run,
                    lambda r: {"checked": "by the consume step of the same data set"})

    def consume(self, bootstrap: str, topic: str, ds: payload.DataSet, partitions: int, tag: str) -> Step:
        out, err = self.work_dir / f"{tag}.out", self.work_dir / f"{tag}.err"
        # -c N: exit on the N-th record rather than waiting for end-of-partition (which costs an
        # empty long-poll fetch, up to fetch.wait.max.ms); -e still ends it if fewer arrive.
        # Records beyond N are caught by the watermark check in verify().
        cmd = [self.kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-c", str(ds.count), "-q",
               "-f", "%s\n"] + self._x(self.consumer_config())

        def run():
            r = run_child(cmd, out, err, self.timeout, self.env)
            stderr = r.stderr()
            if r.returncode != 0 or "ERROR" in stderr:
                raise DriverError(f"kcat consume failed (exit {r.returncode}): {stderr[-2000:]}")
            return {"records": ds.count, "payload_bytes": ds.payload_bytes, "wall_s": r.wall_s,
                    "client_cpu_s": r.cpu_s}

        def verify(_):
            try:
                checked = payload.verify_lines(out, ds.count, ds.size, ordered=(partitions == 1))
            finally:
                out.unlink(missing_ok=True)
            # Nothing beyond the N records read: read the whole topic again to its end (unmeasured).
            checked["full_reread"] = self.count_sizes(bootstrap, topic, ds.count, ds.size, tag + "-reread")
            # Diagnostic only (tansu 0.6.0's ListOffsets latest is below the real end of the log).
            marks = topic_watermarks(bootstrap, topic)
            checked["listoffsets_watermarks"] = {str(p): list(m) for p, m in marks.items()}
            checked["listoffsets_count_matches"] = sum(hi - lo for lo, hi in marks.values()) == ds.count
            return checked

        return Step(f"kcat consume {ds.count}x{ds.size}B", run, verify)

    def count_sizes(self, bootstrap: str, topic: str, count: int, size: int, tag: str) -> dict:
        """Unmeasured check of data another client produced: exactly `count` records, each `size`
        bytes, no offset twice in a partition."""
        out, err = self.work_dir / f"{tag}.out", self.work_dir / f"{tag}.err"
        cmd = [self.kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%p %o %S\n"] + self._x(self.consumer_config())
        r = run_child(cmd, out, err, self.timeout, self.env)
        if r.returncode != 0:
            raise DriverError(f"kcat check consume failed: {r.stderr()[-2000:]}")
        seen = set()
        n = wrong = dup = 0
        for line in out.read_text().splitlines():
            p, o, s = line.split()
            n += 1
            if int(s) != size:
                wrong += 1
            if (p, o) in seen:
                dup += 1
            seen.add((p, o))
        out.unlink(missing_ok=True)
        if n != count or wrong or dup:
            raise payload.VerificationError(f"{topic}: {n} records (expected {count}), {wrong} of the wrong size, "
                                            f"{dup} duplicate offsets")
        return {"records": n, "sizes_ok": True, "content_checked": False}


# --------------------------------------------------------------------------------------------
# confluent-kafka (end-to-end latency)


class ConfluentDriver:
    name = "confluent"
    workloads = ("e2e",)

    def __init__(self, work_dir: Path, timeout_pad: float = 120):
        self.work_dir = Path(work_dir)
        self.timeout_pad = timeout_pad
        try:
            import confluent_kafka
            self.version = f"confluent-kafka {confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}"
            self.available, self.unavailable_reason = True, ""
        except ImportError as e:
            self.version, self.available, self.unavailable_reason = "n/a", False, str(e)

    def settings(self) -> dict:
        from .e2e_worker import CONSUMER_CONFIG, PRODUCER_CONFIG
        return {"producer_config": PRODUCER_CONFIG, "consumer_config": CONSUMER_CONFIG,
                "method": "producer paces produce() calls to the target rate and writes its wall clock (ns) "
                          "into each record; the consumer (separate process, partitions assigned at offset 0) "
                          "takes now - that per record; warm-up records are checked but not counted"}

    def e2e(self, bootstrap: str, topic: str, rate: int, seconds: float, size: int, warmup_s: float,
            tag: str) -> Step:
        warmup = int(rate * warmup_s)
        count = warmup + int(rate * seconds)
        py = sys.executable
        base = ["--bootstrap", bootstrap, "--topic", topic, "--count", str(count), "--size", str(size)]
        c_out, c_err = self.work_dir / f"{tag}-consumer.out", self.work_dir / f"{tag}-consumer.err"
        p_out, p_err = self.work_dir / f"{tag}-producer.out", self.work_dir / f"{tag}-producer.err"
        timeout = warmup_s + seconds + self.timeout_pad
        worker = str(HARNESS / "e2e_worker.py")

        def run():
            t0 = time.monotonic()
            consumer = spawn([py, worker, "consume", *base, "--warmup", str(warmup), "--timeout", str(timeout)],
                             c_out, c_err)
            deadline = time.monotonic() + 30
            while "READY" not in c_out.read_text(errors="replace"):
                if consumer.poll() is not None or time.monotonic() > deadline:
                    raise DriverError(f"e2e consumer did not start: {c_err.read_text(errors='replace')[-2000:]}")
                time.sleep(0.01)
            tp = time.monotonic()
            producer = spawn([py, worker, "produce", *base, "--rate", str(rate)], p_out, p_err)
            pr = reap(producer, tp, p_out, p_err, timeout)
            cr = reap(consumer, t0, c_out, c_err, timeout)
            if pr.returncode != 0:
                raise DriverError(f"e2e producer failed: {pr.stderr()[-2000:]}")
            if cr.returncode != 0:
                raise DriverError(f"e2e consumer failed: {cr.stderr()[-2000:]}")
            prod = json.loads(pr.stdout().strip().splitlines()[-1])
            cons = json.loads(cr.stdout().strip().splitlines()[-1])
            return {"records": count, "payload_bytes": count * size, "wall_s": pr.wall_s,
                    "client_cpu_s": pr.cpu_s + cr.cpu_s, "producer": prod, "consumer": cons,
                    "latency_ms": cons["latency_ms"], "achieved_rate": prod["achieved_rate"]}

        def verify(r):
            prod, cons = r["producer"], r["consumer"]
            if prod["delivery_errors"] or prod["undelivered"] or prod["delivered"] != count:
                raise payload.VerificationError(f"e2e producer: {prod}")
            if cons["records"] != count or cons["duplicates"] or cons["mismatched"]:
                raise payload.VerificationError(f"e2e consumer: {json.dumps(cons)[:1000]}")
            return {"records": count, "distinct": cons["records"], "duplicates": 0, "mismatched": 0}

        return Step(f"confluent e2e {rate}/s x {seconds}s x {size}B", run, verify)


# --------------------------------------------------------------------------------------------
# samsa perf (Samsa's own Swift client; enabled only when the binary has the subcommand)


class SamsaPerfDriver:
    name = "samsa-perf"
    workloads = ("produce", "consume", "e2e")

    def __init__(self, samsa_bin: str, work_dir: Path, checker: KcatDriver | None, timeout: float = 300):
        self.samsa = samsa_bin
        self.work_dir = Path(work_dir)
        self.checker = checker
        self.timeout = timeout
        self.version = "n/a"
        self.available, self.unavailable_reason = self._probe()

    def _probe(self) -> tuple[bool, str]:
        # `samsa perf --help` on a binary without the subcommand prints the top-level help and
        # exits 0 (ArgumentParser), so look at what the help says, for every subcommand used.
        self.help = {}
        for sub in ("produce", "consume", "e2e"):
            try:
                r = subprocess.run([self.samsa, "perf", sub, "--help"], capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired) as e:
                return False, f"`samsa perf {sub} --help` could not run: {e}"
            text = r.stdout + r.stderr
            if r.returncode != 0 or "--num-records" not in text or "--json" not in text:
                return False, (f"`samsa perf {sub} --help` (exit {r.returncode}) does not describe the "
                               f"spec'd command (no --num-records/--json): the binary has no `samsa perf`")
            self.help[sub] = text
        v = subprocess.run([self.samsa, "version"], capture_output=True, text=True).stdout.splitlines()
        self.version = v[0] if v else "?"
        return True, ""

    def settings(self) -> dict:
        return {"produce": "samsa perf produce --bootstrap-server B --topic T --num-records N --record-size S "
                           "--throughput=-1 --acks A --compression none --linger-ms 5 --batch-size 1000000 "
                           "[--no-idempotence when offered] --json",
                "consume": "samsa perf consume --bootstrap-server B --topic T --num-records N --json",
                "e2e": "samsa perf e2e --bootstrap-server B --topic T --num-records N --throughput R "
                       "--record-size S --json"}

    def _run(self, args: list[str], tag: str, timeout: float | None = None) -> tuple[ChildResult, dict]:
        out, err = self.work_dir / f"{tag}.out", self.work_dir / f"{tag}.err"
        r = run_child([self.samsa, "perf", *args, "--json"], out, err, timeout or self.timeout)
        if r.returncode != 0:
            raise DriverError(f"samsa perf {args[0]} failed (exit {r.returncode}; {' '.join(args)}):\n"
                              f"{crash_summary(r.stderr())}")
        lines = [l for l in r.stdout().splitlines() if l.strip()]
        try:
            report = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError) as e:
            raise DriverError(f"samsa perf {args[0]}: last stdout line is not JSON: {lines[-1:]!r}") from e
        return r, report

    def produce(self, bootstrap: str, topic: str, count: int, size: int, acks: str, tag: str) -> Step:
        args = ["produce", "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(count),
                "--record-size", str(size), "--throughput=-1", "--acks", acks, "--compression", "none",
                "--linger-ms", "5", "--batch-size", "1000000"]
        if "--no-idempotence" in self.help.get("produce", ""):
            args.append("--no-idempotence")  # as kcat: enable.idempotence=false

        def run():
            r, rep = self._run(args, tag)
            return {"records": count, "payload_bytes": count * size, "wall_s": r.wall_s,
                    "client_cpu_s": r.cpu_s, "tool_report": rep}

        def verify(res):
            if res["tool_report"].get("records") != count:
                raise payload.VerificationError(f"samsa perf produce reported {res['tool_report']}")
            if self.checker is None:
                return {"checked": "tool's record count only (kcat unavailable)"}
            return self.checker.count_sizes(bootstrap, topic, count, size, tag + "-check")

        return Step(f"samsa perf produce {count}x{size}B acks={acks}", run, verify)

    def consume(self, bootstrap: str, topic: str, count: int, size: int, tag: str) -> Step:
        args = ["consume", "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(count)]

        def run():
            r, rep = self._run(args, tag)
            return {"records": count, "payload_bytes": count * size, "wall_s": r.wall_s,
                    "client_cpu_s": r.cpu_s, "tool_report": rep}

        def verify(res):
            if res["tool_report"].get("records") != count:
                raise payload.VerificationError(f"samsa perf consume reported {res['tool_report']}, expected {count}")
            return {"records": count, "content_checked": False}

        return Step(f"samsa perf consume {count}x{size}B", run, verify)

    def e2e(self, bootstrap: str, topic: str, rate: int, seconds: float, size: int, warmup_s: float,
            tag: str) -> Step:
        count = int(rate * seconds)
        args = ["e2e", "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(count),
                "--throughput", str(rate), "--record-size", str(size)]

        def run():
            # A run that takes twice its nominal time (plus 30 s) is stuck: stop it and say so.
            r, rep = self._run(args, tag, timeout=2 * seconds + 30)
            return {"records": count, "payload_bytes": count * size, "wall_s": r.wall_s,
                    "client_cpu_s": r.cpu_s, "tool_report": rep, "latency_ms": rep.get("latency_ms", {}),
                    "achieved_rate": rep.get("records_per_sec")}

        def verify(res):
            if res["tool_report"].get("records") != count:
                raise payload.VerificationError(f"samsa perf e2e reported {res['tool_report']}, expected {count}")
            return {"records": count, "content_checked": False}

        return Step(f"samsa perf e2e {rate}/s x {seconds}s x {size}B", run, verify)
