"""The `samsa` command-line client (the same binary as the broker), run as a real process against a
real `samsa broker`, checked against confluent-kafka and kafka-python.

AP1  `topic create/describe/list/alter-config/delete` and `cluster info` agree with what
     confluent's AdminClient (and kafka-python's describe_cluster) sees; `cluster info` shows
     broker status and under-replicated / offline partitions; `cluster elect-leaders` and
     `topic reassign` on a single node (and on a scripted two-broker fake cluster); `cluster
     log-dirs`; DescribeTopicPartitions paged by kafka-python; `produce` -> `consume --count
     --format` round trip (keys via --key-separator, headers via --header, %t %p %o %k %v %h
     %T); `group describe [--json]`
     shows members (client id, host, member id), assignments, committed offsets and
     lag = log end - committed exactly as the confluent consumers and both admin clients
     (confluent, kafka-python) report them, also once the group is empty; `group
     reset-offsets` (--dry-run changes nothing, refused while the group has a member,
     --to-datetime / --to-earliest / --to-latest / --shift-by) and a new member then starting at
     the reset offsets; `group delete`.
AP2  Failures are one readable line on stderr, `samsa <command>: ...`, and a non-zero exit
     code: every client command against a closed port, an unknown topic, an existing topic,
     bad configs.
AP3  Byte-identical interop both ways: `samsa produce` (each codec) -> confluent consumer, with
     keyed records in the partition the Java client's murmur2 partitioner picks (and the one
     confluent's murmur2_random picks); kafka-python producer (none, gzip) -> `samsa consume`.
AP4  `samsa perf produce` + `perf consume --verify` (and that --verify does notice a duplicate),
     `samsa perf e2e --json`.

Commands that are expected to fail against a closed port are started when the module starts
(fixture `closed_port_runs`) and checked by the last tests, so their retry time overlaps the
rest of the module.
"""
from __future__ import annotations

import base64
import json
import random
import socket
import subprocess
import threading
import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

import kafka_raw
from samsa_interop import (group_consumer, SAMSA_BIN, confluent_admin, consume_range, group_lag, java_murmur2,
                           java_partition, parse_table, samsa_cli, wait_until, watermarks)

# Groups form at once and short sessions are allowed (as in test_groups.py).
BROKER_OVERRIDES = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
}

CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
JAN_1_2026_MS = 1767225600000  # 2026-01-01T00:00:00Z


# ---- helpers ------------------------------------------------------------------------------------


def cli(broker, *args: str, input_bytes: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs a samsa client command against `broker` and requires exit code 0."""
    p = samsa_cli(broker.bootstrap, *args, input_bytes=input_bytes, timeout=timeout)
    assert p.returncode == 0, (f"samsa {' '.join(args)} exited with {p.returncode}\nstdout: {p.stdout.decode(errors='replace')}"
                               f"\nstderr: {p.stderr.decode(errors='replace')}")
    return p


def assert_one_line_error(p: subprocess.CompletedProcess, command: str, *needles: str, stdout_empty: bool = True) -> str:
    """The CLI's failure contract: a non-zero exit code and exactly one line on stderr,
    `samsa <command>: <readable message>` containing every needle (case-insensitive)."""
    err = p.stderr.decode(errors="replace")
    assert p.returncode not in (0, None), f"samsa {command}: exit code {p.returncode}, stderr {err!r}"
    assert p.returncode > 0, f"samsa {command}: killed by signal {-p.returncode} (a crash, not an error exit): {err!r}"
    lines = err.rstrip("\n").split("\n")
    assert len(lines) == 1 and err.endswith("\n"), f"samsa {command}: stderr is not one line: {err!r}"
    line = lines[0]
    assert line.startswith(f"samsa {command}: ") and len(line) > len(f"samsa {command}: ") + 5, line
    for n in needles:
        assert n.lower() in line.lower(), f"samsa {command}: {n!r} not in the error line {line!r}"
    for bad in ("Fatal error", "Traceback", "Stack dump", "0x0000"):
        assert bad not in line, line
    if stdout_empty:
        assert p.stdout == b"", f"samsa {command}: unexpected stdout {p.stdout!r}"
    return line


def describe_topic(broker, topic: str, *extra: str) -> tuple[dict[str, str], list[dict[str, str]], dict[str, tuple[str, str]]]:
    """`samsa topic describe`: ({NAME, TOPIC ID, INTERNAL}, partition rows, {config: (value, source)})."""
    text = cli(broker, "topic", "describe", topic, *extra).stdout.decode()
    blocks = text.split("\n\n")
    assert len(blocks) == 3, f"expected a header, a partition table and a config table: {text!r}"
    head = {}
    for line in blocks[0].splitlines():
        for key in ("NAME", "TOPIC ID", "INTERNAL"):
            if line.startswith(key + " "):
                head[key] = line[len(key) + 1:]
    parts = parse_table(blocks[1])
    configs = {r["CONFIG"]: (r["VALUE"], r["SOURCE"]) for r in parse_table(blocks[2])}
    return head, parts, configs


def topic_list(broker, *extra: str) -> dict[str, dict[str, str]]:
    return {r["NAME"]: r for r in parse_table(cli(broker, "topic", "list", *extra).stdout.decode())}


def group_describe_json(broker, group: str) -> dict:
    p = cli(broker, "group", "describe", group, "--json")
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 1, f"--json should print one line: {p.stdout!r}"
    return json.loads(lines[0])


def group_describe_table(broker, group: str) -> tuple[str, list[dict[str, str]]]:
    text = cli(broker, "group", "describe", group).stdout.decode()
    head, _, table = text.partition("\n\n")
    return head, parse_table(table)


def committed_of(broker, group: str, topic: str) -> dict[int, int]:
    """Committed offsets of `group` on `topic` as confluent's AdminClient reads them."""
    return {p: v["committed"] for (t, p), v in group_lag(broker.bootstrap, group).items() if t == topic}


def produce_lines(broker, topic: str, lines: list[str], *args: str) -> None:
    cli(broker, "produce", topic, *args, input_bytes=("\n".join(lines) + "\n").encode())


def json_summary(stdout: bytes) -> dict:
    """The JSON summary line of a `perf ... --json` run."""
    objs = [json.loads(ln) for ln in stdout.decode().splitlines() if ln.startswith("{")]
    assert len(objs) == 1, f"expected one JSON line: {stdout!r}"
    return objs[0]


def assert_percentiles(lat: dict, what: str, upper_ms: float):
    assert set(lat) >= {"avg", "p50", "p95", "p99", "p999", "max"}, lat
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p999"] <= lat["max"] < upper_ms, (what, lat)
    assert 0 < lat["avg"] <= lat["max"], (what, lat)


# ---- commands run against a closed port, started with the module ----------------------------------


class ClosedPortRun:
    """One CLI command against 127.0.0.1:<closed port>, run in the background; gives up (kills
    it) `deadline` seconds after the start."""

    def __init__(self, name: str, command: str, args: list[str], port: int, input_bytes: bytes | None, deadline: float):
        self.name, self.command = name, command
        self.start = time.monotonic()
        self.proc = subprocess.Popen([SAMSA_BIN, *args, "--bootstrap-server", f"127.0.0.1:{port}"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.result: subprocess.CompletedProcess | None = None
        self.elapsed = None
        self.hung = False

        def wait():
            try:
                out, err = self.proc.communicate(input_bytes, timeout=deadline)
            except subprocess.TimeoutExpired:
                self.hung = True
                self.proc.kill()
                out, err = self.proc.communicate()
            self.elapsed = time.monotonic() - self.start
            self.result = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)

        self.thread = threading.Thread(target=wait, daemon=True)
        self.thread.start()

    def wait(self) -> subprocess.CompletedProcess:
        self.thread.join()
        return self.result


CLOSED_PORT_DEADLINE = 25.0
CLOSED_PORT_COMMANDS = {
    # id: (command name in the error line, arguments, stdin)
    "topic-list": ("topic list", ["topic", "list"], None),
    "topic-create": ("topic create", ["topic", "create", "cli-closed"], None),
    "topic-describe": ("topic describe", ["topic", "describe", "cli-closed"], None),
    "topic-delete": ("topic delete", ["topic", "delete", "cli-closed"], None),
    "produce": ("produce", ["produce", "cli-closed", "--key-separator", ":"], b"k:v\nk2:v2\n"),
    "consume": ("consume", ["consume", "cli-closed", "--from-beginning", "--count", "1"], None),
    "consume-group": ("consume", ["consume", "cli-closed", "--group", "cli-closed-g", "--count", "1"], None),
    "consume-group-idle": ("consume", ["consume", "cli-closed", "--group", "cli-closed-g", "--idle-timeout-ms", "2000"], None),
    "group-list": ("group list", ["group", "list"], None),
    "group-describe": ("group describe", ["group", "describe", "cli-closed-g", "--json"], None),
    "group-reset-offsets": ("group reset-offsets", ["group", "reset-offsets", "cli-closed-g", "--topic", "cli-closed",
                                                    "--to-earliest"], None),
    "cluster-info": ("cluster info", ["cluster", "info"], None),
    "cluster-elect-leaders": ("cluster elect-leaders", ["cluster", "elect-leaders"], None),
    "topic-reassign-list": ("topic reassign", ["topic", "reassign", "--list"], None),
    "cluster-log-dirs": ("cluster log-dirs", ["cluster", "log-dirs"], None),
    "perf-produce": ("perf produce", ["perf", "produce", "--topic", "cli-closed", "--num-records", "10"], None),
}


@pytest.fixture(scope="module", autouse=True)
def closed_port_runs():
    # A bound socket that never listens: connections to its port are refused, and no broker
    # started meanwhile can be given the same port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        runs = {k: ClosedPortRun(k, name, args, port, stdin, CLOSED_PORT_DEADLINE)
                for k, (name, args, stdin) in CLOSED_PORT_COMMANDS.items()}
        yield port, runs
        for r in runs.values():
            if r.proc.poll() is None:
                r.proc.kill()
            r.thread.join(10)


# ============================================================================================
# AP1: topics and cluster
# ============================================================================================


def test_topic_create_describe_list_alter_delete(broker):
    """AP1: `topic create -p 5 -c ... -c ...` creates what confluent's AdminClient then sees
    (5 partitions led by broker 0, the two configs as dynamic topic configs); `topic describe`
    shows the name, the topic id confluent reports, 5 partitions with leader 0, replicas and
    ISR [0], log start 0 and high watermarks equal to confluent's after a `produce
    --partition`, and exactly the configs set on the topic; `--all-configs` adds the defaults;
    `topic list` shows it with 5 partitions and 1 replica and lists __consumer_offsets only
    with --internal; `create --dry-run` creates nothing; `alter-config --set/--delete` changes
    what describe and confluent show; `topic delete` removes it."""
    topic = "cli-topic"
    admin = confluent_admin(broker.bootstrap)
    p = cli(broker, "topic", "create", topic, "-p", "5", "-r", "1", "-c", "retention.ms=123456789",
            "-c", "cleanup.policy=compact")
    assert p.stdout.decode() == f"created topic {topic}\n"

    md = admin.list_topics(topic=topic, timeout=10).topics[topic]
    assert md.error is None and sorted(md.partitions) == list(range(5)), md
    assert all(x.leader == 0 and x.replicas == [0] and x.isrs == [0] for x in md.partitions.values())
    desc = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=10)

    head, parts, configs = describe_topic(broker, topic)
    assert set(head) == {"NAME", "TOPIC ID", "INTERNAL"} and (head["NAME"], head["INTERNAL"]) == (topic, "false"), head
    # The same 16 bytes; samsa prints them URL-safe base64 like Java's Uuid.toString, confluent
    # with the standard alphabet.
    assert base64.urlsafe_b64decode(head["TOPIC ID"] + "==") == base64.b64decode(str(desc.topic_id) + "=="), (
        head["TOPIC ID"], str(desc.topic_id))
    assert [r["PARTITION"] for r in parts] == [str(i) for i in range(5)]
    for r in parts:
        assert (r["LEADER"], r["REPLICAS"], r["ISR"], r["LOG-START-OFFSET"], r["HIGH-WATERMARK"]) == ("0", "0", "0", "0", "0"), r
        assert r["EPOCH"].isdigit(), r
    assert configs == {"cleanup.policy": ("compact", "dynamicTopic"), "retention.ms": ("123456789", "dynamicTopic")}
    conf = admin.describe_configs([ConfigResource("topic", topic)])
    entries = next(iter(conf.values())).result(timeout=10)
    for name, value in (("cleanup.policy", "compact"), ("retention.ms", "123456789")):
        assert entries[name].value == value and entries[name].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, entries[name]

    # High watermarks after writing to two partitions, as confluent sees them (keyed records: the
    # topic is compacted, and a compacted topic refuses records without a key).
    produce_lines(broker, topic, [f"k{i}:p2-{i}" for i in range(7)], "--partition", "2", "--key-separator", ":")
    produce_lines(broker, topic, [f"k{i}:p4-{i}" for i in range(3)], "--partition", "4", "--acks", "1", "--key-separator", ":")
    _, parts, _ = describe_topic(broker, topic)
    hw = {int(r["PARTITION"]): int(r["HIGH-WATERMARK"]) for r in parts}
    assert hw == {0: 0, 1: 0, 2: 7, 3: 0, 4: 3}
    assert hw == {q: watermarks(broker.bootstrap, topic, q)[1] for q in range(5)}

    # --all-configs: the overrides plus every default.
    _, _, all_configs = describe_topic(broker, topic, "--all-configs")
    assert all_configs["cleanup.policy"] == ("compact", "dynamicTopic")
    assert all_configs["segment.bytes"][1] == "defaultConfig" and all_configs["segment.bytes"][0].isdigit()
    assert len(all_configs) > 15 and set(configs) < set(all_configs)

    # topic list, with and without internal topics (a commit makes __consumer_offsets exist).
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "cli-topic-commit", "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 2, 1)], asynchronous=False)
    finally:
        c.close()
    listed = topic_list(broker)
    assert (listed[topic]["PARTITIONS"], listed[topic]["REPLICAS"]) == ("5", "1")
    assert "__consumer_offsets" not in listed
    internal = topic_list(broker, "--internal")
    offsets_md = admin.list_topics(topic="__consumer_offsets", timeout=10).topics["__consumer_offsets"]
    assert internal["__consumer_offsets"]["PARTITIONS"] == str(len(offsets_md.partitions))
    assert set(listed) < set(internal)

    # create --dry-run
    p = cli(broker, "topic", "create", "cli-topic-dry", "-p", "2", "--dry-run")
    assert "can be created" in p.stdout.decode()
    assert "cli-topic-dry" not in topic_list(broker)
    assert "cli-topic-dry" not in admin.list_topics(timeout=10).topics

    # alter-config
    p = cli(broker, "topic", "alter-config", topic, "--set", "retention.ms=1000", "--set", "max.message.bytes=2048",
            "--delete", "cleanup.policy")
    _, _, configs = describe_topic(broker, topic)
    assert configs == {"retention.ms": ("1000", "dynamicTopic"), "max.message.bytes": ("2048", "dynamicTopic")}
    entries = next(iter(admin.describe_configs([ConfigResource("topic", topic)]).values())).result(timeout=10)
    assert (entries["retention.ms"].value, entries["max.message.bytes"].value) == ("1000", "2048")
    assert entries["cleanup.policy"].value == "delete" and entries["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value

    # delete
    p = cli(broker, "topic", "delete", topic)
    assert topic in p.stdout.decode()
    assert topic not in topic_list(broker)
    wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, timeout=10, message=f"{topic} gone from metadata")


