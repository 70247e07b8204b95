#!/usr/bin/env python3
"""Interop fixtures for KafkaCompression, made with the reference implementations.

    python generate.py               # (re)write the fixtures and manifest.tsv next to this script
    python generate.py verify DIR    # decode our compressors' output in DIR with the reference libraries

Needs: pip install python-snappy lz4 zstandard kafka-python (kafka-python's codec module is the xerial
snappy framing the Java client writes, and the decoders kafka-python uses on fetched batches).

Plaintexts are deterministic (fixed seeds) and stored gzip-compressed as NAME.plain.gz to keep the fixture
folder small; the Swift tests inflate them with zlib directly. manifest.tsv lists `codec<TAB>file<TAB>plaintext`.
"""
import gzip
import os
import random
import struct
import sys
import zlib

import kafka.codec
import lz4.frame
import snappy
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))


def plaintexts():
    """name -> bytes, all deterministic."""
    rng = random.Random(20240611)
    words = ("kafka record batch offset partition topic producer consumer timestamp key value header "
             "leader epoch broker segment index commit fetch replica isr controller").split()

    def records(n):
        out = bytearray()
        i = 0
        while len(out) < n:
            out += (b'{"id": %d, "%s": "%s", "%s": %d, "ts": %d}\n' % (
                i, rng.choice(words[:6]).encode(), rng.choice(words).encode(),
                rng.choice(words[:3]).encode(), rng.randrange(40), 1700000000000 + 13 * i))
            i += 1
        return bytes(out[:n])

    def logs(n):
        """Repetitive log lines, the kind of payload that compresses ~10x."""
        out = bytearray()
        i = 0
        while len(out) < n:
            out += (b"2024-06-11T10:%02d:%02d INFO [%s] %s request for topic-%d partition %d completed\n" % (
                i // 600 % 60, i // 10 % 60, rng.choice(words[:4]).encode(), rng.choice(words[:3]).encode(),
                rng.randrange(3), rng.randrange(4)))
            i += 1
        return bytes(out[:n])

    texts = {
        "one": b"x",
        "small": records(1500),
        "random": bytes(rng.randrange(256) for _ in range(3000)),
        # A four-letter alphabet: tiny Huffman trees (zstd writes their weights directly).
        "dna": bytes(rng.choice(b"ACGT") for _ in range(12000)),
        "medium": logs(70 * 1024),
        # Over 128 KiB: several zstd blocks, so entropy tables get reused (repeat and treeless modes).
        "large": records(150 * 1024),
        # Log lines spanning several blocks with similar statistics: zstd -19 reuses tables (repeat mode).
        "logs": b"".join(b"line %d value %d ok\n" % (i % 50, rng.randrange(4)) for i in range(15000)),
        # Small skewed alphabets: zstd writes their Huffman weights directly (4 bits each), not FSE-coded.
        "alpha8": bytes(rng.choices(range(8), weights=[rng.random() ** 3 for _ in range(8)], k=1000)),
        "alpha24": bytes(rng.choices(range(24), weights=[rng.random() ** 3 for _ in range(24)], k=3000)),
        # Nothing to match, but Huffman pays off: blocks with literals and no sequences.
        "literals": bytes(rng.randrange(64) + 32 for _ in range(500)),
        # A random start, then a run: the second zstd block is an RLE block.
        "rleblock": bytes(rng.randrange(256) for _ in range(1000)) + b"a" * 300000,
        "tiny": bytes(rng.choice(b"ab") for _ in range(60)),
        "handmade": b"x" * 131072 + b"".join(bytes([c]) * 4 for c in b"0123456789"),
        "runs": b"".join(bytes([rng.randrange(256)]) * rng.randrange(1, 300) for _ in range(400)),
    }
    return texts


def xerial_snappy(data):
    """Xerial framing as the Java client writes it (kafka-python mirrors snappy-java: 32 KiB blocks)."""
    return kafka.codec.snappy_encode(data, xerial_compatible=True, xerial_blocksize=32 * 1024)


def zstd(data, level, checksum=True, content_size=True):
    return zstandard.ZstdCompressor(level=level, write_checksum=checksum,
                                    write_content_size=content_size).compress(data)


def zstd_streamed(data, level):
    """A frame written by the streaming API: no content size, a window descriptor instead of single segment."""
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    chunker = compressor.chunker(chunk_size=16384)
    out = b""
    for i in range(0, len(data), 10000):
        for chunk in chunker.compress(data[i:i + 10000]):
            out += chunk
    for chunk in chunker.finish():
        out += chunk
    return out


