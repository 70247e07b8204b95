"""Summaries (median, min-max, Samsa/tansu ratio) and the markdown results file."""
from __future__ import annotations

import json
import math
import statistics

# figure key -> (label, unit, better: "higher" | "lower", format)
FIGURES = {
    "records_per_s": ("throughput", "records/s", "higher", "{:,.0f}"),
    "mb_per_s": ("throughput", "MB/s", "higher", "{:,.1f}"),
    "broker_cpu_s_per_gb": ("broker CPU", "CPU-s/GB", "lower", "{:,.2f}"),
    "client_cpu_s_per_gb": ("client CPU", "CPU-s/GB", "lower", "{:,.2f}"),
    "broker_cpu_s": ("broker CPU", "CPU-s", "lower", "{:,.2f}"),
    "client_cpu_s": ("client CPU", "CPU-s", "lower", "{:,.2f}"),
    "wall_s": ("wall time", "s", "lower", "{:,.2f}"),
    "broker_rss_peak_mib": ("broker RSS peak during step", "MiB", "lower", "{:,.1f}"),
    "broker_rss_after_mib": ("broker RSS after step", "MiB", "lower", "{:,.1f}"),
    "lat_p50_ms": ("e2e latency p50", "ms", "lower", "{:,.2f}"),
    "lat_p95_ms": ("e2e latency p95", "ms", "lower", "{:,.2f}"),
    "lat_p99_ms": ("e2e latency p99", "ms", "lower", "{:,.2f}"),
    "lat_p999_ms": ("e2e latency p99.9", "ms", "lower", "{:,.2f}"),
    "lat_max_ms": ("e2e latency max", "ms", "lower", "{:,.2f}"),
    "lat_avg_ms": ("e2e latency avg", "ms", "lower", "{:,.2f}"),
    "achieved_rate": ("achieved produce rate", "msg/s", "higher", "{:,.0f}"),
    "broker_cpu_pct": ("broker CPU (of one core)", "%", "lower", "{:,.1f}"),
    "idle_rss_mib": ("RSS idle after start", "MiB", "lower", "{:,.1f}"),
    "rss_end_mib": ("RSS at end of round (all data loaded)", "MiB", "lower", "{:,.1f}"),
    "hwm_mib": ("peak RSS of the process (VmHWM)", "MiB", "lower", "{:,.1f}"),
    "startup_connect_s": ("first TCP connect", "s", "lower", "{:,.3f}"),
    "startup_api_versions_s": ("first ApiVersions answer", "s", "lower", "{:,.3f}"),
    "startup_metadata_s": ("Metadata lists all partitions with leaders", "s", "lower", "{:,.3f}"),
    "startup_stdout_ready_s": ("ready line on stdout", "s", "lower", "{:,.3f}"),
    "shutdown_s": ("clean shutdown (SIGTERM to exit)", "s", "lower", "{:,.3f}"),
    "startup_idle_rss_mib": ("RSS after start", "MiB", "lower", "{:,.1f}"),
    "elected_s": ("signal → a surviving broker's Metadata names the new leader", "s", "lower", "{:,.3f}"),
    "failover_s": ("signal → first acks=all delivery through the new leader", "s", "lower", "{:,.3f}"),
    "ack_gap_s": ("longest time without a delivery report", "s", "lower", "{:,.3f}"),
    "restart_s": ("broker restart → serving", "s", "lower", "{:,.3f}"),
    "rejoin_isr_s": ("restart → back in the ISR", "s", "lower", "{:,.3f}"),
    "leader_back_s": ("restart → preferred leader again", "s", "lower", "{:,.3f}"),
}


def summarize(values: list[float]) -> dict | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals),
            "values": vals}


def fmt(key: str, v: float | None) -> str:
    if v is None:
        return "–"
    return FIGURES.get(key, ("", "", "", "{:,.3g}"))[3].format(v)


def cell(key: str, s: dict | None) -> str:
    if not s:
        return "n/a"
    if s["n"] == 1:
        return fmt(key, s["median"])
    return f"{fmt(key, s['median'])} ({fmt(key, s['min'])}–{fmt(key, s['max'])})"


def ratio(a: dict | None, b: dict | None) -> float | None:
    if not a or not b or not b["median"]:
        return None
    return a["median"] / b["median"]


def table(rows: list[tuple[str, str, dict | None, dict | None]], names: tuple[str, str] = ("Samsa", "tansu")) -> list[str]:
    """rows: (section, figure key, first summary, second summary); the ratio is first/second."""
    a, b = names
    out = [f"| workload | figure | {a} median (min–max) | {b} median (min–max) | {a}/{b} | better |",
           "|---|---|---|---|---|---|"]
    for section, key, s, t in rows:
        label, unit, better, _ = FIGURES[key]
        r = ratio(s, t)
        out.append(f"| {section} | {label} ({unit}) | {cell(key, s)} | {cell(key, t)} | "
                   f"{'–' if r is None else f'{r:.2f}×'} | {better} |")
    return out


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str)
