// Transactions with kafkajs's transactional producer (FindCoordinator for a
// transactional id, InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
// TxnOffsetCommit, EndTxn), read back by kafkajs group consumers in
// read_committed and read_uncommitted mode, with exact content checks.
//
// "Nothing else is visible" is checked by ordering: the records that must
// stay hidden are written before the records that must be seen, so a
// consumer that reaches the latter has passed over the former.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBroker, createTopic, scenario, uniq, client, until, failed } from '../lib/harness.mjs';

let broker;
let kafka;
let admin;
const open = new Set();

before(async () => {
  broker = await startBroker();
  kafka = client(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  await Promise.all([...open].map(c => c.disconnect().catch(() => {})));
  await admin?.disconnect();
  await broker?.stop({ printLog: failed() });
});

async function txnProducer(transactionalId) {
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  open.add(producer);
  return producer;
}

const values = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const messages = (prefix, n) => values(prefix, n).map(value => ({ key: 'k', value }));

/** Consumes `topic` from the beginning in a fresh group until `n` records arrived; returns [{ offset, value }]. */
async function consume(topic, n, { readUncommitted }) {
  const consumer = kafka.consumer({ groupId: uniq('txn-reader'), readUncommitted, maxWaitTimeInMs: 100 });
  open.add(consumer);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      got.push({ offset: Number(message.offset), value: message.value.toString() });
    },
  });
  await until(() => got.length >= n, { timeoutMs: 30_000, what: `${n} records of ${topic}` });
  await consumer.disconnect();
  open.delete(consumer);
  return got;
}

async function committedOffset(groupId, topic) {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return t.partitions.find(p => p.partition === 0).offset;
}

scenario('transactions: a commit to two topics with sendOffsets is seen whole by read_committed', 90_000, async () => {
  const [a, b, input] = [uniq('txn-a'), uniq('txn-b'), uniq('txn-input')];
  for (const t of [a, b, input]) assert.equal(await createTopic(admin, kafka, t, 1), true);
  const group = uniq('txn-app');
  const producer = await txnProducer(uniq('txn-commit'));

  const txn = await producer.transaction();
  await txn.send({ topic: a, messages: messages('a', 5) });
  await txn.send({ topic: b, messages: messages('b', 3) });
  await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic: input, partitions: [{ partition: 0, offset: '42' }] }] });
  assert.equal(await committedOffset(group, input), '-1', 'offsets stay pending until the commit');
  await txn.commit();

  const gotA = await consume(a, 5, { readUncommitted: false });
  assert.deepEqual(gotA, values('a', 5).map((value, offset) => ({ offset, value })));
  const gotB = await consume(b, 3, { readUncommitted: false });
  assert.deepEqual(gotB, values('b', 3).map((value, offset) => ({ offset, value })));
  assert.equal(await committedOffset(group, input), '42');
});

scenario('transactions: an abort is invisible to read_committed, visible to read_uncommitted', 90_000, async () => {
  const [a, b, input] = [uniq('txn-abort-a'), uniq('txn-abort-b'), uniq('txn-abort-input')];
  for (const t of [a, b, input]) assert.equal(await createTopic(admin, kafka, t, 1), true);
  const group = uniq('txn-abort-app');
  const producer = await txnProducer(uniq('txn-abort'));

  const aborted = await producer.transaction();
  await aborted.send({ topic: a, messages: messages('gone', 4) });
  await aborted.send({ topic: b, messages: messages('gone', 2) });
  await aborted.sendOffsets({ consumerGroupId: group, topics: [{ topic: input, partitions: [{ partition: 0, offset: '9' }] }] });
  await aborted.abort();

  const kept = await producer.transaction();
  await kept.send({ topic: a, messages: messages('kept', 3) });
  await kept.send({ topic: b, messages: messages('kept', 1) });
  await kept.commit();

  // Offsets: 4 aborted records, the abort marker, then the kept ones.
  assert.deepEqual(
    await consume(a, 3, { readUncommitted: false }),
    values('kept', 3).map((value, i) => ({ offset: 5 + i, value })),
  );
  assert.deepEqual(await consume(b, 1, { readUncommitted: false }), [{ offset: 3, value: 'kept-0' }]);
  const all = await consume(a, 7, { readUncommitted: true });
  assert.deepEqual(all.map(m => m.value), [...values('gone', 4), ...values('kept', 3)]);
  assert.deepEqual(all.map(m => m.offset), [0, 1, 2, 3, 5, 6, 7]);
  assert.equal(await committedOffset(group, input), '-1', 'aborted offsets are never committed');
});

scenario('transactions: aborted records stay hidden from read_committed across segment boundaries and a broker restart', 180_000, async () => {
  const topic = uniq('txn-segments');
  // 1 MiB segments (the smallest Kafka 4.x accepts); the aborted transaction
  // below writes 1.5 MiB, so it spans a segment boundary.
  assert.equal(
    await createTopic(admin, kafka, topic, 1, { configEntries: [{ name: 'segment.bytes', value: '1048576' }] }),
    true,
  );
  const producer = await txnProducer(uniq('txn-segments'));
  const filler = 'x'.repeat(1000);
  const aborted = await producer.transaction();
  for (let i = 0; i < 3; i++) {
    await aborted.send({
      topic,
      messages: Array.from({ length: 500 }, (_, j) => ({ key: 'gone', value: `gone-${i * 500 + j}-${filler}` })),
    });
  }
  await aborted.abort();
  const kept = await producer.transaction();
  await kept.send({ topic, messages: messages('kept', 5) });
  await kept.commit();
  await producer.disconnect();
  open.delete(producer);

  // Offsets: 1,500 aborted records, the abort marker at 1,500, then the kept ones.
  const expected = values('kept', 5).map((value, i) => ({ offset: 1501 + i, value }));
  assert.deepEqual(await consume(topic, 5, { readUncommitted: false }), expected);
  const everything = await consume(topic, 1505, { readUncommitted: true });
  assert.equal(everything.length, 1505);
  assert.equal(everything.filter(m => m.value.startsWith('gone-')).length, 1500);

  if (await broker.restart()) {
    await admin.disconnect();
    kafka = client(broker.bootstrap);
    admin = kafka.admin();
    await admin.connect();
    assert.deepEqual(await consume(topic, 5, { readUncommitted: false }), expected, 'after a restart');
  }
});
