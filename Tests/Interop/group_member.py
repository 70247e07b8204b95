"""A confluent-kafka group consumer run as its own process by test_groups.py, so a test can
SIGKILL it (a crashed member) or SIGTERM it (a clean close, which sends LeaveGroup).

It subscribes to one topic and, for every batch it gets, first records each message in its
journal file (flushed) and only then commits the next offsets synchronously: at-least-once,
so whatever was committed was recorded, and whatever was not committed will be delivered
again to whichever member owns the partition next.

Journal lines (one event each, written with a single write() and flushed):
    STARTED <pid>
    ASSIGN <member_id> <p,p,...>        after every assignment (full current assignment)
    REVOKE <member_id> <p,p,...>
    MSG <partition> <offset> <value>
    COMMIT <p>:<offset>,...             after a successful synchronous commit
    COMMITFAIL <error>
    ERROR <error>                       a consumer error event
    CLOSED                              after consumer.close() returned (SIGTERM path)

Usage: group_member.py BOOTSTRAP GROUP TOPIC JOURNAL CLIENT_ID [SESSION_TIMEOUT_MS [COMMIT_DELAY_MS]]

COMMIT_DELAY_MS: a pause between recording a batch and committing it ("processing time"),
so that a SIGKILL usually lands between the two and the next owner must redeliver.
"""
from __future__ import annotations

import os
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    bootstrap, group, topic, journal, client_id = sys.argv[1:6]
    session_ms = int(sys.argv[6]) if len(sys.argv) > 6 else 6000
    commit_delay = int(sys.argv[7]) / 1000 if len(sys.argv) > 7 else 0.0
    out = open(journal, "a", buffering=1)

    def log(line: str):
        out.write(line + "\n")
        out.flush()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(100, session_ms // 10),
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 2000,
    })

    def parts(ps) -> str:
        return ",".join(str(p.partition) for p in sorted(ps, key=lambda p: p.partition))

    def on_assign(consumer, ps):
        log(f"ASSIGN {consumer.memberid()} {parts(ps)}")

    def on_revoke(consumer, ps):
        log(f"REVOKE {consumer.memberid()} {parts(ps)}")

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    log(f"STARTED {os.getpid()}")
    while not stop:
        batch = c.consume(num_messages=200, timeout=0.2)
        nexts: dict[int, int] = {}
        lines = []
        for m in batch:
            if m.error():
                log(f"ERROR {m.error()}")
                continue
            lines.append(f"MSG {m.partition()} {m.offset()} {m.value().decode()}\n")
            nexts[m.partition()] = m.offset() + 1
        if not lines:
            continue
        out.write("".join(lines))
        out.flush()
        if commit_delay:
            time.sleep(commit_delay)
        try:
            c.commit(offsets=[TopicPartition(topic, p, o) for p, o in sorted(nexts.items())], asynchronous=False)
            log("COMMIT " + ",".join(f"{p}:{o}" for p, o in sorted(nexts.items())))
        except KafkaException as e:
            log(f"COMMITFAIL {e.args[0]}")
    c.close()
    log("CLOSED")


if __name__ == "__main__":
    main()
