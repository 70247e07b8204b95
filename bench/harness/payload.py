"""Deterministic record payloads, the data-set files kcat produces from, and the checker that
proves every record came back exactly once and byte-identical.

A record of size S for sequence number n is

    b"%010d:" % n  +  FILLER[off(n) : off(n) + S - 11]

FILLER is a fixed pseudo-random run of [A-Za-z0-9] (no newline, so kcat can use "\n" as the
record delimiter) and off(n) moves with n, so two records never share their tail by accident and
a record delivered under the wrong sequence number fails the byte comparison.
"""
from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

PREFIX_LEN = 11  # "%010d:"
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_FILLER_SPAN = 4093  # prime: offsets spread over the whole filler
_MAX_SIZE = 1 << 20


def _make_filler() -> bytes:
    rng = random.Random(0x5A45A)
    table = bytes(_ALPHABET[b % len(_ALPHABET)] for b in range(256))
    return rng.randbytes(_FILLER_SPAN + _MAX_SIZE).translate(table)


FILLER = _make_filler()


def _offset(seq: int) -> int:
    return (seq * 2654435761) % _FILLER_SPAN


def payload(seq: int, size: int) -> bytes:
    if size < PREFIX_LEN + 1 or size > _MAX_SIZE:
        raise ValueError(f"record size must be {PREFIX_LEN + 1}..{_MAX_SIZE} bytes, not {size}")
    off = _offset(seq)
    return b"%010d:" % seq + FILLER[off:off + size - PREFIX_LEN]


def filler_tail(seq: int, size: int, head: int) -> bytes:
    """The deterministic bytes after a `head`-byte header of a record (for the e2e payloads,
    whose header also carries the send time)."""
    off = _offset(seq)
    return FILLER[off:off + size - head]


@dataclass
class DataSet:
    name: str
    count: int
    size: int
    path: Path
    sha256: str

    @property
    def payload_bytes(self) -> int:
        return self.count * self.size


def make_dataset(directory: Path, name: str, count: int, size: int) -> DataSet:
    """Writes `count` records of `size` bytes, one per line, to directory/name-count-size.txt
    (reused when already there with the right length)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{count}x{size}.txt"
    expected_len = count * (size + 1)
    if not (path.exists() and path.stat().st_size == expected_len):
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb", buffering=1 << 20) as f:
            chunk = []
            for seq in range(count):
                chunk.append(payload(seq, size))
                if len(chunk) == 10000:
                    f.write(b"\n".join(chunk) + b"\n")
                    chunk = []
            if chunk:
                f.write(b"\n".join(chunk) + b"\n")
        os.replace(tmp, path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return DataSet(name=name, count=count, size=size, path=path, sha256=h.hexdigest())


class VerificationError(AssertionError):
    pass


def verify_lines(path: Path, count: int, size: int, ordered: bool) -> dict:
    """Checks a file of consumed records (one per line, as kcat -f '%s\\n' writes them):
    exactly `count` records, each exactly `size` bytes, each sequence number 0..count-1 exactly
    once, each byte-identical to payload(seq, size); with `ordered`, in sequence order (one
    partition). Raises VerificationError with the first problems found."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        raise VerificationError(f"{path}: output does not end with a newline (truncated?)")
    lines = data.split(b"\n")
    lines.pop()  # after the final newline
    seen = bytearray(count)
    problems: list[str] = []
    dupes = bad = 0
    prev = -1
    for i, line in enumerate(lines):
        if len(line) != size:
            bad += 1
            if len(problems) < 5:
                problems.append(f"record #{i}: {len(line)} bytes, expected {size}: {line[:40]!r}")
            continue
        try:
            seq = int(line[:10])
        except ValueError:
            bad += 1
            if len(problems) < 5:
                problems.append(f"record #{i}: no sequence number: {line[:40]!r}")
            continue
        if not 0 <= seq < count or line != payload(seq, size):
            bad += 1
            if len(problems) < 5:
                problems.append(f"record #{i}: content differs from payload({seq}): {line[:40]!r}")
            continue
        if seen[seq]:
            dupes += 1
            if len(problems) < 5:
                problems.append(f"record #{i}: sequence {seq} delivered twice")
            continue
        seen[seq] = 1
        if ordered and seq != prev + 1 and len(problems) < 5:
            problems.append(f"record #{i}: sequence {seq} after {prev} (order broken in one partition)")
        prev = seq
    got = len(lines)
    unique = count - seen.count(0)
    if got != count or unique != count or dupes or bad or problems:
        missing = count - unique
        raise VerificationError(
            f"{path.name}: {got} records read, expected {count}; {unique} distinct valid, {missing} missing, "
            f"{dupes} duplicates, {bad} malformed/different; first problems: {problems}")
    return {"records": got, "distinct": unique, "duplicates": 0, "mismatched": 0, "ordered_checked": ordered}
