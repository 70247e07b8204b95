"""A local Samsa cluster for the benchmark: a ZooKeeper ensemble (scripts/zookeeper.sh, Debian's
zookeeper) and N `samsa broker --broker-id I` processes on loopback, data in the work dir.

    c = SamsaCluster(samsa_bin, repo, work_dir / "cluster")
    c.start()                       # ZooKeeper, then the brokers; waits until every broker is registered
    c.create_topic("t", 1, rf=3, min_isr=2)
    c.partition("t", 0)             # {"leader", "leader_epoch", "replicas", "isr", ...} from a live broker
    c.stop()                        # brokers (SIGTERM, then SIGKILL), then ZooKeeper; always safe to call

The object also stands in for a Broker in compare.measure(): `pids` (every running broker),
`cpu_seconds()` and `mem_kib()` summed over the brokers, `running` (all brokers up).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from . import kafkaprobe, procstats
from .brokers import BrokerError, SamsaBroker


class ZooKeeperEnsemble:
    def __init__(self, repo: Path, directory: Path, nodes: int = 3):
        self.script = str(Path(repo) / "scripts" / "zookeeper.sh")
        self.dir = Path(directory)
        self.nodes = nodes
        self.connect = ""

    def start(self, timeout: float = 240) -> str:
        r = subprocess.run([self.script, "start", str(self.dir), "--nodes", str(self.nodes)],
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        lines = [l.strip() for l in r.stdout.splitlines() if l.strip()]
        if r.returncode != 0 or not lines or "127.0.0.1:" not in lines[-1]:
            raise BrokerError(f"zookeeper.sh start failed (exit {r.returncode}): {r.stdout[-1000:]} {r.stderr[-2000:]}")
        self.connect = lines[-1]
        return self.connect

    def pids(self) -> list[int]:
        out = []
        for f in sorted(self.dir.glob("node*/server.pid")):
            try:
                pid = int(f.read_text().strip())
            except (OSError, ValueError):
                continue
            if Path(f"/proc/{pid}").exists():
                out.append(pid)
        return out

    def stop(self):
        if not (self.dir / "ensemble.env").exists():
            return
        pids = self.pids()
        try:
            subprocess.run([self.script, "stop", str(self.dir)], capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pass
        for pid in pids:  # the servers this ensemble started, by pid, if the script left any
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class ClusterBroker(SamsaBroker):
    """One cluster member. The port is chosen once, so a restarted broker comes back on it."""

    def __init__(self, binary: str, work_dir: Path, broker_id: int, overrides: dict):
        super().__init__(binary, work_dir, f"samsa-b{broker_id}", overrides)
        self.broker_id = broker_id

    def command(self) -> list[str]:
        cmd = super().command()
        return cmd[:2] + ["--broker-id", str(self.broker_id)] + cmd[2:]


class SamsaCluster:
    name = "cluster"
    tag = "samsa-cluster"

    def __init__(self, binary: str, repo: Path, work_dir: Path, brokers: int = 3, zk_nodes: int = 3,
                 overrides: dict | None = None):
        self.work_dir = Path(work_dir)
        self.binary = binary
        self.zk = ZooKeeperEnsemble(repo, self.work_dir / "zookeeper", zk_nodes)
        self.overrides = {"zookeeper.session.timeout.ms": 6000, "replica.lag.time.max.ms": 10000,
                          "leader.imbalance.check.interval.seconds": 5, **(overrides or {})}
        self.brokers = [ClusterBroker(binary, self.work_dir, i, {}) for i in range(1, brokers + 1)]
        self.timings: dict = {}

    # -- lifecycle

    def start(self, timeout: float = 120):
        self.work_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        connect = self.zk.start()
        self.timings["zookeeper_start_s"] = time.monotonic() - t0
        for b in self.brokers:
            b.overrides = {"zookeeper.connect": connect, **self.overrides}
        for b in self.brokers:
            self.timings[f"{b.tag}_start"] = b.start(timeout)
        self.wait_registered(len(self.brokers), timeout)
        self.timings["cluster_ready_s"] = time.monotonic() - t0
        return self.timings

    def stop(self):
        """Every broker SIGTERM at once (controlled shutdown as far as it goes), SIGKILL after
        30 s, then the ensemble. Safe to call twice and after a failed start."""
        try:
            for b in self.brokers:
                if b.running:
                    b.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            for b in self.brokers:
                if b.proc is None:
                    continue
                try:
                    b.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                b.kill()
        finally:
            self.zk.stop()

    def wipe(self):
        for b in self.brokers:
            b.wipe()

    # -- Broker stand-in for measure()

    @property
    def running(self) -> bool:
        return all(b.running for b in self.brokers)

    @property
    def pids(self) -> list[int]:
        return [b.pid for b in self.brokers if b.running]

    @property
    def pid(self) -> int:
        return self.pids[0]

    @property
    def proc(self):
        return next((b.proc for b in self.brokers if not b.running), self.brokers[0].proc)

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.pids:
            try:
                total += procstats.cpu_seconds(p)
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    def cpu_by_broker(self) -> dict[str, float]:
        out = {}
        for b in self.brokers:
            if b.running:
                try:
                    out[b.tag] = procstats.cpu_seconds(b.pid)
                except (FileNotFoundError, ProcessLookupError):
                    pass
        return out

    def mem_kib(self) -> dict[str, int]:
        out = {"VmRSS": 0, "VmHWM": 0}
        for p in self.pids:
            try:
                m = procstats.mem_kib(p)
            except (FileNotFoundError, ProcessLookupError):
                continue
            for k in out:
                out[k] += m.get(k, 0)
        return out

    def log_tail(self, n: int = 10) -> str:
        return "\n".join(f"--- {b.tag} ({'running' if b.running else 'exit ' + str(b.proc.returncode if b.proc else None)})"
                         f"\n{b.log_tail(n)}" for b in self.brokers)

    def data_bytes(self) -> int:
        return sum(b.data_bytes() for b in self.brokers)

    # -- cluster state

    def broker(self, broker_id: int) -> ClusterBroker:
        return next(b for b in self.brokers if b.broker_id == broker_id)

    def metadata(self, topics: list[str] | None = None, exclude: set[int] = frozenset(),
                 via: ClusterBroker | None = None) -> dict:
        """Metadata from the first live broker that answers (or from `via`)."""
        errors = []
        for b in ([via] if via else self.brokers):
            if not b.running or b.broker_id in exclude:
                continue
            try:
                md = kafkaprobe.cluster_metadata("127.0.0.1", b.port, topics)
                md["via"] = b.broker_id
                return md
            except (OSError, kafkaprobe.ProbeError) as e:
                errors.append(f"{b.tag}: {e}")
        raise BrokerError(f"no broker answered Metadata: {errors}")

    def partition(self, topic: str, partition: int, exclude: set[int] = frozenset(),
                  via: ClusterBroker | None = None) -> dict:
        md = self.metadata([topic], exclude, via)
        t = md["topics"].get(topic)
        if t is None or t["error"] or partition not in t["partitions"]:
            raise BrokerError(f"{topic}-{partition} not in metadata from broker {md['via']}: {t}")
        return {**t["partitions"][partition], "controller": md["controller"], "via": md["via"]}

    def wait_registered(self, n: int, timeout: float = 60):
        """Until every running broker lists n brokers and a controller."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {}
            for b in self.brokers:
                if not b.running:
                    continue
                try:
                    md = self.metadata(via=b)
                    seen[b.broker_id] = (len(md["brokers"]), md["controller"])
                except BrokerError as e:
                    seen[b.broker_id] = str(e)
            if all(isinstance(v, tuple) and v[0] >= n and v[1] >= 0 for v in seen.values()):
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"cluster not formed after {timeout}s: {seen}\n{self.log_tail()}")
            time.sleep(0.2)

    def create_topic(self, name: str, partitions: int, rf: int = 3, min_isr: int = 2, timeout: float = 60):
        """CreateTopics through confluent-kafka's admin client, then waits until every partition
        has a leader and its full replica set in the ISR on every broker."""
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf,
                                           config={"min.insync.replicas": str(min_isr)})],
                                 operation_timeout=timeout, request_timeout=timeout)
        for f in fs.values():
            f.result(timeout)
        self.wait_in_sync(name, partitions, timeout)

    def wait_in_sync(self, topic: str, partitions: int, timeout: float = 60, preferred: bool = False) -> float:
        """Until every broker reports every partition with a leader and ISR == replicas (and the
        leader == the preferred, first, replica when asked). Returns the seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = None
        while True:
            ok = True
            for b in self.brokers:
                if not b.running:
                    continue
                try:
                    md = self.metadata([topic], via=b)
                except BrokerError as e:
                    ok, last = False, str(e)
                    break
                t = md["topics"].get(topic)
                if not t or t["error"] or len(t["partitions"]) != partitions:
                    ok, last = False, f"broker {b.broker_id}: {t}"
                    break
                for index, p in sorted(t["partitions"].items()):
                    if p["error"] or p["leader"] < 0 or sorted(p["isr"]) != sorted(p["replicas"]) \
                            or (preferred and p["leader"] != p["replicas"][0]):
                        ok, last = False, f"{topic}-{index} as broker {b.broker_id} reports it: {p}"
                        break
                if not ok:
                    break
            if ok:
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise BrokerError(f"{topic} not in sync after {timeout}s: {last}")
            time.sleep(0.05)


LEADING = re.compile(r"leading (\S+) at epoch (\d+)")
LOG_END = re.compile(r"log end=(\d+)")


def leadership_lines(log_text: str, topic: str, partition: int) -> list[dict]:
    """The broker's "leading T-P at epoch E" info lines (with their "log end" metadata: the
    offset the new leader's epoch starts at)."""
    out = []
    names = {f"{topic}-{partition}", f"{topic}/{partition}", f"{topic}:{partition}", f"{topic}[{partition}]"}
    for line in log_text.splitlines():
        m = LEADING.search(line)
        if not m or m.group(1) not in names:
            continue
        end = LOG_END.search(line)
        out.append({"epoch": int(m.group(2)), "log_end": int(end.group(1)) if end else None, "line": line.strip()[:300]})
    return out



