"""A broker on a real ZooKeeper ensemble (Debian's zookeeper 3.8, started with scripts/zookeeper.sh):
Kafka's layout and JSON as Debian's zkCli.sh reads them, topics that survive a restart, and the
start-up refusals (broker id held by a live broker, log dir of another broker, unreachable ensemble)."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from samsa_interop import (REPO, SAMSA_BIN, Broker, confluent_admin, consume_range, free_port, parse_table, run,
                           samsa_cli, wait_until)

ZK = str(REPO / "scripts" / "zookeeper.sh")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    d = tmp_path_factory.mktemp("zk")
    started = subprocess.run([ZK, "start", str(d), "--nodes", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    yield d, started.stdout.strip()
    subprocess.run([ZK, "stop", str(d)], timeout=120)


def zk_cli(d, *args: str):
    """Debian's zkCli.sh against the ensemble. The JVM client can lose its first connection on a
    loaded machine (ConnectionLoss before the command ran): that is retried, up to 5 times."""
    for attempt in range(5):
        out = run([ZK, "cli", str(d), *args], timeout=60)
        if b"ConnectionLoss" not in out.stdout + out.stderr:
            return out
        time.sleep(1)
    return out


def zk_get(d, path: str) -> str:
    """The data of `path` as Debian's zkCli.sh prints it (its last line)."""
    out = zk_cli(d, "get", path)
    return out.stdout.decode().strip().splitlines()[-1]


def zk_ls(d, path: str) -> list[str]:
    out = zk_cli(d, "ls", path).stdout.decode().strip().splitlines()[-1]
    return [s.strip() for s in out.strip("[]").split(",") if s.strip()]


def create_topic(bootstrap: str, name: str, partitions: int, leader: int):
    from confluent_kafka.admin import NewTopic
    admin = confluent_admin(bootstrap)
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)], operation_timeout=10)
    futures[name].result(timeout=20)

    def ready():
        t = admin.list_topics(topic=name, timeout=5).topics.get(name)
        return t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader == leader for p in t.partitions.values())

    wait_until(ready, timeout=20, message=f"topic {name} in metadata")


