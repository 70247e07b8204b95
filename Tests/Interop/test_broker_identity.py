"""A log directory belongs to one broker of one cluster: `meta.properties` as Kafka writes it
(`version=0`, `broker.id`, `cluster.id`), checked at every start."""
from __future__ import annotations

import subprocess

from confluent_kafka.admin import AdminClient


def read_properties(path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_meta_properties_is_written_and_a_different_broker_id_is_refused(broker_factory):
    broker = broker_factory(**{"broker.id": "1"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    cluster_id = admin.list_topics(timeout=10).cluster_id
    meta = read_properties(broker.data_dir / "meta.properties")
    assert meta == {"cluster.id": cluster_id, "version": "0", "broker.id": "1"}
    assert broker.stop() == 0

    broker.overrides["broker.id"] = "2"
    r = subprocess.run(broker.command(), capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, "a broker with another broker.id must not take over this log directory"
    err = r.stderr + r.stdout
    assert "doesn't match the stored broker.id 1" in err and "meta.properties" in err, err[-2000:]
    assert len([l for l in r.stderr.splitlines() if "broker.id" in l]) == 1, "one clear line"

    broker.overrides["broker.id"] = "1"
    broker.start()
    assert AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).cluster_id == cluster_id
