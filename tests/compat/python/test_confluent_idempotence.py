"""confluent-kafka idempotent producer (enable.idempotence=True): needs
InitProducerId and the broker's sequence checks. N keyed messages over 3
partitions are read back exactly once, in send order per partition."""

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from helpers import stored_batches, uniq
from test_confluent import OP_TIMEOUT, consumer, create_topic, poll_n

N = 300
KEYS = 12


def test_idempotent_producer_exactly_once_in_order(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = uniq("cfk-idempotent")
    create_topic(admin, bootstrap, topic, 3)

    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 5,
        "batch.num.messages": 20,  # several in-flight batches per partition
    })
    reports, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            reports.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    for i in range(N):
        p.produce(topic, key=f"key-{i % KEYS}".encode(), value=f"msg-{i}".encode(), on_delivery=on_delivery)
    try:
        left = p.flush(OP_TIMEOUT)
    except Exception as e:  # a fatal producer error surfaces here
        raise AssertionError(f"flush raised {e!r} (librdkafka's FATAL line is in the captured stderr)") from e
    assert errors == []
    assert left == 0
    assert len(reports) == N

    # where each message went, from the delivery reports: per partition,
    # offsets 0..n-1 in send order; each key on one partition only
    by_partition = {}
    for part, off, key, value in reports:
        by_partition.setdefault(part, []).append((off, key, value))
    key_partition = {}
    for part, rows in by_partition.items():
        rows.sort()
        assert [o for o, _, _ in rows] == list(range(len(rows)))
        assert [int(v.decode()[4:]) for _, _, v in rows] == sorted(int(v.decode()[4:]) for _, _, v in rows)
        for _, k, _ in rows:
            assert key_partition.setdefault(k, part) == part
    assert len(key_partition) == KEYS

    # read back: exactly what the delivery reports said, nothing more
    c = consumer(bootstrap, uniq("cfk-idempotent"))
    c.assign([TopicPartition(topic, p, 0) for p in range(3)])
    try:
        got = poll_n(c, N)
        assert c.poll(0.5) is None  # nothing beyond the N
    finally:
        c.close()
    for part in range(3):
        assert [(o, k, v) for _, gp, o, k, v, _ in got if gp == part] == by_partition.get(part, [])
    assert sorted(v for _, _, _, _, v, _ in got) == sorted(f"msg-{i}".encode() for i in range(N))

    # the broker stored idempotent batches: one producer id, sequences
    # counting from 0 with the offsets (one producer, fresh partitions)
    pids = set()
    for part in by_partition:
        batches = stored_batches(bootstrap, topic, part)
        assert batches[-1].last_offset == len(by_partition[part]) - 1
        for b in batches:
            assert b.count == b.last_offset - b.base_offset + 1
            assert b.base_sequence == b.base_offset, batches
            assert b.producer_id >= 0 and b.producer_epoch >= 0, batches
            pids.add((b.producer_id, b.producer_epoch))
    assert len(pids) == 1, pids