def handmade_zstd():
    """A frame no encoder at hand writes, checked by the reference decoder like every fixture: RLE literals,
    a 3-byte sequence count, RLE symbol modes, then a block reusing those tables (repeat mode)."""
    def compressed_block(body, last):
        return struct.pack("<I", len(body) << 3 | 2 << 1 | last)[:3] + body
    n = 32768  # sequences of 1 literal + a 3-byte match at repeat offset 1: exactly 128 KiB
    literals = bytes([1 | 3 << 2 | (n & 0xF) << 4, (n >> 4) & 0xFF, n >> 12]) + b"x"  # RLE, 20-bit size
    sequences = bytes([255]) + struct.pack("<H", n - 0x7F00)  # 3-byte count
    sequences += bytes([1 << 6 | 1 << 4 | 1 << 2, 1, 0, 0])  # RLE modes: LL code 1, OF code 0, ML code 0
    sequences += b"\x01"  # the symbols read no bits: an empty bitstream
    block1 = compressed_block(literals + sequences, 0)
    literals2 = bytes([10 << 3]) + b"0123456789"  # raw, 5-bit size
    sequences2 = bytes([10, 3 << 6 | 3 << 4 | 3 << 2]) + b"\x01"  # 10 sequences, repeat mode for all
    block2 = compressed_block(literals2 + sequences2, 1)
    size = 131072 + 40
    return struct.pack("<IB", 0xFD2FB528, 2 << 6 | 0x20) + struct.pack("<I", size) + block1 + block2


def skippable(payload):
    return struct.pack("<II", 0x184D2A53, len(payload)) + payload


def fixtures(texts):
    """(codec, file name, plaintext name, compressed bytes)."""
    t = texts
    yield "gzip", "small.l6.gz", "small", gzip.compress(t["small"], 6)
    yield "gzip", "small.l1.gz", "small", gzip.compress(t["small"], 1)
    yield "gzip", "medium.l9.gz", "medium", gzip.compress(t["medium"], 9)
    yield "gzip", "multimember.gz", "medium", (gzip.compress(t["medium"][:40000]) + gzip.compress(t["medium"][40000:]))
    yield "gzip", "random.zlib", "random", zlib.compress(t["random"])
    yield "gzip", "kafka-python.gz", "small", kafka.codec.gzip_encode(t["small"])

    yield "snappy", "medium.xerial", "medium", xerial_snappy(t["medium"])
    yield "snappy", "random.xerial", "random", xerial_snappy(t["random"])
    yield "snappy", "one.xerial", "one", xerial_snappy(t["one"])
    yield "snappy", "small.raw", "small", snappy.compress(t["small"])
    yield "snappy", "medium.raw", "medium", snappy.compress(t["medium"])
    yield "snappy", "runs.raw", "runs", snappy.compress(t["runs"])

    lz = lz4.frame
    yield "lz4", "medium.default.lz4", "medium", lz.compress(t["medium"])
    yield "lz4", "medium.independent.checksums.lz4", "medium", lz.compress(
        t["medium"], block_size=lz.BLOCKSIZE_MAX64KB, block_linked=False, content_checksum=True,
        block_checksum=True, store_size=True)
    yield "lz4", "medium.linked.nochecksum.lz4", "medium", lz.compress(
        t["medium"], block_size=lz.BLOCKSIZE_MAX64KB, block_linked=True, content_checksum=False, store_size=False)
    yield "lz4", "medium.hc.256k.lz4", "medium", lz.compress(
        t["medium"], compression_level=lz.COMPRESSIONLEVEL_MINHC, block_size=lz.BLOCKSIZE_MAX256KB,
        block_linked=True, content_checksum=True)
    yield "lz4", "runs.4m.lz4", "runs", lz.compress(t["runs"], block_size=lz.BLOCKSIZE_MAX4MB, store_size=False)
    yield "lz4", "random.lz4", "random", lz.compress(t["random"], content_checksum=True)  # stored uncompressed
    yield "lz4", "one.lz4", "one", lz.compress(t["one"])
    yield "lz4", "multiframe.lz4", "small", (lz.compress(t["small"][:500]) + skippable(b"skip me")
                                             + lz.compress(t["small"][500:], block_linked=False))
    yield "lz4", "kafka-python.lz4", "small", kafka.codec.lz4_encode(t["small"])

    yield "zstd", "large.l1.zst", "large", zstd(t["large"], 1)
    yield "zstd", "large.l3.nochecksum.zst", "large", zstd(t["large"], 3, checksum=False)
    yield "zstd", "large.l19.zst", "large", zstd(t["large"], 19)
    yield "zstd", "medium.l-5.zst", "medium", zstd(t["medium"], -5)
    yield "zstd", "medium.l22.nosize.zst", "medium", zstd(t["medium"], 22, content_size=False)
    yield "zstd", "medium.streamed.zst", "medium", zstd_streamed(t["medium"], 3)
    yield "zstd", "dna.l3.zst", "dna", zstd(t["dna"], 3)
    yield "zstd", "dna.l19.zst", "dna", zstd(t["dna"], 19)
    yield "zstd", "random.zst", "random", zstd(t["random"], 3)
    yield "zstd", "runs.l19.zst", "runs", zstd(t["runs"], 19)
    # Without checksums, mutated copies of these reach deep into the decoder in the robustness tests.
    yield "zstd", "small.l19.nochecksum.zst", "small", zstd(t["small"], 19, checksum=False)
    yield "zstd", "dna.l3.nochecksum.zst", "dna", zstd(t["dna"], 3, checksum=False)
    yield "zstd", "runs.l1.nochecksum.zst", "runs", zstd(t["runs"], 1, checksum=False)
    yield "zstd", "logs.l19.zst", "logs", zstd(t["logs"], 19)
    yield "zstd", "alpha8.l3.zst", "alpha8", zstd(t["alpha8"], 3)
    yield "zstd", "alpha24.l19.zst", "alpha24", zstd(t["alpha24"], 19)
    yield "zstd", "literals.l19.zst", "literals", zstd(t["literals"], 19)
    yield "zstd", "rleblock.l3.zst", "rleblock", zstd(t["rleblock"], 3)
    yield "zstd", "tiny.l1.zst", "tiny", zstd(t["tiny"], 1)
    yield "zstd", "handmade.zst", "handmade", handmade_zstd()
    yield "zstd", "one.zst", "one", zstd(t["one"], 3)
    yield "zstd", "small.l3.zst", "small", zstd(t["small"], 3)
    yield "zstd", "multiframe.zst", "small", (zstd(t["small"][:700], 1) + skippable(b"metadata")
                                              + zstd(t["small"][700:], 19, checksum=False))
    yield "zstd", "kafka-python.zst", "small", kafka.codec.zstd_encode(t["small"])