def cluster_info(broker) -> tuple[list[str], dict[str, list[dict[str, str]] | None]]:
    """`samsa cluster info` as (head lines, {section: rows or None for "none"}); the broker table
    is the section "BROKERS"."""
    text = cli(broker, "cluster", "info").stdout.decode()
    blocks = text.rstrip("\n").split("\n\n")
    assert len(blocks) == 4, text
    sections: dict[str, list[dict[str, str]] | None] = {"BROKERS": parse_table(blocks[1])}
    for block in blocks[2:]:
        title, _, body = block.partition("\n")
        sections[title] = None if body == "none" else parse_table(body)
    return blocks[0].split("\n"), sections


def test_cluster_info(broker):
    """AP1: `cluster info` prints the cluster id and controller confluent's metadata and
    kafka-python's describe_cluster report, the one broker (id 0, live) at the listener address,
    and "none" for under-replicated and offline partitions (every partition of a single node is
    fully in sync)."""
    cli(broker, "topic", "create", "cli-cluster-info", "-p", "3")
    md = confluent_admin(broker.bootstrap).list_topics(timeout=10)
    head, sections = cluster_info(broker)
    assert head == [f"CLUSTER {md.cluster_id}", f"CONTROLLER {md.controller_id}"], head
    assert md.cluster_id and md.controller_id == 0
    assert [(r["ID"], r["HOST"], r["PORT"], r["RACK"], r["STATUS"]) for r in sections["BROKERS"]] == [
        ("0", "127.0.0.1", str(broker.port), "", "live")], sections
    assert sections["UNDER-REPLICATED PARTITIONS"] is None and sections["OFFLINE PARTITIONS"] is None, sections

    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        kc = kadmin.describe_cluster()
    finally:
        kadmin.close()
    assert (kc["cluster_id"], kc["controller_id"]) == (md.cluster_id, md.controller_id), kc
    assert [(b["broker_id"], b["host"], b["port"]) for b in kc["brokers"]] == [(0, "127.0.0.1", broker.port)], kc
    cli(broker, "topic", "delete", "cli-cluster-info")