def _compare_files(paths: dict[int, Path], ref_id: int, chunk: int = 1 << 20) -> dict:
    """Streams the files side by side over the length all of them have; per other replica: the
    first differing position, differing 4 KiB blocks, and how many of those are all zeros there."""
    sizes = {i: p.stat().st_size if p.exists() else 0 for i, p in paths.items()}
    n = min(sizes.values())
    out = {"sizes": {str(i): v for i, v in sizes.items()}, "compared_bytes": n}
    files = {i: open(p, "rb") for i, p in paths.items() if p.exists()}
    diffs = {i: {"broker": i, "vs_broker": ref_id, "first_position": None, "differing_4k_blocks": 0,
                 "of_which_all_zero_here": 0} for i in files if i != ref_id}
    try:
        pos = 0
        while pos < n:
            want = min(chunk, n - pos)
            data = {i: f.read(want) for i, f in files.items()}
            ref = data[ref_id]
            for i, d in diffs.items():
                v = data[i]
                if v == ref:
                    continue
                for k in range(0, want, 4096):
                    a, b = v[k:k + 4096], ref[k:k + 4096]
                    if a != b:
                        if d["first_position"] is None:
                            d["first_position"] = pos + k + next(j for j in range(len(a)) if a[j] != b[j])
                        d["differing_4k_blocks"] += 1
                        if not a.strip(b"\0"):
                            d["of_which_all_zero_here"] += 1
            pos += want
    finally:
        for f in files.values():
            f.close()
    bad = [d for d in diffs.values() if d["first_position"] is not None]
    if bad:
        out["differences"] = bad
    return out


def compare_replicas(cluster: SamsaCluster, topic: str, partitions: int) -> dict:
    """Byte comparison of every replica's segment files (*.log) of each partition, over the
    length all replicas have (call it when the replicas are in sync and idle). Followers append
    the leader's batches as received, so the replicas must be byte-identical to the leader's."""
    out = {"identical": True, "partitions": {}}
    md = cluster.metadata([topic])["topics"].get(topic, {}).get("partitions", {})
    for p in range(partitions):
        dirs = {b.broker_id: b.data_dir / f"{topic}-{p}" for b in cluster.brokers}
        dirs = {i: d for i, d in dirs.items() if d.is_dir()}
        names = sorted(set().union(*[{f.name for f in d.glob("*.log")} for d in dirs.values()])) if dirs else []
        leader = md.get(p, {}).get("leader", -1)
        ref_id = leader if leader in dirs else min(dirs, default=-1)
        res = {"replicas": sorted(dirs), "reference (leader)": ref_id, "files": {}}
        for name in names:
            f = _compare_files({i: d / name for i, d in dirs.items()}, ref_id)
            res["files"][name] = f
            if "differences" in f:
                out["identical"] = False
        out["partitions"][str(p)] = res
    return out
