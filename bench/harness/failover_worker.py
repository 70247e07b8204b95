"""Failover producer: confluent-kafka, acks=all, one partition, a steady rate, every delivery
report timed. Run as its own process while the harness kills (or stops) the partition's leader:

    python harness/failover_worker.py --bootstrap H:P,H:P --topic T --partition N --rate 1000 \\
        --size 1024 --stop-file FILE [--max-seconds 120] [--no-idempotence]

Prints READY once the first record is acknowledged, then produces until FILE exists (or
--max-seconds), flushes, and prints one JSON object as its last stdout line: counts, the first
errors, and every successful delivery as [time.monotonic() of the delivery report, offset]
(CLOCK_MONOTONIC is system-wide, so the harness compares it with the time of its signal).

Delivery reports are served by poll() while the worker waits for the next send time, so a
report is seen within about a millisecond of its response.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from confluent_kafka import Producer

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from harness.payload import payload  # noqa: E402
else:
    from .payload import payload

# Written out, also into the results: client timing settings bound what the failover figure can be.
PRODUCER_CONFIG = {
    "acks": "all",
    "linger.ms": 0,
    "compression.type": "none",
    "message.timeout.ms": 120000,  # nothing is given up during a failover (retries are unlimited)
    "request.timeout.ms": 30000,
    "retry.backoff.ms": 20,
    "retry.backoff.max.ms": 200,
    "reconnect.backoff.ms": 20,
    "reconnect.backoff.max.ms": 200,
    "topic.metadata.refresh.fast.interval.ms": 50,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partition", type=int, default=0)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--no-idempotence", action="store_true")
    args = ap.parse_args()

    cfg = {"bootstrap.servers": args.bootstrap, **PRODUCER_CONFIG, "enable.idempotence": not args.no_idempotence}
    p = Producer(cfg)
    deliveries: list[list] = []
    errors: list[list] = []
    ready = [False]

    def on_delivery(err, msg):
        now = time.monotonic()
        if err is not None:
            errors.append([now, str(err)])
            return
        deliveries.append([now, msg.offset()])
        if not ready[0]:
            ready[0] = True
            print("READY", flush=True)

    p.list_topics(args.topic, timeout=15)
    interval = 1.0 / args.rate
    start = time.monotonic()
    end = start + args.max_seconds
    seq = 0
    while time.monotonic() < end:
        if seq % 100 == 0 and os.path.exists(args.stop_file):
            break
        target = start + seq * interval
        while True:
            ahead = target - time.monotonic()
            if ahead <= 0:
                break
            p.poll(ahead)
        while True:
            try:
                p.produce(args.topic, payload(seq, args.size), partition=args.partition, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.001)
        seq += 1
        p.poll(0)
    left = p.flush(60)
    print(json.dumps({"sent": seq, "delivered": len(deliveries), "undelivered": left, "delivery_errors": len(errors),
                      "first_errors": errors[:5], "deliveries": deliveries, "config": cfg}), flush=True)


if __name__ == "__main__":
    main()