def test_cluster_elect_leaders(broker):
    """AP1: `cluster elect-leaders` on a single node. Where the broker serves ElectLeaders, every
    partition of the topic (or the one named) answers ELECTION_NOT_NEEDED — its only replica
    already leads — and the command succeeds; where it does not (no replication yet), the command
    fails with one line naming the API. `--partition` without `--topic` and an unknown `--type`
    are usage errors."""
    topic = "cli-elect"
    cli(broker, "topic", "create", topic, "-p", "2")
    with kafka_raw.KafkaConnection("127.0.0.1", broker.port) as conn:
        served = 43 in kafka_raw.api_versions(conn)  # ElectLeaders
    for args, expected in ((["--topic", topic], ["0", "1"]), (["--topic", topic, "--partition", "1"], ["1"]),
                           (["--type", "preferred"], None)):
        p = samsa_cli(broker.bootstrap, "cluster", "elect-leaders", *args)
        if not served:
            assert_one_line_error(p, "cluster elect-leaders", "ElectLeaders")
            continue
        assert p.returncode == 0, (p.stdout, p.stderr)
        rows = [r for r in parse_table(p.stdout.decode()) if r["TOPIC"] == topic]
        if expected is not None:
            assert [r["PARTITION"] for r in rows] == expected, rows
        assert rows and all(r["RESULT"] == "ELECTION_NOT_NEEDED" for r in rows), rows
    p = samsa_cli(broker.bootstrap, "cluster", "elect-leaders", "--partition", "1")
    assert p.returncode != 0 and b"--partition needs --topic" in p.stderr, p.stderr
    p = samsa_cli(broker.bootstrap, "cluster", "elect-leaders", "--type", "dirty")
    assert p.returncode != 0 and b"--type must be preferred or unclean" in p.stderr, p.stderr
    cli(broker, "topic", "delete", topic)


def test_cluster_topic_reassign(broker):
    """AP1: `topic reassign` on a single node. Where the broker serves the reassignment APIs,
    `--list` shows none in progress and moving a partition onto the replica it already has is
    accepted ("started"); where it does not, each fails with one line naming the API. Usage
    errors: no --partition, both or neither of --replicas/--cancel, a bad replica list."""
    topic = "cli-reassign"
    cli(broker, "topic", "create", topic, "-p", "1")
    with kafka_raw.KafkaConnection("127.0.0.1", broker.port) as conn:
        versions = kafka_raw.api_versions(conn)
    p = samsa_cli(broker.bootstrap, "topic", "reassign", "--list")
    if 46 in versions:  # ListPartitionReassignments
        assert p.returncode == 0 and p.stdout.decode() == "no reassignments in progress\n", (p.stdout, p.stderr)
    else:
        assert_one_line_error(p, "topic reassign", "ListPartitionReassignments")
    p = samsa_cli(broker.bootstrap, "topic", "reassign", topic, "--partition", "0", "--replicas", "0")
    if 45 in versions:  # AlterPartitionReassignments
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert [(r["TOPIC"], r["PARTITION"], r["RESULT"]) for r in parse_table(p.stdout.decode())] == [(topic, "0", "started")]
    else:
        assert_one_line_error(p, "topic reassign", "AlterPartitionReassignments")
    for args, needle in ((["--replicas", "0"], b"--partition"), (["--partition", "0"], b"--replicas or --cancel"),
                         (["--partition", "0", "--replicas", "0", "--cancel"], b"--replicas or --cancel"),
                         (["--partition", "0", "--replicas", "0,x"], b"broker ids"),
                         (["--partition", "0", "--replicas", "1,1"], b"twice")):
        p = samsa_cli(broker.bootstrap, "topic", "reassign", topic, *args)
        assert p.returncode != 0 and needle in p.stderr, (args, p.stderr)
    cli(broker, "topic", "delete", topic)


def test_cluster_log_dirs(broker):
    """AP1: `cluster log-dirs` shows the broker's one log dir (its real path, "ok", the volume's
    sizes) and each replica of a topic with its size on disk — the bytes of its segment files —
    and no lag; `--topic` filters the replicas, an unknown `--broker` is a one-line error."""
    import os
    topic = "cli-log-dirs"
    cli(broker, "topic", "create", topic, "-p", "2")
    produce_lines(broker, topic, [f"v{i}" for i in range(5)], "--partition", "1")
    text = cli(broker, "cluster", "log-dirs", "--topic", topic).stdout.decode()
    dirs_text, _, replicas_text = text.partition("\n\n")
    dirs = parse_table(dirs_text)
    assert [(r["BROKER"], r["DIR"], r["STATUS"]) for r in dirs] == [("0", os.path.realpath(broker.data_dir), "ok")], text
    assert int(dirs[0]["TOTAL-BYTES"]) >= int(dirs[0]["USABLE-BYTES"]) > 0, text
    rows = parse_table(replicas_text)
    assert [(r["TOPIC"], r["PARTITION"], r["OFFSET-LAG"]) for r in rows] == [(topic, "0", "0"), (topic, "1", "0")], text
    on_disk = [sum(f.stat().st_size for f in (broker.data_dir / f"{topic}-{q}").glob("*.log")) for q in (0, 1)]
    assert [int(r["SIZE"]) for r in rows] == on_disk and on_disk[0] == 0 and on_disk[1] > 0, (rows, on_disk)
    assert cli(broker, "cluster", "log-dirs", "--topic", "cli-log-dirs-none").stdout.decode().endswith("\n\nno replicas\n")
    assert_one_line_error(samsa_cli(broker.bootstrap, "cluster", "log-dirs", "--broker", "7"), "cluster log-dirs", "broker 7")
    cli(broker, "topic", "delete", topic)


def test_cluster_describe_topic_partitions_kafka_python(broker):
    """DescribeTopicPartitions (KIP-966) as kafka-python's admin pages through it: a 3-partition
    topic with limit 2 comes in two pages joined by the cursor, with leader, replicas, ISR and no
    offline replicas; an unknown topic answers UNKNOWN_TOPIC_OR_PARTITION."""
    topic = "cli-dtp"
    cli(broker, "topic", "create", topic, "-p", "3")
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        first = kadmin.describe_topic_partitions([topic], response_partition_limit=2)
        assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in first["topics"]] == [(topic, [0, 1])], first
        assert first["next_cursor"] == {"topic_name": topic, "partition_index": 2}, first
        second = kadmin.describe_topic_partitions([topic], response_partition_limit=2, cursor=first["next_cursor"])
        assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in second["topics"]] == [(topic, [2])], second
        assert second["next_cursor"] is None, second
        for p in first["topics"][0]["partitions"] + second["topics"][0]["partitions"]:
            assert (p["error_code"], p["leader_id"], p["replica_nodes"], p["isr_nodes"], p["offline_replicas"]) == (0, 0, [0], [0], []), p
        missing = kadmin.describe_topic_partitions(["cli-dtp-missing"])
        assert [(t["name"], t["error_code"]) for t in missing["topics"]] == [("cli-dtp-missing", 3)], missing
    finally:
        kadmin.close()
    cli(broker, "topic", "delete", topic)


