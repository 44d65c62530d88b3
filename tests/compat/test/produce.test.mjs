// Producer scenarios with exact content checks. The data is read back with
// plain Fetch requests through kafkajs's own protocol code (no group), so
// these run on brokers without consumer groups.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startBroker, createTopic, scenario, uniq, client, readPartition, failed } from '../lib/harness.mjs';

const require = createRequire(import.meta.url);
const { Partitioners, CompressionTypes } = require('kafkajs');

let broker;
let kafka;
let admin;
let producer;

before(async () => {
  broker = await startBroker();
  kafka = client(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
});

after(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  await broker?.stop({ printLog: failed() });
});

export const KEYS = 150;
export const PER_KEY = 20;

/** 3,000 keyed messages in 30 sends of 100: key k-<n>, value k-<n>:<seq>. */
export function keyedMessages() {
  const all = [];
  for (let seq = 0; seq < PER_KEY; seq++) {
    for (let k = 0; k < KEYS; k++) all.push({ key: `k-${k}`, value: `k-${k}:${seq}` });
  }
  return all;
}

/** Where kafkajs's default (Java-compatible murmur2) partitioner puts each key. */
export function expectedPartitions(topic, messages, numPartitions) {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: numPartitions }, (_, i) => ({ partitionId: i, leader: 1 }));
  const byPartition = Array.from({ length: numPartitions }, () => []);
  for (const m of messages) {
    const p = partitioner({ topic, partitionMetadata, message: { key: m.key, value: m.value } });
    byPartition[p].push(m);
  }
  return byPartition;
}

scenario('produce: 3,000 keyed messages over 12 partitions land in order on the default partitioner\'s partition', 120_000, async () => {
  const topic = uniq('keyed-12');
  assert.equal(await createTopic(admin, kafka, topic, 12), true);
  const messages = keyedMessages();
  for (let i = 0; i < messages.length; i += 100) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 100) });
  }
  const expected = expectedPartitions(topic, messages, 12);
  assert.ok(expected.every(p => p.length > 0), 'every partition gets some keys');

  const offsets = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition);
  assert.deepEqual(offsets.map(o => Number(o.high)), expected.map(p => p.length));
  assert.deepEqual(offsets.map(o => o.low), Array(12).fill('0'));

  let total = 0;
  for (let p = 0; p < 12; p++) {
    const got = await readPartition(kafka, topic, p);
    assert.deepEqual(got.map(m => m.offset), expected[p].map((_, i) => i), `partition ${p}: offsets 0..n-1`);
    assert.deepEqual(
      got.map(m => ({ key: m.key.toString(), value: m.value.toString() })),
      expected[p],
      `partition ${p}: exactly its keys' messages, in send order`,
    );
    total += got.length;
  }
  assert.equal(total, 3000);
});

scenario('produce: gzip batch with headers, null key, empty value and explicit timestamps', 60_000, async () => {
  const topic = uniq('gzip-headers');
  assert.equal(await createTopic(admin, kafka, topic, 2), true);
  const t0 = 1_700_000_000_000;
  const messages = Array.from({ length: 50 }, (_, i) => ({
    partition: 1,
    key: i === 7 ? null : `key-${i}`,
    value: i === 8 ? '' : `value-${i}-${'x'.repeat(i * 10)}`,
    timestamp: String(t0 + i),
    headers: {
      'trace-id': `trace-${i}`,
      bin: Buffer.from([0, 1, 2, 255, i]),
      ...(i % 10 === 0 ? { dup: ['first', 'second'] } : {}),
    },
  }));
  const [meta] = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
  assert.equal(meta.errorCode, 0);
  assert.equal(meta.partition, 1);
  assert.equal(meta.baseOffset, '0');

  assert.deepEqual(await readPartition(kafka, topic, 0), []);
  const got = await readPartition(kafka, topic, 1);
  assert.equal(got.length, 50);
  got.forEach((m, i) => {
    assert.equal(m.offset, i);
    assert.equal(m.key === null ? null : m.key.toString(), i === 7 ? null : `key-${i}`);
    assert.equal(m.value.toString(), i === 8 ? '' : `value-${i}-${'x'.repeat(i * 10)}`);
    assert.equal(m.timestamp, String(t0 + i));
    const headers = Object.fromEntries(
      Object.entries(m.headers).map(([k, v]) => [k, Array.isArray(v) ? v.map(b => b.toString()) : k === 'bin' ? v.toString('hex') : v.toString()]),
    );
    assert.deepEqual(headers, {
      'trace-id': `trace-${i}`,
      bin: Buffer.from([0, 1, 2, 255, i]).toString('hex'),
      ...(i % 10 === 0 ? { dup: ['first', 'second'] } : {}),
    });
  });
});

scenario('produce: idempotent producer (InitProducerId, sequence numbers) writes each message once, in order', 60_000, async () => {
  const topic = uniq('idempotent');
  assert.equal(await createTopic(admin, kafka, topic, 3), true);
  const idempotent = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await idempotent.connect();
  try {
    const messages = Array.from({ length: 600 }, (_, i) => ({ key: `k-${i % 30}`, value: `v-${i}` }));
    for (let i = 0; i < messages.length; i += 100) {
      const meta = await idempotent.send({ topic, acks: -1, messages: messages.slice(i, i + 100) });
      assert.ok(meta.every(m => m.errorCode === 0));
    }
    const expected = expectedPartitions(topic, messages, 3);
    let total = 0;
    for (let p = 0; p < 3; p++) {
      const got = await readPartition(kafka, topic, p);
      assert.deepEqual(got.map(m => m.offset), expected[p].map((_, i) => i), `partition ${p}: offsets 0..n-1`);
      assert.deepEqual(
        got.map(m => ({ key: m.key.toString(), value: m.value.toString() })),
        expected[p],
        `partition ${p}: each message once, in send order`,
      );
      total += got.length;
    }
    assert.equal(total, 600);
  } finally {
    await idempotent.disconnect();
  }
});
