"""kafka-python 3's KafkaProducer with its defaults: idempotent since
KIP-679 (acks=all, InitProducerId, sequence numbers). N keyed messages over
3 partitions are read back exactly once, in send order per partition."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from helpers import stored_batches, uniq
from test_kafka_python import admin, create_topic, poll_n  # noqa: F401 (admin: a fixture)

N = 300
KEYS = 12


def test_default_producer_is_idempotent_exactly_once_in_order(bootstrap, admin):
    topic = uniq("kpy-idempotent")
    create_topic(admin, bootstrap, topic, 3)

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)  # all defaults
    assert producer.config["enable_idempotence"] is True
    try:
        futures = [(f"key-{i % KEYS}".encode(), f"msg-{i}".encode(),
                    producer.send(topic, key=f"key-{i % KEYS}".encode(), value=f"msg-{i}".encode()))
                   for i in range(N)]
        producer.flush(timeout=30)
        sent = {}
        for key, value, f in futures:
            md = f.get(timeout=15)
            sent.setdefault(md.partition, []).append((md.partition, md.offset, key, value))
    finally:
        producer.close(timeout=10)

    key_partition = {}
    for part, rows in sent.items():
        assert [o for _, o, _, _ in rows] == list(range(len(rows)))  # send order = offset order
        for _, _, k, _ in rows:
            assert key_partition.setdefault(k, part) == part
    assert len(key_partition) == KEYS

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        c.assign([TopicPartition(topic, p) for p in range(3)])
        c.seek_to_beginning()
        got = poll_n(c, N)
        assert c.poll(timeout_ms=500) == {}
    finally:
        c.close()
    for part in range(3):
        assert [(p, o, k, v) for p, o, k, v, _ in got if p == part] == sent.get(part, [])

    # stored as idempotent batches: one producer id, sequences = offsets
    pids = set()
    for part in sent:
        for b in stored_batches(bootstrap, topic, part):
            assert b.base_sequence == b.base_offset
            pids.add((b.producer_id, b.producer_epoch))
    assert len(pids) == 1 and min(pids)[0] >= 0, pids
