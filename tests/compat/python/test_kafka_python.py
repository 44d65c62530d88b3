"""kafka-python (pure Python) against the broker, with its defaults
(api_version auto-detected from ApiVersions) except enable_idempotence=False
on the producer: produce with keys and headers, a group consumer, commit,
seek, committed offsets read back, resume."""

import time

import kafka
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

from helpers import partition_served, uniq, wait_until

TIMEOUT_MS = 15_000


def test_client_version():
    assert kafka.__version__ == "3.0.12"


@pytest.fixture(scope="module")
def admin(bootstrap):
    a = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-kafka-python")
    yield a
    a.close()


def create_topic(admin, bootstrap, topic, partitions):
    admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}}, timeout_ms=TIMEOUT_MS)
    for p in range(partitions):
        wait_until(lambda: partition_served(bootstrap, topic, p), f"{topic}/{p} served")


def new_consumer(bootstrap, group):
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=100,
    )


def poll_n(c, n, timeout=30.0):
    """Polls until n records arrived (bounded): [(partition, offset, key, value, headers)]."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"got {len(got)} of {n}: {got}"
        for tp, records in c.poll(timeout_ms=200).items():
            got += [(tp.partition, r.offset, r.key, r.value, list(r.headers)) for r in records]
    return got


def test_api_version_detected(bootstrap):
    # The defaults are kept: kafka-python infers the broker's version from
    # ApiVersions. What it inferred is printed (docs/COMPATIBILITY.md) and
    # must be new enough for record batches v2 with headers.
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        v = c.config["api_version"]
        print(f"kafka-python inferred api_version {v} from {bootstrap}")
        assert v >= (2, 1), v
    finally:
        c.close()


def test_group_commit_seek_resume(bootstrap, admin):
    topic = uniq("kpy-group")
    group = uniq("kpy-group")
    create_topic(admin, bootstrap, topic, 2)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    # kafka-python 3 makes producers idempotent by default (KIP-679), which
    # needs InitProducerId: that default is covered by
    # test_kafka_python_idempotence.py; this scenario is about the consumer.
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=5)
    sent = {0: [], 1: []}
    futures = []
    for i in range(15):
        part = 0 if i < 10 else 1
        key = f"k{i % 3}".encode()
        value = f"value-{i}".encode()
        headers = [("i", str(i).encode()), ("bin", bytes([0, i, 255]))]
        futures.append((part, key, value, headers, producer.send(topic, key=key, value=value, headers=headers,
                                                                 partition=part)))
    producer.flush(timeout=15)
    for part, key, value, headers, f in futures:
        md = f.get(timeout=15)
        assert (md.topic, md.partition, md.offset) == (topic, part, len(sent[part]))
        sent[part].append((part, md.offset, key, value, headers))
    producer.close(timeout=10)
    assert [len(sent[0]), len(sent[1])] == [10, 5]

    c = new_consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        got = poll_n(c, 15)
        assert sorted(c.assignment()) == [tp0, tp1]
        assert [m for m in got if m[0] == 0] == sent[0]
        assert [m for m in got if m[0] == 1] == sent[1]
        assert c.committed(tp0) is None and c.committed(tp1) is None

        c.commit()  # the consumed positions
        assert (c.committed(tp0), c.committed(tp1)) == (10, 5)

        # seek back on partition 0: exactly offsets 3..9 again, nothing else
        c.seek(tp0, 3)
        assert c.position(tp0) == 3
        assert poll_n(c, 7) == sent[0][3:]
        assert c.poll(timeout_ms=500) == {}

        c.commit({tp0: OffsetAndMetadata(6, "six", -1)})
        assert c.committed(tp0) == 6
        assert c.committed(tp0, metadata=True)[:2] == (6, "six")
        assert c.committed(tp1) == 5
    finally:
        c.close()

    # the admin client reads the same committed offsets
    offsets = admin.list_group_offsets({group: None})[group]
    assert {tp: (o.offset, o.metadata) for tp, o in offsets.items()} == {tp0: (6, "six"), tp1: (5, "")}

    # a new member of the group resumes from the committed offsets
    c = new_consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        assert poll_n(c, 4) == sent[0][6:]
        assert c.poll(timeout_ms=500) == {}
        assert (c.position(tp0), c.position(tp1)) == (10, 5)
    finally:
        c.close()
