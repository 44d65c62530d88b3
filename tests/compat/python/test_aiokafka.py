"""aiokafka (asyncio) against the broker with its defaults (api_version
auto-detected): AIOKafkaProducer.send_and_wait with keys and headers, an
AIOKafkaConsumer in a group, getone/getmany, commit, seek, committed offsets
read back, resume."""

import asyncio
import time

import aiokafka
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from helpers import partition_served, uniq, wait_until


def test_client_version():
    assert aiokafka.__version__ == "0.14.0"


async def create_topic(bootstrap, topic, partitions):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    for p in range(partitions):
        wait_until(lambda: partition_served(bootstrap, topic, p), f"{topic}/{p} served")


def new_consumer(bootstrap, group, *topics):
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=100,
    )


def row(m):
    return (m.partition, m.offset, m.key, m.value, list(m.headers))


async def getmany_n(c, n, timeout=30.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"got {len(got)} of {n}: {got}"
        for _tp, msgs in (await c.getmany(timeout_ms=200)).items():
            got += [row(m) for m in msgs]
    return got


@pytest.mark.asyncio
@pytest.mark.timeout(90)
async def test_group_commit_seek_resume(bootstrap):
    topic = uniq("aio-group")
    group = uniq("aio-group")
    await create_topic(bootstrap, topic, 2)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    sent = {0: [], 1: []}
    try:
        for i in range(15):
            part = 0 if i < 10 else 1
            key, value = f"k{i % 3}".encode(), f"value-{i}".encode()
            headers = [("i", str(i).encode()), ("bin", bytes([0, i, 255]))]
            md = await producer.send_and_wait(topic, value=value, key=key, headers=headers, partition=part)
            assert (md.topic, md.partition, md.offset) == (topic, part, len(sent[part]))
            sent[part].append((part, md.offset, key, value, headers))
        # a batch through send(): futures resolve in order
        futs = [await producer.send(topic, value=f"batch-{i}".encode(), key=b"b", partition=1) for i in range(5)]
        mds = await asyncio.gather(*futs)
        assert [(m.partition, m.offset) for m in mds] == [(1, 5 + i) for i in range(5)]
        sent[1] += [(1, 5 + i, b"b", f"batch-{i}".encode(), []) for i in range(5)]
    finally:
        await producer.stop()

    c = new_consumer(bootstrap, group, topic)
    await c.start()
    try:
        first = await asyncio.wait_for(c.getone(), 30)
        rest = await getmany_n(c, 19)
        got = [row(first)] + rest
        assert c.assignment() == {tp0, tp1}
        assert [m for m in got if m[0] == 0] == sent[0]
        assert [m for m in got if m[0] == 1] == sent[1]
        assert await c.committed(tp0) is None and await c.committed(tp1) is None

        await c.commit()  # the consumed positions
        assert (await c.committed(tp0), await c.committed(tp1)) == (10, 10)

        # seek back on partition 0: exactly offsets 4..9, then nothing
        c.seek(tp0, 4)
        assert await c.position(tp0) == 4
        m = await asyncio.wait_for(c.getone(tp0), 30)
        assert row(m) == sent[0][4]
        assert await getmany_n(c, 5) == sent[0][5:]
        assert await c.getmany(timeout_ms=500) == {}

        await c.commit({tp0: OffsetAndMetadata(7, "seven")})
        assert await c.committed(tp0) == 7
        assert await c.committed(tp1) == 10
    finally:
        await c.stop()

    # the admin client reads the same committed offsets
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    assert {tp: (o.offset, o.metadata) for tp, o in offsets.items()} == {tp0: (7, "seven"), tp1: (10, "")}

    # a new member resumes from the committed offsets
    c = new_consumer(bootstrap, group, topic)
    await c.start()
    try:
        assert await getmany_n(c, 3) == sent[0][7:]
        assert await c.getmany(timeout_ms=500) == {}
        assert (await c.position(tp0), await c.position(tp1)) == (10, 10)
    finally:
        await c.stop()
