"""End-to-end latency with confluent-kafka: run as two processes, one consuming, one producing
at a fixed rate. Each record carries its sequence number and the producer's wall clock (ns) at
the produce() call:

    b"%010d:%019d:" % (seq, send_ns)  +  deterministic filler up to the record size

The consumer takes now - send_ns for every record after the warm-up, and checks that every
record 0..count-1 arrives exactly once with the right length and filler. Both print one JSON
object as their last stdout line.

    python -m harness.e2e_worker consume --bootstrap H:P --topic T --count N --size S --warmup W
    python -m harness.e2e_worker produce --bootstrap H:P --topic T --count N --size S --rate R
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from harness.payload import filler_tail  # noqa: E402
else:
    from .payload import filler_tail

HEAD = 31  # "%010d:%019d:"

PRODUCER_CONFIG = {
    "acks": "all",
    "linger.ms": 0,
    "enable.idempotence": False,
    "compression.type": "none",
}
CONSUMER_CONFIG = {
    "group.id": "samsa-bench-e2e",  # required by the client; partitions are assigned, no group join
    "enable.auto.commit": False,
    "enable.partition.eof": False,
    "fetch.wait.max.ms": 500,  # client default, written out
    "fetch.min.bytes": 1,  # client default, written out
}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-q * len(sorted_values) // 1)))  # nearest rank, ceil
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(values_ns: list[int]) -> dict:
    v = sorted(x / 1e6 for x in values_ns)
    if not v:
        return {}
    return {"count": len(v), "avg": sum(v) / len(v), "p50": percentile(v, 0.50), "p95": percentile(v, 0.95),
            "p99": percentile(v, 0.99), "p999": percentile(v, 0.999), "max": v[-1], "min": v[0]}


def consume(args) -> dict:
    c = Consumer({"bootstrap.servers": args.bootstrap, **CONSUMER_CONFIG})
    md = c.list_topics(args.topic, timeout=15)
    tmd = md.topics.get(args.topic)
    if tmd is None or tmd.error is not None or not tmd.partitions:
        raise SystemExit(f"topic {args.topic} not found: {tmd.error if tmd else 'missing'}")
    c.assign([TopicPartition(args.topic, p, 0) for p in sorted(tmd.partitions)])
    print("READY", flush=True)
    seen = bytearray(args.count)
    received = duplicates = mismatched = 0
    lat: list[int] = []
    deadline = time.monotonic() + args.timeout
    problems = []
    while received < args.count and time.monotonic() < deadline:
        # poll() returns as soon as one record is there (consume(n, timeout) would wait for n
        # records or the whole timeout); then take whatever else is already queued.
        first = c.poll(0.1)
        now = time.time_ns()
        if first is None:
            continue
        msgs = [first] + c.consume(num_messages=1000, timeout=0)
        for m in msgs:
            if m.error():
                raise KafkaException(m.error())
            v = m.value()
            try:
                seq = int(v[:10])
                sent = int(v[11:30])
            except ValueError:
                mismatched += 1
                continue
            if len(v) != args.size or not 0 <= seq < args.count or v[HEAD:] != filler_tail(seq, args.size, HEAD):
                mismatched += 1
                if len(problems) < 5:
                    problems.append(f"record {seq}: {len(v)} bytes, content differs")
                continue
            if seen[seq]:
                duplicates += 1
                continue
            seen[seq] = 1
            received += 1
            if seq >= args.warmup:
                lat.append(now - sent)
    # Anything still arriving after the last expected record would be a duplicate.
    for m in c.consume(num_messages=1000, timeout=0.5):
        if not m.error():
            duplicates += 1
    c.close()
    return {"records": received, "expected": args.count, "duplicates": duplicates, "mismatched": mismatched,
            "missing": args.count - received, "problems": problems, "latency_ms": latency_summary(lat)}


def produce(args) -> dict:
    p = Producer({"bootstrap.servers": args.bootstrap, **PRODUCER_CONFIG})
    first_errors: list[str] = []
    counts = {"delivered": 0, "errors": 0}

    def on_delivery(err, msg):
        if err is not None:
            counts["errors"] += 1
            if len(first_errors) < 5:
                first_errors.append(str(err))
        else:
            counts["delivered"] += 1

    # Make sure metadata is there before the clock starts.
    p.list_topics(args.topic, timeout=15)
    interval = 1.0 / args.rate
    start = time.perf_counter()
    behind_max = 0.0
    for seq in range(args.count):
        target = start + seq * interval
        ahead = target - time.perf_counter()
        if ahead > 0.0005:
            time.sleep(ahead)
        else:
            behind_max = max(behind_max, -ahead)
        value = b"%010d:%019d:" % (seq, time.time_ns()) + filler_tail(seq, args.size, HEAD)
        while True:
            try:
                p.produce(args.topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.001)
        if seq % 64 == 0:
            p.poll(0)
    sent_s = time.perf_counter() - start
    left = p.flush(60)
    return {"sent": args.count, "delivered": counts["delivered"], "undelivered": left,
            "delivery_errors": counts["errors"], "first_errors": first_errors,
            "send_seconds": sent_s, "achieved_rate": args.count / sent_s if sent_s > 0 else 0.0,
            "max_behind_schedule_ms": behind_max * 1000}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["consume", "produce"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    if args.size < HEAD + 1:
        raise SystemExit(f"--size must be at least {HEAD + 1}")
    result = consume(args) if args.mode == "consume" else produce(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
