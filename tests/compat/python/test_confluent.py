"""confluent-kafka (librdkafka, bundled in the wheel) against the broker:
every codec with keys and headers, the AdminClient, a two-member group, and
commit/resume."""

import time

import confluent_kafka
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

from helpers import CODECS, partition_served, stored_batches, uniq, wait_until

OP_TIMEOUT = 15


def test_client_versions():
    # Pins the versions the results in docs/COMPATIBILITY.md were taken with.
    assert confluent_kafka.__version__ == "2.16.1"
    assert confluent_kafka.libversion()[0] == "2.16.0"  # the librdkafka its wheel bundles


@pytest.fixture(scope="module")
def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(admin, bootstrap, topic, partitions, config=None):
    fs = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})], operation_timeout=OP_TIMEOUT)
    fs[topic].result(OP_TIMEOUT)
    for p in range(partitions):
        wait_until(lambda: partition_served(bootstrap, topic, p), f"{topic}/{p} served")


def producer(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "acks": "all"}
    conf.update(extra)
    return Producer(conf)


def consumer(bootstrap, group, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    conf.update(extra)
    return Consumer(conf)


def produce_all(p, topic, messages):
    """Produces [(partition, key, value, headers, timestamp)] and returns the
    delivery reports [(partition, offset, key)] in delivery order."""
    reports = []
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            reports.append((msg.partition(), msg.offset(), msg.key()))

    for partition, key, value, headers, ts in messages:
        kw = {"key": key, "value": value, "headers": headers, "on_delivery": on_delivery}
        if partition is not None:
            kw["partition"] = partition
        if ts is not None:
            kw["timestamp"] = ts
        p.produce(topic, **kw)
    left = p.flush(OP_TIMEOUT)
    assert left == 0, f"{left} messages not delivered"
    assert errors == []
    return reports


def as_tuple(m):
    assert m.error() is None, m.error()
    return (m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers() or [])


def poll_n(c, n, timeout=30.0, raw=False):
    """Polls until n messages were received (bounded); returns them as tuples
    (or the Message objects with raw=True)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"got {len(got)} of {n} messages: {got}"
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF:
            continue
        as_tuple(m)  # asserts no error
        got.append(m if raw else as_tuple(m))
    return got


@pytest.mark.parametrize("codec", list(CODECS))
def test_codec_round_trip(bootstrap, admin, codec):
    topic = uniq(f"cfk-codec-{codec}")
    create_topic(admin, bootstrap, topic, 1)
    ts0 = 1_700_000_000_000
    msgs = []
    for i in range(40):
        key = None if i == 7 else f"key-{i % 5}".encode()
        # repetitive values: every batch, even of one record, compresses
        # (librdkafka sends a batch uncompressed when compression does not
        # make it smaller)
        value = b"" if i == 9 else (f"value {i} " * (40 + i % 4)).encode()
        headers = [("h", f"h{i}".encode()), ("bin", bytes([0, 255, i])), ("h", b"repeat")]
        if i == 11:
            headers = []
        msgs.append((0, key, value, headers, ts0 + i))
    # linger lets librdkafka put all 40 in one or a few compressed batches
    p = producer(bootstrap, **{"compression.type": codec, "linger.ms": 50})
    reports = produce_all(p, topic, msgs)
    assert reports == [(0, i, m[1]) for i, m in enumerate(msgs)]

    c = consumer(bootstrap, uniq("cfk-codec-group"))
    c.assign([TopicPartition(topic, 0, 0)])
    try:
        got = poll_n(c, len(msgs), raw=True)
        expected = [(topic, 0, i, m[1], m[2], m[3]) for i, m in enumerate(msgs)]
        assert [as_tuple(m) for m in got] == expected
        # timestamps are the producer's (CreateTime)
        assert [m.timestamp() for m in got] == [(confluent_kafka.TIMESTAMP_CREATE_TIME, ts0 + i) for i in range(40)]
    finally:
        c.close()

    # What the broker stored and serves: batches in the producer's codec
    # (compression.type=producer, the default), offsets 0..39 exactly.
    batches = stored_batches(bootstrap, topic, 0)
    assert {b.codec for b in batches} == {CODECS[codec]}, batches
    assert [b.base_offset for b in batches] == [0] + [b.last_offset + 1 for b in batches[:-1]], batches
    assert batches[-1].last_offset == 39, batches
    assert all(b.count == b.last_offset - b.base_offset + 1 for b in batches), batches


def test_admin(bootstrap, admin):
    topic = uniq("cfk-admin")
    create_topic(admin, bootstrap, topic, 3, {"retention.ms": "7200000"})

    # creating it again: TOPIC_ALREADY_EXISTS
    fs = admin.create_topics([NewTopic(topic, 3, 1)], operation_timeout=OP_TIMEOUT)
    with pytest.raises(confluent_kafka.KafkaException) as ei:
        fs[topic].result(OP_TIMEOUT)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    md = admin.list_topics(topic, timeout=OP_TIMEOUT)
    assert topic in md.topics
    tmd = md.topics[topic]
    assert tmd.error is None
    assert sorted(tmd.partitions) == [0, 1, 2]
    broker_ids = set(md.brokers)
    assert len(broker_ids) == 1
    (node,) = broker_ids
    for p in tmd.partitions.values():
        assert (p.leader, p.replicas, p.isrs, p.error) == (node, [node], [node], None)

    desc = admin.describe_topics(TopicCollection([topic]), request_timeout=OP_TIMEOUT)[topic].result(OP_TIMEOUT)
    assert desc.name == topic
    assert desc.is_internal is False
    assert [(p.id, p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr]) for p in desc.partitions] == [
        (i, node, [node], [node]) for i in range(3)
    ]

    admin.create_partitions([NewPartitions(topic, 5)], operation_timeout=OP_TIMEOUT)[topic].result(OP_TIMEOUT)
    wait_until(
        lambda: sorted(admin.list_topics(topic, timeout=OP_TIMEOUT).topics[topic].partitions) == [0, 1, 2, 3, 4],
        "5 partitions in metadata",
    )
    # shrinking is refused
    with pytest.raises(confluent_kafka.KafkaException) as ei:
        admin.create_partitions([NewPartitions(topic, 2)], operation_timeout=OP_TIMEOUT)[topic].result(OP_TIMEOUT)
    assert ei.value.args[0].code() == KafkaError.INVALID_PARTITIONS

    names = ["retention.ms", "cleanup.policy", "max.message.bytes"]

    def describe():
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        entries = admin.describe_configs([res], request_timeout=OP_TIMEOUT)[res].result(OP_TIMEOUT)
        return {n: (entries[n].value, entries[n].source) for n in names}

    assert describe() == {
        "retention.ms": ("7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
        "cleanup.policy": ("delete", ConfigSource.DEFAULT_CONFIG.value),
        "max.message.bytes": ("1048588", ConfigSource.DEFAULT_CONFIG.value),
    }

    res = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("max.message.bytes", "200000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    admin.incremental_alter_configs([res], request_timeout=OP_TIMEOUT)[res].result(OP_TIMEOUT)
    assert describe() == {
        "retention.ms": ("604800000", ConfigSource.DEFAULT_CONFIG.value),
        "cleanup.policy": ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
        "max.message.bytes": ("200000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
    }

    # an invalid value is refused and changes nothing
    bad = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("cleanup.policy", "sometimes", incremental_operation=AlterConfigOpType.SET)],
    )
    with pytest.raises(confluent_kafka.KafkaException) as ei:
        admin.incremental_alter_configs([bad], request_timeout=OP_TIMEOUT)[bad].result(OP_TIMEOUT)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert describe()["cleanup.policy"] == ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)

    admin.delete_topics([topic], operation_timeout=OP_TIMEOUT)[topic].result(OP_TIMEOUT)
    wait_until(lambda: topic not in admin.list_topics(timeout=OP_TIMEOUT).topics, "topic gone from metadata")


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_group_of_two_splits_topic(bootstrap, admin, protocol):
    """Two members of one group on a 2-partition topic: one partition each,
    every message exactly once, in order (classic protocol and KIP-848)."""
    topic = uniq(f"cfk-group-{protocol}")
    group = uniq(f"cfk-group-{protocol}")
    create_topic(admin, bootstrap, topic, 2)
    extra = {"group.protocol": protocol}
    if protocol == "classic":
        extra.update({"session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
    members = [consumer(bootstrap, group, **extra) for _ in range(2)]
    got = [[], []]
    try:
        for c in members:
            c.subscribe([topic])

        def poll_all():
            for i, c in enumerate(members):
                m = c.poll(0.1)
                if m is not None and m.error() is None:
                    got[i].append(as_tuple(m))

        def split():
            poll_all()
            a = [sorted(tp.partition for tp in c.assignment()) for c in members]
            return sorted(a) == [[0], [1]] and a

        assignment = wait_until(split, "one partition for each member", timeout=30, interval=0)
        assert got == [[], []]

        p = producer(bootstrap)
        msgs = [(part, f"k{part}".encode(), f"p{part}-{i}".encode(), [("n", str(i).encode())], None)
                for i in range(10) for part in (0, 1)]
        produce_all(p, topic, msgs)

        wait_until(lambda: poll_all() or sum(map(len, got)) >= 20, "20 messages", timeout=30, interval=0)
        for i, c in enumerate(members):
            part = assignment[i][0]
            assert got[i] == [(topic, part, n, f"k{part}".encode(), f"p{part}-{n}".encode(), [("n", str(n).encode())])
                              for n in range(10)]
            # and still the same single partition
            assert [tp.partition for tp in c.assignment()] == [part]
    finally:
        for c in members:
            c.close()


def test_commit_and_resume(bootstrap, admin):
    topic = uniq("cfk-commit")
    group = uniq("cfk-commit")
    create_topic(admin, bootstrap, topic, 1)
    msgs = [(0, f"k{i}".encode(), f"v{i}".encode(), [], None) for i in range(10)]
    produce_all(producer(bootstrap), topic, msgs)
    tp = TopicPartition(topic, 0)

    c = consumer(bootstrap, group)
    c.subscribe([topic])
    try:
        got = poll_n(c, 4)
        assert [(o, k, v) for _, _, o, k, v, _ in got] == [(i, f"k{i}".encode(), f"v{i}".encode()) for i in range(4)]
        res = c.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
        assert [(r.topic, r.partition, r.offset, r.error) for r in res] == [(topic, 0, 4, None)]
        assert [(r.offset, r.error) for r in c.committed([tp], timeout=OP_TIMEOUT)] == [(4, None)]
    finally:
        c.close()

    c = consumer(bootstrap, group)
    c.subscribe([topic])
    try:
        got = poll_n(c, 6)
        assert [(o, k, v) for _, _, o, k, v, _ in got] == [(i, f"k{i}".encode(), f"v{i}".encode()) for i in range(4, 10)]
        last = c.poll(0)  # nothing after offset 9
        assert last is None or last.error() is not None
        c.commit(asynchronous=False)  # the consumed position: 10
        assert [(r.offset, r.error) for r in c.committed([tp], timeout=OP_TIMEOUT)] == [(10, None)]
    finally:
        c.close()

    # the AdminClient reads the same committed offset
    from confluent_kafka import ConsumerGroupTopicPartitions

    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [tp])], request_timeout=OP_TIMEOUT)
    offsets = res[group].result(OP_TIMEOUT)
    assert [(t.topic, t.partition, t.offset) for t in offsets.topic_partitions] == [(topic, 0, 10)]