class FakeCluster:
    """A scripted cluster for the cluster commands' multi-broker output, which a single Samsa node
    cannot show yet: brokers 1 and 2, each a thread serving the Kafka protocol on its own port
    (requests and responses encoded by kafka-python's protocol classes), controller 2, broker 3
    registered nowhere but named as a replica. Topic `alpha`: partition 0 under-replicated
    (replicas 1,2,3, ISR 1,2), partition 1 healthy; topic `beta`: partition 0 offline (leader
    -1, only replica 3). Controller requests sent to broker 1 answer NOT_CONTROLLER; what the
    controller receives is recorded in `received`."""

    CONTROLLER = 2

    def __init__(self):
        self.received: list[tuple[str, int, object]] = []
        self.lock = threading.Lock()
        self.servers = [self._serve(node) for node in (1, 2)]
        self.ports = {node: srv.getsockname()[1] for node, srv in zip((1, 2), self.servers)}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports[1]}"

    def close(self):
        for srv in self.servers:
            srv.close()

    def _serve(self, node: int) -> socket.socket:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)

        def accept():
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                threading.Thread(target=self._connection, args=(node, conn), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return srv

    def _connection(self, node: int, conn: socket.socket):
        import struct

        def read(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise EOFError
                data += chunk
            return data

        with conn:
            try:
                while True:
                    frame = read(struct.unpack(">i", read(4))[0])
                    api_key, version = struct.unpack(">hh", frame[:4])
                    request_class, response_class, answer = self._apis()[api_key]
                    request = request_class.decode(frame, version=version, header=True)
                    response = answer(node, version, request)
                    response.API_VERSION = version
                    response.with_header(correlation_id=request.header.correlation_id)
                    conn.sendall(bytes(response.encode(header=True, framed=True)))
            except (EOFError, OSError):
                return

    def _apis(self):
        from kafka.protocol import admin as A
        from kafka.protocol import metadata as M
        return {
            18: (M.ApiVersionsRequest, M.ApiVersionsResponse, self._api_versions),
            3: (M.MetadataRequest, M.MetadataResponse, self._metadata),
            60: (A.DescribeClusterRequest, A.DescribeClusterResponse, self._describe_cluster),
            43: (A.ElectLeadersRequest, A.ElectLeadersResponse, self._elect_leaders),
            45: (A.AlterPartitionReassignmentsRequest, A.AlterPartitionReassignmentsResponse, self._alter_reassignments),
            46: (A.ListPartitionReassignmentsRequest, A.ListPartitionReassignmentsResponse, self._list_reassignments),
        }

    def _api_versions(self, node, version, request):
        from kafka.protocol.metadata import ApiVersionsResponse as R
        ranges = {18: (0, 3), 3: (1, 12), 60: (0, 1), 43: (0, 2), 45: (0, 0), 46: (0, 0)}
        return R(error_code=0, api_keys=[R.ApiVersion(api_key=k, min_version=a, max_version=b) for k, (a, b) in sorted(ranges.items())])

    PARTITIONS = {"alpha": [(0, 1, [1, 2, 3], [1, 2]), (1, 2, [2, 1], [2, 1])], "beta": [(0, -1, [3], [3])]}

    def _metadata(self, node, version, request):
        from kafka.protocol.metadata import MetadataResponse as R
        T, P = R.MetadataResponseTopic, R.MetadataResponseTopic.MetadataResponsePartition
        names = sorted(self.PARTITIONS) if request.topics is None else [t.name for t in request.topics]
        topics = [T(error_code=0, name=n, is_internal=False, partitions=[
            P(error_code=5 if leader < 0 else 0, partition_index=i, leader_id=leader, leader_epoch=4, replica_nodes=replicas,
              isr_nodes=isr, offline_replicas=[r for r in replicas if r == 3])
            for i, leader, replicas, isr in self.PARTITIONS[n]]) if n in self.PARTITIONS else T(error_code=3, name=n, partitions=[])
            for n in names]
        return R(brokers=[R.MetadataResponseBroker(node_id=b, host="127.0.0.1", port=self.ports[b], rack=f"rack-{b}") for b in (1, 2)],
                 cluster_id="fake-cluster", controller_id=self.CONTROLLER, topics=topics)

    def _describe_cluster(self, node, version, request):
        from kafka.protocol.admin import DescribeClusterResponse as R
        return R(error_code=0, error_message=None, endpoint_type=1, cluster_id="fake-cluster", controller_id=self.CONTROLLER,
                 brokers=[R.DescribeClusterBroker(broker_id=b, host="127.0.0.1", port=self.ports[b], rack=f"rack-{b}") for b in (1, 2)])

    def _record(self, node, name, version, request) -> bool:
        """Records a controller request; False when it reached a broker that is not the controller."""
        with self.lock:
            self.received.append((name if node == self.CONTROLLER else f"{name}@{node}", version, request))
        return node == self.CONTROLLER

    def _elect_leaders(self, node, version, request):
        from kafka.protocol.admin import ElectLeadersResponse as R
        if not self._record(node, "ElectLeaders", version, request):
            return R(error_code=41, replica_election_results=[])  # NOT_CONTROLLER
        wanted = [(t.topic, list(t.partitions)) for t in request.topic_partitions] if request.topic_partitions is not None else [
            (n, [p[0] for p in ps]) for n, ps in sorted(self.PARTITIONS.items())]

        def result(topic, p):
            if topic == "beta":
                return R.ReplicaElectionResult.PartitionResult(partition_id=p, error_code=83, error_message="no live replica")
            if p == 1:
                return R.ReplicaElectionResult.PartitionResult(partition_id=p, error_code=84, error_message=None)
            return R.ReplicaElectionResult.PartitionResult(partition_id=p, error_code=0, error_message=None)

        return R(error_code=0, replica_election_results=[
            R.ReplicaElectionResult(topic=t, partition_result=[result(t, p) for p in ps]) for t, ps in wanted])

    def _alter_reassignments(self, node, version, request):
        from kafka.protocol.admin import AlterPartitionReassignmentsResponse as R
        if not self._record(node, "AlterPartitionReassignments", version, request):
            return R(error_code=41, error_message="not the controller", responses=[])
        P = R.ReassignableTopicResponse.ReassignablePartitionResponse
        return R(error_code=0, error_message=None, responses=[R.ReassignableTopicResponse(name=t.name, partitions=[
            P(partition_index=p.partition_index, error_code=0 if p.replicas is not None else 85, error_message=None)
            for p in t.partitions]) for t in request.topics])

    def _list_reassignments(self, node, version, request):
        from kafka.protocol.admin import ListPartitionReassignmentsResponse as R
        if not self._record(node, "ListPartitionReassignments", version, request):
            return R(error_code=41, error_message="not the controller", topics=[])
        P = R.OngoingTopicReassignment.OngoingPartitionReassignment
        return R(error_code=0, error_message=None, topics=[R.OngoingTopicReassignment(name="alpha", partitions=[
            P(partition_index=0, replicas=[1, 2, 3, 4], adding_replicas=[4], removing_replicas=[3])])])


@pytest.fixture
def fake_cluster():
    fake = FakeCluster()
    yield fake
    fake.close()


def test_cluster_info_on_a_fake_cluster(fake_cluster):
    """AP1 (operator view, issue 12): on a two-broker cluster with a third broker gone,
    `cluster info` lists brokers 1 and 2 as live (host, port, rack) and 3 as offline, the
    controller, alpha-0 as under-replicated (ISR shorter than the replicas) and beta-0 as offline
    (no leader) — and nothing else in either section."""
    fake = fake_cluster
    text = cli(fake, "cluster", "info").stdout.decode()
    blocks = text.rstrip("\n").split("\n\n")
    assert blocks[0].split("\n") == ["CLUSTER fake-cluster", "CONTROLLER 2"], text
    assert [(r["ID"], r["HOST"], r["PORT"], r["RACK"], r["STATUS"]) for r in parse_table(blocks[1])] == [
        ("1", "127.0.0.1", str(fake.ports[1]), "rack-1", "live"), ("2", "127.0.0.1", str(fake.ports[2]), "rack-2", "live"),
        ("3", "-", "-", "", "offline")], text
    title, _, body = blocks[2].partition("\n")
    assert title == "UNDER-REPLICATED PARTITIONS", text
    assert parse_table(body) == [{"TOPIC": "alpha", "PARTITION": "0", "LEADER": "1", "REPLICAS": "1,2,3", "ISR": "1,2"}], text
    title, _, body = blocks[3].partition("\n")
    assert title == "OFFLINE PARTITIONS", text
    assert parse_table(body) == [{"TOPIC": "beta", "PARTITION": "0", "LEADER": "-1", "REPLICAS": "3", "ISR": "3"}], text


def test_cluster_elect_leaders_on_a_fake_cluster(fake_cluster):
    """AP1: `cluster elect-leaders` goes to the controller (broker 2, though bootstrapped from
    broker 1) with the election type and the partitions asked for (all: a null list), prints
    one row per partition ("elected" or the error's name), succeeds when the only errors are
    ELECTION_NOT_NEEDED and otherwise exits 1 with one line naming the failed partitions."""
    fake = fake_cluster
    p = cli(fake, "cluster", "elect-leaders", "--topic", "alpha")
    rows = parse_table(p.stdout.decode())
    assert [(r["TOPIC"], r["PARTITION"], r["RESULT"]) for r in rows] == [("alpha", "0", "elected"), ("alpha", "1", "ELECTION_NOT_NEEDED")], rows
    name, version, request = fake.received[-1]
    assert (name, version, request.election_type) == ("ElectLeaders", 2, 0), fake.received
    assert [(t.topic, sorted(t.partitions)) for t in request.topic_partitions] == [("alpha", [0, 1])]

    p = samsa_cli(fake.bootstrap, "cluster", "elect-leaders", "--type", "unclean", "--topic", "beta", "--partition", "0")
    line = assert_one_line_error(p, "cluster elect-leaders", "beta-0", "ELIGIBLE_LEADERS_NOT_AVAILABLE", stdout_empty=False)
    assert "1 of 1" in line, line
    rows = parse_table(p.stdout.decode())
    assert rows == [{"TOPIC": "beta", "PARTITION": "0", "RESULT": "ELIGIBLE_LEADERS_NOT_AVAILABLE", "MESSAGE": "no live replica"}], rows
    assert fake.received[-1][2].election_type == 1

    p = samsa_cli(fake.bootstrap, "cluster", "elect-leaders")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert fake.received[-1][2].topic_partitions is None
    assert [(r["TOPIC"], r["PARTITION"]) for r in parse_table(p.stdout.decode())] == [("alpha", "0"), ("alpha", "1"), ("beta", "0")]
    assert not [r for r in fake.received if "@" in r[0]], f"a controller request went to broker 1: {fake.received}"


def test_topic_reassign_on_a_fake_cluster(fake_cluster):
    """AP1: `topic reassign` sends the new replica list (or a cancellation: null replicas) to the
    controller and prints each partition's result; `--list` shows moves in progress with the
    replicas being added and removed."""
    fake = fake_cluster
    p = cli(fake, "topic", "reassign", "alpha", "--partition", "0", "--partition", "1", "--replicas", "2,1,4")
    assert [(r["TOPIC"], r["PARTITION"], r["RESULT"]) for r in parse_table(p.stdout.decode())] == [("alpha", "0", "started"), ("alpha", "1", "started")]
    name, _, request = fake.received[-1]
    assert name == "AlterPartitionReassignments"
    assert [(t.name, [(q.partition_index, list(q.replicas)) for q in t.partitions]) for t in request.topics] == [("alpha", [(0, [2, 1, 4]), (1, [2, 1, 4])])]

    p = samsa_cli(fake.bootstrap, "topic", "reassign", "alpha", "--partition", "1", "--cancel")
    assert_one_line_error(p, "topic reassign", "alpha-1", "NO_REASSIGNMENT_IN_PROGRESS", stdout_empty=False)
    assert [q.replicas for q in fake.received[-1][2].topics[0].partitions] == [None]

    p = cli(fake, "topic", "reassign", "--list")
    assert parse_table(p.stdout.decode()) == [{"TOPIC": "alpha", "PARTITION": "0", "REPLICAS": "1,2,3,4", "ADDING": "4", "REMOVING": "3"}]
    assert cli(fake, "topic", "reassign", "beta", "--list").stdout.decode() == "no reassignments in progress\n"
    assert not [r for r in fake.received if "@" in r[0]], f"a controller request went to broker 1: {fake.received}"


# ============================================================================================
# AP1: produce -> consume
# ============================================================================================


def test_produce_consume_roundtrip_with_format(broker):
    """AP1: 90 lines produced with `--key-separator ::` (split at the first `::` only; a line
    without it gets a null key, `::x` an empty key) and three --header (a value containing '=',
    non-ASCII) come back from `consume --from-beginning --count 90 --format
    '%t|%p|%o|%k|%v|%h|%T\\n'` exactly: topic, every key and value, the headers as k=v,...,
    timestamps taken during the produce, offsets 0..n-1 per partition in production order, and
    every keyed record in the partition the Java client would pick. --count stops after that
    many records; --partition/--offset start where asked; the default format is the value."""
    topic, partitions = "cli-roundtrip", 3
    cli(broker, "topic", "create", topic, "-p", str(partitions))
    rows = []  # (key or None, value)
    for i in range(90):
        if i % 15 == 7:
            rows.append((None, f"no separator {i} ü"))
        elif i % 15 == 11:
            rows.append(("", f"empty key {i}"))
        else:
            rows.append((f"k{i % 8}-ключ", f"v{i}::after the first separator::✓ {i}"))
    lines = [v if k is None else f"{k}::{v}" for k, v in rows]
    headers = [("app", "cli"), ("enc", "ü✓ x"), ("eq", "a=b")]
    t0 = int(time.time() * 1000)
    produce_lines(broker, topic, lines, "--key-separator", "::", *[a for k, v in headers for a in ("--header", f"{k}={v}")])
    t1 = int(time.time() * 1000)

    p = cli(broker, "consume", topic, "--from-beginning", "--count", str(len(rows)), "--format",
            "%t|%p|%o|%k|%v|%h|%T\\n", timeout=60)
    out = p.stdout.decode().split("\n")
    assert out[-1] == "" and len(out) == len(rows) + 1, f"{len(out) - 1} lines for {len(rows)} records"
    got = [ln.split("|") for ln in out[:-1]]
    assert all(len(g) == 7 for g in got), [g for g in got if len(g) != 7][:3]
    header_text = ",".join(f"{k}={v}" for k, v in headers)
    index = {v: i for i, (_, v) in enumerate(rows)}
    by_partition: dict[int, list[tuple[int, int]]] = {}
    for t, part, off, key, value, hdrs, ts in got:
        assert t == topic
        i = index[value]
        exp_key = rows[i][0]
        assert key == (exp_key or ""), (value, key)
        assert hdrs == header_text
        assert t0 - 1000 <= int(ts) <= t1 + 1000, (ts, t0, t1)
        if exp_key is not None:
            assert int(part) == java_partition(exp_key.encode(), partitions), f"key {exp_key!r} in partition {part}"
        by_partition.setdefault(int(part), []).append((int(off), i))
    assert sorted(i for recs in by_partition.values() for _, i in recs) == list(range(len(rows))), "not each record once"
    for part, recs in by_partition.items():
        assert [o for o, _ in recs] == list(range(len(recs))), f"partition {part}: offsets not 0..n-1 in order"
        assert [i for _, i in recs] == sorted(i for _, i in recs), f"partition {part}: not in production order"

    # --count stops early; --partition + --offset; the default format is "%v\n".
    p = cli(broker, "consume", topic, "--from-beginning", "--count", "2", "--format", "%p:%o\\n")
    assert len(p.stdout.decode().splitlines()) == 2
    part = max(by_partition, key=lambda q: len(by_partition[q]))
    p = cli(broker, "consume", topic, "--partition", str(part), "--offset", "3", "--count", "4")
    expected = [rows[i][1] for _, i in by_partition[part][3:7]]
    assert p.stdout.decode() == "".join(v + "\n" for v in expected)

    # The same records as confluent-kafka reads them (null vs empty key distinguished there).
    for part, recs in by_partition.items():
        for m, (off, i) in zip(consume_range(broker.bootstrap, topic, part, 0, len(recs)), recs):
            k, v = rows[i]
            assert (m.offset(), m.key(), m.value()) == (off, None if k is None else k.encode(), v.encode())
            assert m.headers() == [(hk, hv.encode()) for hk, hv in headers]


def test_produce_headers_keep_order_and_repeats(broker):
    """AP1/AP3: Kafka headers are an ordered list in which a key may repeat. `samsa produce
    --header z=1 --header a=2 --header dup=first --header dup=second` must send exactly that
    list, in that order (confluent-kafka and `samsa consume %h` read it back)."""
    topic = "cli-header-order"
    cli(broker, "topic", "create", topic, "-p", "1")
    given = [("z", "1"), ("a", "2"), ("dup", "first"), ("dup", "second")]
    produce_lines(broker, topic, ["v"], *[a for k, v in given for a in ("--header", f"{k}={v}")])
    (m,) = consume_range(broker.bootstrap, topic, 0, 0, 1)
    assert m.headers() == [(k, v.encode()) for k, v in given], (
        f"samsa produce sent headers {m.headers()!r} for --header {' --header '.join(f'{k}={v}' for k, v in given)}")


def test_consume_group_count_commits_only_what_it_printed(broker):
    """AP1: `consume --group G --from-beginning --count 10` prints 10 records and must commit
    only those (offset after the last printed record, per partition it printed from), so a
    second `consume --group G` prints exactly the other records: together every record once.
    (Committing the position of everything fetched skips records nobody saw: KAFKA-5327 is the
    same bug in Kafka's console consumer.)"""
    topic, group, partitions = "cli-group-count", "cli-group-count-g", 3
    cli(broker, "topic", "create", topic, "-p", str(partitions))
    for q in range(partitions):
        produce_lines(broker, topic, [f"gc-{q}-{i}" for i in range(30)], "--partition", str(q))
    everything = {(q, i): f"gc-{q}-{i}" for q in range(partitions) for i in range(30)}

    p = cli(broker, "consume", topic, "--group", group, "--from-beginning", "--count", "10", "--format", "%p %o %v\\n")
    first = [tuple(ln.split(" ")) for ln in p.stdout.decode().splitlines()]
    assert len(first) == 10
    printed_next: dict[int, int] = {}
    for q, o, _ in first:
        printed_next[int(q)] = max(printed_next.get(int(q), 0), int(o) + 1)
    d = group_describe_json(broker, group)
    committed = {r["partition"]: r["currentOffset"] for r in d["partitions"] if "currentOffset" in r and r["currentOffset"] > 0}
    assert committed == printed_next, (
        f"after printing 10 records ({sorted(printed_next.items())} as next offsets) the group committed "
        f"{sorted(committed.items())}: {sum(committed.values()) - 10} records were committed without being printed")

    p = cli(broker, "consume", topic, "--group", group, "--count", str(len(everything) - 10), "--idle-timeout-ms", "3000",
            "--format", "%p %o %v\\n")
    second = [tuple(ln.split(" ")) for ln in p.stdout.decode().splitlines()]
    seen = sorted((int(q), int(o), v) for q, o, v in first + second)
    assert seen == sorted((q, i, v) for (q, i), v in everything.items())


# ============================================================================================
# AP1: group describe, reset-offsets, delete
# ============================================================================================


def test_group_describe_lag_matches_clients(broker):
    """AP1: two confluent-kafka consumers (client ids cli-lag-a/b) share a 4-partition topic,
    consume part of each partition and commit. `group describe --json` shows state Stable,
    protocol range, 2 members, and for every partition the owner's member id, client id and host
    (as both admin clients report them), the committed offset (= the clients' committed() and
    position()), the log end offset and lag = log end - committed (= the clients' own lag and
    samsa_interop.group_lag / kafka-python's admin). The table output shows the same. Before
    any commit the assignment is shown without offsets. After both close: Empty, 0 members,
    the same committed offsets and lag without owners; more records raise the lag."""
    topic, group, partitions = "cli-lag", "cli-lag-group", 4
    cli(broker, "topic", "create", topic, "-p", str(partitions))
    consumers = {cid: group_consumer(broker.bootstrap, group, **{"client.id": cid}) for cid in ("cli-lag-a", "cli-lag-b")}
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        for c in consumers.values():
            c.subscribe([topic])

        def split():
            for c in consumers.values():
                c.consume(num_messages=1, timeout=0.05)  # joins; the topic is still empty
            owned = [{tp.partition for tp in c.assignment()} for c in consumers.values()]
            return all(owned) and not (owned[0] & owned[1]) and owned[0] | owned[1] == set(range(partitions))

        wait_until(split, timeout=30, interval=0, message="two members splitting the partitions")
        owner = {tp.partition: cid for cid, c in consumers.items() for tp in c.assignment()}
        member_id = {cid: c.memberid() for cid, c in consumers.items()}

        d = group_describe_json(broker, group)
        assert (d["group"], d["state"], d["protocolName"], d["members"]) == (group, "Stable", "range", 2), d
        assert [(r["topic"], r["partition"]) for r in d["partitions"]] == [(topic, q) for q in range(partitions)]
        for r in d["partitions"]:
            cid = owner[r["partition"]]
            assert (r["consumerId"], r["clientId"], r["host"]) == (member_id[cid], cid, "/127.0.0.1"), r
            assert "currentOffset" not in r and "lag" not in r and r["logEndOffset"] == 0, r

        ends = {q: 40 + 10 * q for q in range(partitions)}
        for q in range(partitions):
            produce_lines(broker, topic, [f"lag-{q}-{i}" for i in range(ends[q])], "--partition", str(q))
        targets = {0: 7, 1: 13, 2: 21, 3: 4}
        read = {q: 0 for q in range(partitions)}

        def progressed():
            for c in consumers.values():
                for m in c.consume(num_messages=1, timeout=0.05):
                    assert m.error() is None, m.error()
                    q = m.partition()
                    assert m.offset() == read[q] and m.value() == f"lag-{q}-{read[q]}".encode()
                    read[q] += 1
                    if read[q] >= targets[q]:
                        c.pause([TopicPartition(topic, q)])
            return all(read[q] >= targets[q] for q in range(partitions))

        wait_until(progressed, timeout=30, interval=0, message="both members reading up to their targets")
        positions, committed, client_lag = {}, {}, {}
        for c in consumers.values():
            c.commit(asynchronous=False)
            positions.update({tp.partition: tp.offset for tp in c.position(c.assignment())})
            committed.update({tp.partition: tp.offset for tp in c.committed(c.assignment(), timeout=10)})
            for tp in c.assignment():
                client_lag[tp.partition] = c.get_watermark_offsets(tp, timeout=10, cached=False)[1] - positions[tp.partition]
        assert positions == committed == read, (positions, committed, read)
        assert all(v > 0 for v in client_lag.values()), client_lag

        # --- samsa group describe --json, against the clients and both admin clients ------------
        d = group_describe_json(broker, group)
        assert (d["state"], d["protocolName"], d["members"]) == ("Stable", "range", 2), d
        rows = {r["partition"]: r for r in d["partitions"]}
        assert set(rows) == set(range(partitions)) and all(r["topic"] == topic for r in rows.values())
        for q, r in rows.items():
            cid = owner[q]
            assert (r["currentOffset"], r["logEndOffset"], r["lag"]) == (committed[q], ends[q], ends[q] - committed[q]), r
            assert r["lag"] == client_lag[q]
            assert (r["consumerId"], r["clientId"], r["host"]) == (member_id[cid], cid, "/127.0.0.1"), r
        lag = group_lag(broker.bootstrap, group)
        assert lag == {(topic, q): {"committed": rows[q]["currentOffset"], "log_end": rows[q]["logEndOffset"],
                                    "lag": rows[q]["lag"]} for q in range(partitions)}
        kp_offsets = kadmin.list_group_offsets(group)[group]
        assert {tp.partition: om.offset for tp, om in kp_offsets.items() if tp.topic == topic} == committed
        kd = kadmin.describe_groups([group])[group]
        assert kd["group_state"] == "Stable" and kd["protocol_data"] == "range", kd
        for m in kd["members"]:
            mine = {q for a in m["member_assignment"]["assigned_partitions"] if a["topic"] == topic for q in a["partitions"]}
            assert mine and all((rows[q]["consumerId"], rows[q]["clientId"], rows[q]["host"])
                                == (m["member_id"], m["client_id"], m["client_host"]) for q in mine), m

        # --- the table --------------------------------------------------------------------------
        head, table = group_describe_table(broker, group)
        assert head.split() == ["GROUP", group, "STATE", "Stable", "PROTOCOL", "range", "MEMBERS", "2"], head
        assert [(int(t["PARTITION"]), int(t["CURRENT-OFFSET"]), int(t["LOG-END-OFFSET"]), int(t["LAG"]), t["CONSUMER-ID"],
                 t["HOST"], t["CLIENT-ID"]) for t in table] == [
            (q, committed[q], ends[q], ends[q] - committed[q], member_id[owner[q]], "/127.0.0.1", owner[q]) for q in range(partitions)]
    finally:
        for c in consumers.values():
            c.close()

    # --- after both members left ------------------------------------------------------------------
    try:
        wait_until(lambda: group_describe_json(broker, group)["state"] == "Empty", timeout=20, message="group Empty")
        d = group_describe_json(broker, group)
        assert d["members"] == 0, d
        for r in d["partitions"]:
            q = r["partition"]
            assert (r["currentOffset"], r["logEndOffset"], r["lag"]) == (committed[q], ends[q], ends[q] - committed[q]), r
            assert not {"consumerId", "clientId", "host"} & set(r), r
        _, table = group_describe_table(broker, group)
        assert {(t["CONSUMER-ID"], t["HOST"], t["CLIENT-ID"]) for t in table} == {("-", "-", "-")}
        assert kadmin.describe_groups([group])[group]["group_state"] == "Empty"

        produce_lines(broker, topic, [f"more-{i}" for i in range(5)], "--partition", "0")
        d = group_describe_json(broker, group)
        r0 = next(r for r in d["partitions"] if r["partition"] == 0)
        assert (r0["currentOffset"], r0["logEndOffset"], r0["lag"]) == (committed[0], ends[0] + 5, ends[0] + 5 - committed[0])
        assert group_lag(broker.bootstrap, group)[(topic, 0)]["lag"] == r0["lag"]
    finally:
        kadmin.close()


def test_group_reset_offsets(broker):
    """AP1: a confluent consumer reads a 2-partition topic (20 records each, CreateTime
    2026-01-01T00:00:00Z + i s) and commits 20/20. While it is a member, `reset-offsets
    --to-earliest` and `group delete` are refused with one readable line and change nothing.
    Once it has left: `--dry-run` prints OLD/NEW offsets and changes nothing; `--to-datetime
    2026-01-01T00:00:12Z` commits 12/12; `--to-earliest` commits 0/0 and a new member (with
    auto.offset.reset=latest, so only the committed offsets can put it at 0) reads every
    record from offset 0; `--to-latest` commits 20/20; `group delete` removes the group and its
    offsets."""
    topic, group, partitions, n = "cli-reset", "cli-reset-group", 2, 20
    cli(broker, "topic", "create", topic, "-p", str(partitions))
    prod = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for q in range(partitions):
        for i in range(n):
            prod.produce(topic, value=f"reset-{q}-{i}".encode(), partition=q, timestamp=JAN_1_2026_MS + 1000 * i)
    assert prod.flush(30) == 0

    def read_all(c: Consumer) -> dict[int, list]:
        got: dict[int, list] = {q: [] for q in range(partitions)}

        def done():
            for m in c.consume(num_messages=100, timeout=0.1):
                assert m.error() is None, m.error()
                got[m.partition()].append(m)
            return sum(len(v) for v in got.values()) >= partitions * n

        wait_until(done, timeout=30, interval=0, message="consumer reading every record")
        return got

    c = group_consumer(broker.bootstrap, group, **{"client.id": "cli-reset-member"})
    try:
        c.subscribe([topic])
        read_all(c)
        c.commit(asynchronous=False)
        assert committed_of(broker, group, topic) == {0: n, 1: n}

        p = samsa_cli(broker.bootstrap, "group", "reset-offsets", group, "--topic", topic, "--to-earliest")
        assert_one_line_error(p, "group reset-offsets", group, "member")
        p = samsa_cli(broker.bootstrap, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--dry-run")
        assert_one_line_error(p, "group reset-offsets", group)
        p = samsa_cli(broker.bootstrap, "group", "delete", group)
        assert_one_line_error(p, "group delete")
        assert committed_of(broker, group, topic) == {0: n, 1: n}
        assert c.assignment() and group_describe_json(broker, group)["members"] == 1
    finally:
        c.close()
    wait_until(lambda: group_describe_json(broker, group)["state"] == "Empty", timeout=20, message="group Empty")

    def reset(*args: str) -> tuple[list[tuple[int, str, str]], str]:
        p = cli(broker, "group", "reset-offsets", group, *args)
        text = p.stdout.decode()
        table = text.split("\n\n")[0]
        rows = parse_table(table)
        assert all(r["TOPIC"] == topic for r in rows), rows
        return [(int(r["PARTITION"]), r["OLD-OFFSET"], r["NEW-OFFSET"]) for r in rows], text

    rows, text = reset("--topic", topic, "--to-earliest", "--dry-run")
    assert rows == [(0, "20", "0"), (1, "20", "0")] and "dry run" in text
    rows, _ = reset("--topic", f"{topic}:1", "--to-offset", "7", "--dry-run")
    assert rows == [(1, "20", "7")]
    assert committed_of(broker, group, topic) == {0: n, 1: n}, "--dry-run changed the committed offsets"
    assert [r["currentOffset"] for r in group_describe_json(broker, group)["partitions"]] == [n, n]

    rows, _ = reset("--topic", topic, "--to-datetime", "2026-01-01T00:00:12Z")
    assert rows == [(0, "20", "12"), (1, "20", "12")]
    assert committed_of(broker, group, topic) == {0: 12, 1: 12}

    rows, _ = reset("--to-earliest")  # default: the topics the group has offsets for
    assert rows == [(0, "12", "0"), (1, "12", "0")]
    assert committed_of(broker, group, topic) == {0: 0, 1: 0}
    d = group_describe_json(broker, group)
    assert [(r["currentOffset"], r["lag"]) for r in d["partitions"]] == [(0, n), (0, n)]

    c = group_consumer(broker.bootstrap, group, **{"client.id": "cli-reset-second", "auto.offset.reset": "latest"})
    try:
        c.subscribe([topic])
        got = read_all(c)
    finally:
        c.close()
    for q in range(partitions):
        assert [m.offset() for m in got[q]] == list(range(n)), f"partition {q} did not restart at 0"
        assert [m.value() for m in got[q]] == [f"reset-{q}-{i}".encode() for i in range(n)]
        assert [m.timestamp() for m in got[q]] == [(TIMESTAMP_CREATE_TIME, JAN_1_2026_MS + 1000 * i) for i in range(n)]
    wait_until(lambda: group_describe_json(broker, group)["state"] == "Empty", timeout=20, message="group Empty")

    rows, _ = reset("--topic", topic, "--to-latest")
    assert rows == [(0, "0", "20"), (1, "0", "20")]
    assert committed_of(broker, group, topic) == {0: n, 1: n}

    groups = {r["GROUP"]: r for r in parse_table(cli(broker, "group", "list").stdout.decode())}
    assert (groups[group]["STATE"], groups[group]["PROTOCOL-TYPE"]) == ("Empty", "consumer"), groups.get(group)
    p = cli(broker, "group", "delete", group)
    assert p.stdout.decode() == f"deleted group {group}\n"
    assert group not in {r["GROUP"] for r in parse_table(cli(broker, "group", "list").stdout.decode())}
    assert group_lag(broker.bootstrap, group) == {}


def test_group_reset_offsets_shift_by(broker):
    """AP1: `--shift-by N` moves the committed offsets by N, including a negative N written as
    the --help example writes it (`--shift-by -50`)."""
    topic, group = "cli-shift", "cli-shift-group"
    cli(broker, "topic", "create", topic, "-p", "1")
    produce_lines(broker, topic, [f"s{i}" for i in range(30)])
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)
    finally:
        c.close()
    cli(broker, "group", "reset-offsets", group, "--topic", topic, "--shift-by", "15")
    assert committed_of(broker, group, topic) == {0: 25}
    p = samsa_cli(broker.bootstrap, "group", "reset-offsets", group, "--topic", topic, "--shift-by", "-5")
    assert p.returncode == 0, f"`--shift-by -5` exited {p.returncode}: {p.stderr.decode()!r}"
    assert committed_of(broker, group, topic) == {0: 20}


# ============================================================================================
# AP2: readable errors
# ============================================================================================


def test_errors_for_topics_and_configs(broker):
    """AP2: one readable line and a non-zero exit for: creating an existing topic (also with
    --dry-run), describing / consuming / deleting an unknown topic, producing to a partition the
    topic does not have, a bad config value, an unknown config, a -c without '=', an unknown
    codec, a bad --acks. None of them changes anything."""
    topic = "cli-exists"
    cli(broker, "topic", "create", topic, "-p", "1", "-c", "retention.ms=5000")
    bs = broker.bootstrap
    assert_one_line_error(samsa_cli(bs, "topic", "create", topic, "-p", "3"), "topic create", topic, "exists")
    assert_one_line_error(samsa_cli(bs, "topic", "create", topic, "--dry-run"), "topic create", topic, "exists")
    assert_one_line_error(samsa_cli(bs, "topic", "describe", "cli-no-such-topic"), "topic describe", "cli-no-such-topic")
    assert_one_line_error(samsa_cli(bs, "consume", "cli-no-such-topic", "--from-beginning", "--count", "1", timeout=30),
                          "consume", "cli-no-such-topic")
    assert_one_line_error(samsa_cli(bs, "topic", "delete", "cli-no-such-topic"), "topic delete")
    assert_one_line_error(samsa_cli(bs, "produce", topic, "--partition", "5", input_bytes=b"x\n"), "produce", "partition")
    assert_one_line_error(samsa_cli(bs, "topic", "create", "cli-bad-config", "-c", "retention.ms=abc"), "topic create",
                          "retention.ms")
    assert_one_line_error(samsa_cli(bs, "topic", "create", "cli-bad-config", "-c", "no.such.config=1"), "topic create",
                          "no.such.config")
    assert_one_line_error(samsa_cli(bs, "topic", "create", "cli-bad-config", "-c", "retention.ms"), "topic create",
                          "key=value")
    assert_one_line_error(samsa_cli(bs, "produce", topic, "--compression", "brotli", input_bytes=b"x\n"), "produce", "brotli")
    assert_one_line_error(samsa_cli(bs, "produce", topic, "--acks", "2", input_bytes=b"x\n"), "produce", "acks")

    _, parts, configs = describe_topic(broker, topic)
    assert len(parts) == 1 and parts[0]["HIGH-WATERMARK"] == "0", parts
    assert configs == {"retention.ms": ("5000", "dynamicTopic")}
    listed = topic_list(broker)
    assert "cli-bad-config" not in listed and "cli-no-such-topic" not in listed


# ============================================================================================
# AP3: byte-identical interop both ways
# ============================================================================================


def test_murmur2_reference_is_java_compatible():
    """AP3: the Python murmur2 used as the reference gives the Java client's values
    (Utils.murmur2 as a signed int) for known keys, and the partition formula is
    toPositive(h) % n."""
    assert java_murmur2(b"0") == 971027396
    assert java_murmur2(b"1") == -1993445489
    assert java_murmur2(b"128") == -326012175
    assert java_partition(b"1", 7) == (-1993445489 & 0x7FFFFFFF) % 7


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_samsa_produce_to_confluent_consumer(broker, codec):
    """AP3 (Swift -> librdkafka): 240 keyed lines (ASCII, Cyrillic, CJK, empty and numeric keys;
    non-ASCII values containing the separator) with four --header and --compression `codec` are
    read by a confluent consumer with exactly those key, value and header bytes, per partition in
    order at offsets 0..n-1, nothing else in the topic; every record is in the partition the
    Java client's murmur2 partitioner picks for its key; the stored batches use the codec; and
    confluent's producer with partitioner=murmur2_random puts the same keys in the same
    partitions."""
    topic, partitions = f"cli-to-confluent-{codec}", 7
    cli(broker, "topic", "create", topic, "-p", str(partitions))
    keys = [f"key-{i}" for i in range(30)] + ["ключ-ü", "键-✓", "", "0", "1", "128", "a b c", "Ω≈ç√"]
    rows = [(keys[i % len(keys)], f"{codec}-{i}-значение-✓-=>-{'x' * (i % 50)}-€") for i in range(240)]
    headers = [("codec", codec), ("eq", "a=b"), ("source", "samsa-cli"), ("zz-utf8", "ü✓ 中")]
    produce_lines(broker, topic, [f"{k}=>{v}" for k, v in rows], "--key-separator", "=>", "--compression", codec,
                  *[a for k, v in headers for a in ("--header", f"{k}={v}")])

    expected: dict[int, list[tuple[bytes, bytes]]] = {q: [] for q in range(partitions)}
    for k, v in rows:
        expected[java_partition(k.encode(), partitions)].append((k.encode(), v.encode()))
    want_headers = [(k, v.encode()) for k, v in headers]
    for q in range(partitions):
        assert watermarks(broker.bootstrap, topic, q) == (0, len(expected[q])), (
            f"partition {q}: watermarks {watermarks(broker.bootstrap, topic, q)}, murmur2 puts {len(expected[q])} records there")
        got = consume_range(broker.bootstrap, topic, q, 0, len(expected[q]))
        assert [m.offset() for m in got] == list(range(len(expected[q])))
        for m, (k, v) in zip(got, expected[q]):
            assert (m.key(), m.value()) == (k, v), f"partition {q} offset {m.offset()}"
            assert m.headers() == want_headers, m.headers()
        if expected[q]:
            batches = kafka_raw.scan_partition_dir(broker.partition_dir(topic, q))
            assert sum(b.records_count for b in batches) == len(expected[q])
            assert {b.compression for b in batches} == {CODEC_IDS[codec]}, f"stored codecs {[b.compression for b in batches]}"

    # confluent's Java-compatible partitioner agrees, key by key.
    reports: dict[bytes, set[int]] = {}
    p = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random", "acks": "all", "linger.ms": 5})
    for k in keys:
        p.produce(topic, key=k.encode(), value=b"confluent", on_delivery=lambda err, m: reports.setdefault(
            m.key(), set()).add(-1 if err else m.partition()))
    assert p.flush(30) == 0
    assert reports == {k.encode(): {java_partition(k.encode(), partitions)} for k in keys}


@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_kafka_python_producer_to_samsa_consume(broker, codec):
    """AP3 (kafka-python -> Swift): 200 records from kafka-python (compression `codec`; random
    binary and UTF-8 keys and values, a null key, an empty value, a tombstone, up to three
    headers with binary values, explicit timestamps) are printed by `samsa consume
    --from-beginning --count 200 --format '%p<US>%o<US>%k<US>%v<US>%h<US>%T<RS>'` byte for byte:
    the partition and offset kafka-python was acknowledged, key, value, headers as k=v,...
    and the timestamp; keyed records in the murmur2 partition. `--partition/--offset` reads a
    slice of one partition; with --idle-timeout-ms and no --count it stops by itself after
    everything."""
    topic, partitions, n = f"cli-from-kafka-python-{codec}", 5, 200
    cli(broker, "topic", "create", topic, "-p", str(partitions))
    rng = random.Random(f"cli-{codec}")
    US, RS = b"\x1f", b"\x1e"

    def blob(lo: int, hi: int) -> bytes:
        if rng.random() < 0.5:
            return "".join(rng.choice("abcü✓中€ \t=,;") for _ in range(rng.randrange(lo, hi))).encode()
        return bytes(b for b in rng.randbytes(rng.randrange(lo, hi)) if b not in (0x1E, 0x1F))

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                             compression_type=None if codec == "none" else codec)
    expected: dict[tuple[int, int], bytes] = {}
    try:
        futures = []
        for i in range(n):
            key = None if i % 23 == 4 else blob(1, 20)
            value = None if i % 37 == 9 else b"" if i % 41 == 2 else blob(0, 300)
            headers = [(f"h{j}-ü", blob(0, 12)) for j in range(i % 4)]
            ts = JAN_1_2026_MS + 17 * i
            fut = producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts)
            futures.append((fut, key, value, headers, ts))
        producer.flush(30)
        for fut, key, value, headers, ts in futures:
            md = fut.get(timeout=30)
            if key is not None:
                assert md.partition == java_partition(key, partitions), f"kafka-python put {key!r} in {md.partition}"
            hdr = b",".join(k.encode() + b"=" + v for k, v in headers)
            expected[(md.partition, md.offset)] = US.join([key or b"", value or b"", hdr, str(ts).encode()])
    finally:
        producer.close()

    fmt = "%p\x1f%o\x1f%k\x1f%v\x1f%h\x1f%T\x1e"
    p = cli(broker, "consume", topic, "--from-beginning", "--count", str(n), "--format", fmt)
    records = p.stdout.split(RS)
    assert records[-1] == b"" and len(records) == n + 1, f"{len(records) - 1} records printed, {n} produced"
    got = {}
    for rec in records[:-1]:
        part, off, rest = rec.split(US, 2)
        got[(int(part), int(off))] = rest
    assert set(got) == set(expected), "different (partition, offset) pairs"
    wrong = [(k, got[k], expected[k]) for k in sorted(expected) if got[k] != expected[k]]
    assert not wrong, f"{len(wrong)} records differ, first: {wrong[0]}"

    part = max(range(partitions), key=lambda q: sum(1 for k in expected if k[0] == q))
    p = cli(broker, "consume", topic, "--partition", str(part), "--offset", "5", "--count", "6", "--format", "%o\x1f%v\x1e")
    assert p.stdout == b"".join(f"{o}".encode() + US + expected[(part, o)].split(US)[1] + RS for o in range(5, 11))

    if codec == "none":
        p = cli(broker, "consume", topic, "--from-beginning", "--idle-timeout-ms", "1500", "--format", fmt, timeout=60)
        assert sorted(p.stdout.split(RS)[:-1]) == sorted(records[:-1])


