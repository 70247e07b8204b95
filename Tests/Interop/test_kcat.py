"""Acceptance point 1: Debian's kcat against a real samsa broker.

- `kcat -L` lists the broker and the topics (text and JSON output).
- 100,000 lines produced with `kcat -P -l FILE` come back from `kcat -C -e -o beginning`
  identical and in order, at offsets 0..99,999.
"""
from __future__ import annotations

import json
import random
import shutil
import string

from samsa_interop import create_topic, run

KCAT = shutil.which("kcat") or "kcat"


def kcat(broker, *args, timeout=120, input_bytes=None):
    return run([KCAT, "-b", broker.bootstrap, *args], timeout=timeout, input_bytes=input_bytes)


def test_kcat_metadata_lists_broker_and_topics(broker):
    """AP1: `kcat -L` shows broker 0 at the listener address and every topic with its partitions
    (one created by an AdminClient with 3 partitions, one auto-created by a kcat produce), each
    partition led by broker 0 with replicas/ISR [0]."""
    create_topic(broker.bootstrap, "kcat-meta-three", partitions=3)
    p = kcat(broker, "-P", "-t", "kcat-meta-auto", input_bytes=b"hello\n")
    assert p.returncode == 0, p.stderr.decode()

    p = kcat(broker, "-L", "-J")
    assert p.returncode == 0, p.stderr.decode()
    md = json.loads(p.stdout)
    assert md["brokers"] == [{"id": 0, "name": broker.bootstrap}]
    assert md["controllerid"] == 0
    topics = {t["topic"]: t for t in md["topics"]}
    assert {"kcat-meta-three", "kcat-meta-auto"} <= set(topics), topics.keys()
    for name, count in (("kcat-meta-three", 3), ("kcat-meta-auto", 1)):
        t = topics[name]
        assert "error" not in t, t
        parts = sorted(t["partitions"], key=lambda x: x["partition"])
        assert [x["partition"] for x in parts] == list(range(count))
        for x in parts:
            assert x["leader"] == 0, x
            assert x["replicas"] == [{"id": 0}], x
            assert x["isrs"] == [{"id": 0}], x
            assert "error" not in x, x

    # Plain text output, the way a person reads it.
    p = kcat(broker, "-L")
    assert p.returncode == 0, p.stderr.decode()
    text = p.stdout.decode()
    assert f"broker 0 at {broker.bootstrap}" in text, text
    assert 'topic "kcat-meta-three" with 3 partitions' in text, text
    assert 'topic "kcat-meta-auto" with 1 partitions' in text, text

    # A single-topic query.
    p = kcat(broker, "-L", "-J", "-t", "kcat-meta-three")
    md = json.loads(p.stdout)
    assert [t["topic"] for t in md["topics"]] == ["kcat-meta-three"]
    assert len(md["topics"][0]["partitions"]) == 3


def test_kcat_100k_lines_roundtrip(broker, tmp_path):
    """AP1: a file of 100,000 distinct lines produced with `kcat -P -l` to a single-partition topic
    is consumed back with `kcat -C -e -o beginning` byte-identical, in order, at offsets 0..99,999,
    and the high watermark is exactly 100,000."""
    topic = "kcat-100k"
    create_topic(broker.bootstrap, topic, partitions=1)
    rng = random.Random(1234)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    lines = [f"{i:06d} " + "".join(rng.choices(alphabet, k=rng.randrange(0, 120))) for i in range(100_000)]
    src = tmp_path / "lines.txt"
    src.write_text("\n".join(lines) + "\n")

    p = kcat(broker, "-P", "-t", topic, "-p", "0", "-X", "acks=all", "-l", str(src), timeout=180)
    assert p.returncode == 0, p.stderr.decode()
    assert b"fail" not in p.stderr.lower(), p.stderr.decode()

    p = kcat(broker, "-C", "-t", topic, "-p", "0", "-e", "-o", "beginning", "-q", "-f", "%o\t%s\n", timeout=180)
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode().split("\n")
    assert out[-1] == ""
    out = out[:-1]
    assert len(out) == len(lines), f"consumed {len(out)} messages, produced {len(lines)}"
    offsets = []
    values = []
    for row in out:
        off, _, val = row.partition("\t")
        offsets.append(int(off))
        values.append(val)
    assert offsets == list(range(100_000)), "offsets are not 0..99999 in order"
    first_diff = next((i for i, (a, b) in enumerate(zip(values, lines)) if a != b), None)
    assert first_diff is None, f"line {first_diff}: got {values[first_diff]!r}, want {lines[first_diff]!r}"

    # The watermarks kcat sees (ListOffsets) agree.
    p = kcat(broker, "-Q", "-t", f"{topic}:0:-1")  # -1 = end offset
    assert p.returncode == 0, p.stderr.decode()
    assert f"{topic} [0] offset 100000" in p.stdout.decode(), p.stdout.decode()


def test_kcat_keyed_multi_partition_roundtrip(broker, tmp_path):
    """AP1 (per-partition comparison): 6,000 `key:value` lines produced with `kcat -P -K:` to a
    3-partition topic come back with `kcat -C -e`; every key is in exactly one partition and, per
    partition, the values are in production order at offsets 0..n-1."""
    topic = "kcat-keyed"
    create_topic(broker.bootstrap, topic, partitions=3)
    keys = [f"k{k}" for k in range(12)]
    rows = [(keys[i % len(keys)], f"v{i:05d}") for i in range(6000)]
    src = tmp_path / "keyed.txt"
    src.write_text("".join(f"{k}:{v}\n" for k, v in rows))
    p = kcat(broker, "-P", "-t", topic, "-K:", "-l", str(src))
    assert p.returncode == 0, p.stderr.decode()

    p = kcat(broker, "-C", "-t", topic, "-e", "-o", "beginning", "-q", "-f", "%p\t%o\t%k\t%s\n")
    assert p.returncode == 0, p.stderr.decode()
    per_partition: dict[int, list[tuple[int, str, str]]] = {}
    for row in p.stdout.decode().splitlines():
        part, off, key, val = row.split("\t")
        per_partition.setdefault(int(part), []).append((int(off), key, val))
    assert sum(len(v) for v in per_partition.values()) == len(rows)
    key_partition: dict[str, int] = {}
    for part, msgs in per_partition.items():
        assert [m[0] for m in msgs] == list(range(len(msgs))), f"partition {part} offsets not 0..n-1"
        for _, key, _ in msgs:
            assert key_partition.setdefault(key, part) == part, f"key {key} in partitions {key_partition[key]} and {part}"
        expected = [v for k, v in rows if key_partition.get(k) == part]
        assert [m[2] for m in msgs] == expected, f"partition {part} values differ from production order"
    assert set(key_partition) == set(keys)
