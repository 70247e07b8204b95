"""Acceptance point 4: crash safety.

Several idempotent confluent-kafka producers (acks=all) write to a 3-partition topic; every
message whose delivery report succeeded is recorded; the broker is SIGKILLed while they are
still sending, then restarted on the same data directory and port. Every acknowledged message
must be readable at the offset it was acknowledged with, offsets must be continuous
0..n-1 per partition, and neither a consumer nor a byte-level scan of the .log files may see a
torn or CRC-invalid batch.
"""
from __future__ import annotations

import random
import threading

from confluent_kafka import Producer

import kafka_raw
from samsa_interop import consume_range, create_topic, recovery_lines, wait_until, watermarks

TOPIC = "crash"
PARTITIONS = 3
WRITERS = 3
ACKED_BEFORE_KILL = 20000
SEGMENT_BYTES = 256 * 1024  # several segments per partition, so recovery and the scan cross segment files


class Writer(threading.Thread):
    """One producer thread: sends until told to stop, then purges what is still queued or in flight."""

    def __init__(self, wid: int, bootstrap: str, state: "State"):
        super().__init__(daemon=True)
        self.wid = wid
        self.state = state
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 200,
            "message.timeout.ms": 120000,
            "reconnect.backoff.max.ms": 200,
        })
        self.stop = threading.Event()
        self.rng = random.Random(wid)

    def on_delivery(self, err, msg):
        s = self.state
        with s.lock:
            if err is None:
                s.acked[msg.value()] = (msg.partition(), msg.offset())
            elif not s.killed:
                s.failed_before_kill.append((msg.value(), err))

    def run(self):
        seq = 0
        while not self.stop.is_set():
            value = f"w{self.wid}-{seq:07d}-".encode() + self.rng.randbytes(self.rng.randrange(20, 400))
            try:
                self.producer.produce(TOPIC, key=f"k{seq % 16}".encode(), value=value, on_delivery=self.on_delivery)
            except BufferError:
                self.producer.poll(0.01)
                continue
            with self.state.lock:
                self.state.produced.add(value)
            seq += 1
            self.producer.poll(0)
            if len(self.producer) > 2000:
                self.producer.poll(0.002)
        self.producer.purge(in_queue=True, in_flight=True)
        self.producer.flush(10)


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.produced: set[bytes] = set()
        self.failed_before_kill: list = []
        self.killed = False


def test_sigkill_mid_stream_keeps_every_acknowledged_message(broker_factory):
    """AP4: SIGKILL while 3 idempotent acks=all producers are streaming; after restart on the same
    dir/port: recovery ran (unclean start), every acknowledged message is read back at its acked
    (partition, offset), offsets per partition are exactly 0..high-1, no duplicates and nothing
    that was never produced, the consumer reports no error, a strict scan of every .log file
    finds only complete CRC-valid batches, and a new produce continues at the high watermark."""
    b = broker_factory()
    create_topic(b.bootstrap, TOPIC, partitions=PARTITIONS, config={"segment.bytes": str(SEGMENT_BYTES)})
    state = State()
    writers = [Writer(w, b.bootstrap, state) for w in range(WRITERS)]
    for w in writers:
        w.start()
    try:
        wait_until(lambda: len(state.acked) >= ACKED_BEFORE_KILL, timeout=90,
                   message=f"{ACKED_BEFORE_KILL} acknowledged messages")
        with state.lock:
            state.killed = True
            b.kill()
            unacked_at_kill = len(state.produced) - len(state.acked)
    finally:
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(60)
    assert not state.failed_before_kill, f"deliveries failed before the kill: {state.failed_before_kill[:3]}"
    assert unacked_at_kill > 0, "producers were not mid-stream when the broker was killed"
    acked = dict(state.acked)
    assert len(acked) >= ACKED_BEFORE_KILL

    assert not (b.data_dir / ".samsa_cleanshutdown").exists(), "SIGKILL must not leave a clean-shutdown marker"
    b.start()
    log = b.stderr_since_start()
    for p in range(PARTITIONS):
        assert recovery_lines(log, f"{TOPIC}-{p}"), f"no recovery logged for {TOPIC}-{p} after a crash:\n{log}"

    all_values: dict[bytes, tuple[int, int]] = {}
    for p in range(PARTITIONS):
        low, high = watermarks(b.bootstrap, TOPIC, p)
        assert low == 0
        acked_here = [off for (pp, off) in acked.values() if pp == p]
        assert high > max(acked_here, default=-1), f"partition {p}: high watermark {high} below an acked offset"

        # Byte level: complete, CRC-valid batches only, continuous offsets ending at the high watermark.
        assert len(kafka_raw.segment_files(b.partition_dir(TOPIC, p))) > 1
        batches = kafka_raw.scan_partition_dir(b.partition_dir(TOPIC, p))
        assert batches and batches[0].base_offset == 0
        assert batches[-1].last_offset + 1 == high
        assert sum(x.records_count for x in batches) == high

        # Client level: the consumer sees 0..high-1 and no error.
        msgs = consume_range(b.bootstrap, TOPIC, p, 0, high)
        assert [m.offset() for m in msgs] == list(range(high)), f"partition {p}: offsets not continuous"
        for m in msgs:
            assert m.value() not in all_values, f"duplicate message {m.value()[:20]!r} at {p}/{m.offset()}"
            all_values[m.value()] = (p, m.offset())

    missing = [v for v in acked if v not in all_values]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[0][:20]!r}"
    moved = [(v[:20], acked[v], all_values[v]) for v in acked if all_values[v] != acked[v]]
    assert not moved, f"acknowledged messages at other offsets than acked: {moved[:5]}"
    strangers = [v for v in all_values if v not in state.produced]
    assert not strangers, f"{len(strangers)} records that no producer sent"

    # The log goes on where it stopped.
    highs = {p: watermarks(b.bootstrap, TOPIC, p)[1] for p in range(PARTITIONS)}
    reports = []
    pr = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "enable.idempotence": True})
    for p in range(PARTITIONS):
        pr.produce(TOPIC, value=f"after-restart-{p}".encode(), partition=p,
                   on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
    assert pr.flush(30) == 0
    assert sorted(reports) == [(None, p, highs[p]) for p in range(PARTITIONS)]
    for p in range(PARTITIONS):
        (m,) = consume_range(b.bootstrap, TOPIC, p, highs[p], highs[p] + 1)
        assert m.value() == f"after-restart-{p}".encode()