# ============================================================================================
# AP4: perf
# ============================================================================================


def test_perf_produce_then_consume_verify(broker):
    """AP4: `perf produce` of 20,000 x 100 B (--json: 20,000 records, no errors, sane
    throughput and latency percentiles) lands 20,000 records of 100 bytes (the watermarks
    confluent sees); `perf consume --verify` confirms each arrived exactly once intact. The
    check can fail: after a duplicate of one record is appended, --verify over 20,001 records
    exits non-zero with one readable line."""
    topic, n = "cli-perf", 20_000
    cli(broker, "topic", "create", topic, "-p", "3")
    p = cli(broker, "perf", "produce", "--topic", topic, "--num-records", str(n), "--record-size", "100", "--json", timeout=60)
    s = json_summary(p.stdout)
    assert s["records"] == n and s["errors"] == 0, s
    assert s["records_per_sec"] > 100 and s["mb_per_sec"] > 0, s
    assert_percentiles(s["latency_ms"], "perf produce", 30_000)
    assert "records sent" in p.stdout.decode()
    marks = {q: watermarks(broker.bootstrap, topic, q) for q in range(3)}
    assert all(lo == 0 for lo, _ in marks.values()) and sum(hi for _, hi in marks.values()) == n, marks
    q = max(marks, key=lambda x: marks[x][1])
    sample = consume_range(broker.bootstrap, topic, q, 0, 3)
    assert all(len(m.value()) == 100 for m in sample), [m.value() for m in sample]

    p = cli(broker, "perf", "consume", "--topic", topic, "--num-records", str(n), "--verify", "--json", "--timeout-ms", "20000",
            timeout=60)
    s = json_summary(p.stdout)
    assert s["records"] == n and s["records_per_sec"] > 0, s
    assert "verified" in p.stdout.decode() + p.stderr.decode()

    produce_lines(broker, topic, [sample[1].value().decode()], "--partition", str(q))
    p = samsa_cli(broker.bootstrap, "perf", "consume", "--topic", topic, "--num-records", str(n + 1), "--verify",
                  "--timeout-ms", "5000", timeout=60)
    assert_one_line_error(p, "perf consume", "verif", stdout_empty=False)