def test_broker_keeps_its_cluster_in_zookeeper(ensemble, tmp_path):
    d, connect = ensemble
    b = Broker(tmp_path / "data", tmp_path / "broker.log", overrides={"zookeeper.connect": connect + "/samsa", "broker.id": 1})
    try:
        b.start()
        registration = json.loads(zk_get(d, "/samsa/brokers/ids/1"))
        assert registration["endpoints"] == [f"PLAINTEXT://127.0.0.1:{b.port}"]
        assert registration["host"] == "127.0.0.1" and registration["port"] == b.port and registration["version"] == 5
        assert registration["listener_security_protocol_map"] == {"PLAINTEXT": "PLAINTEXT"} and int(registration["timestamp"]) > 0

        create_topic(b.bootstrap, "zk-orders", partitions=2, leader=1)
        topic = json.loads(zk_get(d, "/samsa/brokers/topics/zk-orders"))
        assert topic["partitions"] == {"0": [1], "1": [1]} and topic["version"] == 3 and topic["topic_id"]
        state = json.loads(zk_get(d, "/samsa/brokers/topics/zk-orders/partitions/1/state"))
        assert state["leader"] == 1 and state["isr"] == [1] and state["leader_epoch"] == 0
        assert "cluster.id=" in (tmp_path / "data" / "meta.properties").read_text()

        produced = run(["kcat", "-P", "-b", b.bootstrap, "-t", "zk-orders", "-p", "0"], input_bytes=b"a\nb\nc\n", timeout=60)
        assert produced.returncode == 0, produced.stderr
        consumed = run(["kcat", "-C", "-b", b.bootstrap, "-t", "zk-orders", "-p", "0", "-e", "-q"], timeout=60)
        assert consumed.stdout.decode().split() == ["a", "b", "c"]

        # confluent-kafka produces and consumes; the CLI and kafka-python's admin list and describe.
        from confluent_kafka import Producer
        producer = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True})
        for i in range(20):
            producer.produce("zk-orders", value=f"c{i}".encode(), key=f"k{i}".encode(), partition=1)
        assert producer.flush(30) == 0
        del producer  # a live producer's metadata requests would auto-create the topic after it is deleted
        got = consume_range(b.bootstrap, "zk-orders", 1, 0, 20)
        assert [(m.key(), m.value()) for m in got] == [(f"k{i}".encode(), f"c{i}".encode()) for i in range(20)]
        listed = samsa_cli(b.bootstrap, "topic", "list")
        assert listed.returncode == 0 and "zk-orders" in listed.stdout.decode()
        described = samsa_cli(b.bootstrap, "topic", "describe", "zk-orders")
        assert described.returncode == 0, described.stderr
        rows = parse_table(described.stdout.decode().split("\n\n")[1])  # header, partitions, configs
        assert {int(r["PARTITION"]): int(r["HIGH-WATERMARK"]) for r in rows} == {0: 3, 1: 20}
        from kafka.admin import KafkaAdminClient
        kp = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        try:
            (desc,) = kp.describe_topics(["zk-orders"])
            seen = sorted((p["partition_index"], p["leader_id"], list(p["replica_nodes"]), list(p["isr_nodes"]))
                          for p in desc["partitions"])
            assert seen == [(0, 1, [1], [1]), (1, 1, [1], [1])], desc
        finally:
            kp.close()

        # A restart finds its topics in ZooKeeper (the old session ends with the clean shutdown).
        b.restart()
        md = confluent_admin(b.bootstrap).list_topics(timeout=10)
        assert "zk-orders" in md.topics and len(md.topics["zk-orders"].partitions) == 2
        consumed = run(["kcat", "-C", "-b", b.bootstrap, "-t", "zk-orders", "-p", "0", "-e", "-q"], timeout=60)
        assert consumed.stdout.decode().split() == ["a", "b", "c"]

        # Another process with the same broker.id is refused while this one is alive.
        other = run([SAMSA_BIN, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{free_port()}", "--log-dirs",
                     str(tmp_path / "other"), "-o", f"zookeeper.connect={connect}/samsa", "-o", "broker.id=1"], timeout=60)
        assert other.returncode != 0
        assert "broker.id 1 is already registered by a live broker" in other.stderr.decode()

        # Deleting the topic removes it from ZooKeeper.
        admin = confluent_admin(b.bootstrap)
        admin.delete_topics(["zk-orders"], operation_timeout=10)["zk-orders"].result(timeout=20)
        wait_until(lambda: "zk-orders" not in zk_ls(d, "/samsa/brokers/topics"), timeout=20, message="topic gone from ZooKeeper")
    finally:
        b.close()
    # The log dir belongs to broker 1 now.
    wrong = run([SAMSA_BIN, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{free_port()}", "--log-dirs",
                 str(tmp_path / "data"), "-o", f"zookeeper.connect={connect}/samsa", "-o", "broker.id=2"], timeout=60)
    assert wrong.returncode != 0 and "doesn't match the stored broker.id 1" in wrong.stderr.decode()


def test_unreachable_ensemble_is_a_one_line_error(tmp_path):
    start = time.monotonic()
    out = run([SAMSA_BIN, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{free_port()}", "--log-dirs", str(tmp_path / "data"),
               "-o", f"zookeeper.connect=127.0.0.1:{free_port()}", "-o", "zookeeper.connection.timeout.ms=1500"], timeout=60)
    elapsed = time.monotonic() - start
    assert out.returncode == 1
    errors = [l for l in out.stderr.decode().splitlines() if l.startswith("samsa broker:")]
    assert errors == [f"samsa broker: coordination store unavailable: cannot connect to ZooKeeper at {out.args[-3].split('=', 1)[1]} within 1500 ms"]
    assert 1.4 < elapsed < 10


def test_malformed_topic_data_is_reported_with_its_path(ensemble, tmp_path):
    d, connect = ensemble
    for path, data in [("/bad", ""), ("/bad/brokers", ""), ("/bad/brokers/topics", ""), ("/bad/brokers/topics/t", "not json")]:
        created = zk_cli(d, "create", path, data)
        assert created.returncode == 0 or b"Node already exists" in created.stdout + created.stderr, created.stderr
    out = run([SAMSA_BIN, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{free_port()}", "--log-dirs", str(tmp_path / "data"),
               "-o", f"zookeeper.connect={connect}/bad"], timeout=60)
    assert out.returncode == 1  # an orderly refusal, not a crash
    errors = [l for l in out.stderr.decode().splitlines() if l.startswith("samsa broker:")]
    assert len(errors) == 1 and "/brokers/topics/t" in errors[0] and "invalid coordination data" in errors[0]