def generate():
    texts = plaintexts()
    manifest = []
    for name, data in texts.items():
        with open(os.path.join(HERE, name + ".plain.gz"), "wb") as f:
            f.write(gzip.compress(data, 9, mtime=0))
    for codec, file_name, plain, data in fixtures(texts):
        with open(os.path.join(HERE, file_name), "wb") as f:
            f.write(data)
        # Check the fixture with the reference decoder before committing it.
        assert reference_decode(codec, data) == texts[plain], file_name
        manifest.append(f"{codec}\t{file_name}\t{plain}.plain.gz")
    with open(os.path.join(HERE, "manifest.tsv"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    total = sum(os.path.getsize(os.path.join(HERE, n)) for n in os.listdir(HERE))
    print(f"wrote {len(manifest)} fixtures; folder is {total} bytes")


def reference_decode(codec, data):
    if codec == "gzip":
        return zlib.decompress(data, 15 + 32) if data[:2] != b"\x1f\x8b" else gzip.decompress(data)
    if codec == "snappy":
        return kafka.codec.snappy_decode(data)  # detects xerial framing, else raw snappy
    if codec == "lz4":
        out = b""
        decompressor = lz4.frame.LZ4FrameDecompressor()
        while data:
            if struct.unpack_from("<I", data)[0] & 0xFFFFFFF0 == 0x184D2A50:
                data = data[8 + struct.unpack_from("<I", data, 4)[0]:]
                continue
            decompressor = lz4.frame.LZ4FrameDecompressor()
            out += decompressor.decompress(data)
            data = decompressor.unused_data
        return out
    if codec == "zstd":
        return zstd_decode_all(data)
    raise ValueError(codec)


def zstd_decode_all(data):
    reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
    return reader.read()


def verify(directory):
    """Decode NAME.CODEC files written by `compression-bench interop DIR` and compare with NAME.plain."""
    ok = failed = 0
    for file_name in sorted(os.listdir(directory)):
        stem, _, codec = file_name.rpartition(".")
        if codec not in ("gzip", "snappy", "lz4", "zstd"):
            continue
        with open(os.path.join(directory, file_name), "rb") as f:
            data = f.read()
        with open(os.path.join(directory, stem + ".plain"), "rb") as f:
            plain = f.read()
        decoders = [("reference", reference_decode)]
        # kafka-python's own decoders, as a consumer would run them on a fetched batch.
        kafka_decoders = {"gzip": kafka.codec.gzip_decode, "snappy": kafka.codec.snappy_decode,
                          "lz4": kafka.codec.lz4_decode, "zstd": kafka.codec.zstd_decode}
        decoders.append(("kafka-python", lambda c, d: kafka_decoders[c](d)))
        for label, decode in decoders:
            try:
                good = decode(codec, data) == plain
                error = "" if good else "output differs"
            except Exception as e:  # report every failure, keep going
                good, error = False, repr(e)
            if good:
                ok += 1
            else:
                failed += 1
                print(f"FAIL {label} {file_name}: {error}")
    print(f"{ok} passed, {failed} failed")
    return failed == 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "verify":
        sys.exit(0 if verify(sys.argv[2]) else 1)
    generate()