def test_perf_e2e_json(broker):
    """AP4: `perf e2e` (1,500 records at 3,000/s) prints the percentile line and a JSON summary
    with 1,500 records and ordered, positive, bounded latencies; the records are in the topic."""
    topic, n = "cli-e2e", 1500
    cli(broker, "topic", "create", topic, "-p", "1")
    p = cli(broker, "perf", "e2e", "--topic", topic, "--num-records", str(n), "--throughput", "3000", "--record-size", "64",
            "--json", timeout=60)
    text = p.stdout.decode()
    assert "end-to-end latency" in text and "50th" in text and "99th" in text, text
    s = json_summary(p.stdout)
    assert s["records"] == n, s
    assert_percentiles(s["latency_ms"], "perf e2e", 10_000)
    assert watermarks(broker.bootstrap, topic, 0)[1] == n


# ============================================================================================
# AP2: closed port (the commands started with the module)
# ============================================================================================


@pytest.mark.parametrize("case", list(CLOSED_PORT_COMMANDS))
def test_closed_port_one_line_error(closed_port_runs, case):
    """AP2: every client command against a port nothing listens on exits non-zero (within
    25 s) with one line `samsa <command>: cannot connect to 127.0.0.1:<port>: ...` on stderr,
    including `consume --group` (with --count or --idle-timeout-ms)."""
    port, runs = closed_port_runs
    r = runs[case]
    p = r.wait()
    assert not r.hung, (f"samsa {' '.join(CLOSED_PORT_COMMANDS[case][1])} --bootstrap-server 127.0.0.1:{port} did not exit "
                        f"within {CLOSED_PORT_DEADLINE}s (stdout {p.stdout!r}, stderr {p.stderr!r})")
    assert_one_line_error(p, r.command, f"127.0.0.1:{port}", "connect")


def test_group_describe_matches_kafka_python_group_consumers(broker):
    """Consumer groups AP4: kafka-python group consumers (their own assignors) share a topic, and
    `samsa group describe` shows each member with its assignment as the consumers report it, and
    committed offsets and lag equal to what the consumers report (log end - committed)."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP

    topic, group, partitions = "cli-kp-lag", "cli-kp-lag-group", 4
    cli(broker, "topic", "create", topic, "-p", str(partitions))
    for q in range(partitions):
        produce_lines(broker, topic, [f"kp-{q}-{i}" for i in range(20 + q)], "--partition", str(q))

    consumers = [KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, client_id=f"kp-member-{i}",
                               auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=6000,
                               heartbeat_interval_ms=500)
                 for i in range(2)]
    try:
        for c in consumers:
            c.subscribe([topic])
        consumed = {0: 0, 1: 0}

        def balanced():
            for i, c in enumerate(consumers):
                for records in c.poll(timeout_ms=200, max_records=5).values():
                    consumed[i] += len(records)
            owned = [c.assignment() for c in consumers]
            return all(owned) and not (owned[0] & owned[1]) and len(owned[0] | owned[1]) == partitions and all(consumed.values())

        wait_until(balanced, timeout=40, interval=0, message="two kafka-python members sharing the partitions and consuming")
        for c in consumers:
            c.commit()
        # What the clients report: their assignment, committed offsets and lag.
        reported = {}
        for i, c in enumerate(consumers):
            ends = c.end_offsets(list(c.assignment()))
            for tp in c.assignment():
                committed = c.committed(tp)
                reported[tp.partition] = (f"kp-member-{i}", committed, ends[tp] - committed)

        d = group_describe_json(broker, group)
        # kafka-python offers its own range and round-robin assignors; both members vote range first.
        assert d["state"] == "Stable" and d["members"] == 2 and d["protocolName"] == "range", d
        rows = {r["partition"]: r for r in d["partitions"] if r["topic"] == topic}
        assert set(rows) == set(range(partitions))
        for p, (client_id, committed, lag) in reported.items():
            row = rows[p]
            assert row["clientId"] == client_id and row["host"] == "/127.0.0.1", row
            assert row["currentOffset"] == committed and row["lag"] == lag, (p, row, committed, lag)
            assert row["logEndOffset"] == 20 + p
    finally:
        for c in consumers:
            c.close()
