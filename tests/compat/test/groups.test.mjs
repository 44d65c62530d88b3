// NEEDS CONSUMER GROUPS (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit, OffsetFetch). Every kafkajs consumer is a group
// member, so nothing here can pass on a broker without groups. Proven against
// Apache Kafka (see docs/COMPATIBILITY.md); move this file to ../test/ (where
// CI's run.sh picks files up) once Vltava's groups land and it passes.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { format } from 'node:util';
import { createRequire } from 'node:module';
import {
  startBroker, createTopic, scenario, uniq, client, program, killChildren, until, sleep, failed, TSX,
} from '../lib/harness.mjs';

const require = createRequire(import.meta.url);
const { Partitioners } = require('kafkajs');

let broker;
let kafka;
let admin;
let producer;
const consumers = new Set();

before(async () => {
  broker = await startBroker();
  kafka = client(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
});

after(async () => {
  await killChildren();
  await Promise.all([...consumers].map(c => c.disconnect().catch(() => {})));
  await producer?.disconnect();
  await admin?.disconnect();
  await broker?.stop({ printLog: failed() });
});

const seedEnv = extra => ({ KAFKA_BROKER: broker.bootstrap, ...extra });

/** A kafkajs consumer whose messages are collected as {partition, offset, key, value}. */
async function collectingConsumer(groupId, topic, { fromBeginning = true, autoCommit = true, onMessage } = {}) {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
    rebalanceTimeout: 10_000,
    maxWaitTimeInMs: 500,
  });
  consumers.add(consumer);
  const got = [];
  const joins = [];
  consumer.on(consumer.events.GROUP_JOIN, e => joins.push(e.payload));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning });
  await consumer.run({
    autoCommit,
    eachMessage: async ({ partition, message }) => {
      const m = {
        partition,
        offset: Number(message.offset),
        key: message.key?.toString() ?? null,
        value: message.value?.toString() ?? null,
      };
      got.push(m);
      if (onMessage) await onMessage(m, consumer);
    },
  });
  return {
    consumer,
    got,
    joins,
    async stop() {
      consumers.delete(consumer);
      await consumer.disconnect();
    },
  };
}

async function produce(topic, messages) {
  await producer.send({ topic, acks: -1, messages });
}

scenario('seed 003: consumer.ts with fromBeginning receives producer.ts\'s message (key, value, offset)', 90_000, async () => {
  const topic = uniq('test-topic');
  const groupId = uniq('test-group');
  const prod = program(TSX, ['seeds/003/producer.ts'], { env: seedEnv({ TOPIC: topic }) });
  assert.equal((await prod.exited).code, 0, prod.describe());
  assert.equal(prod.output(), 'Producer connected\nMessage sent\n', prod.describe());

  const cons = program(TSX, ['seeds/003/consumer.ts'], { env: seedEnv({ TOPIC: topic, GROUP_ID: groupId }) });
  const expected =
    'Consumer connected\n' +
    format({ topic, partition: 0, key: 'key1', value: 'Hello Kafka from TypeScript!', offset: '0' }) +
    '\n';
  await cons.waitFor(() => cons.output() === expected || cons.output().length > expected.length, 60_000);
  await sleep(500); // nothing more may arrive
  assert.equal(cons.output(), expected, cons.describe());
  const { code } = await cons.stop();
  assert.equal(code, 0, cons.describe());
});

scenario('seed 002: consumer.js as groups user-1 and user-2 each receive both messages', 90_000, async () => {
  const topic = uniq('test-group-1');
  await createTopic(admin, kafka, topic, 2);
  const prod = program('node', ['seeds/002/producer.js'], { env: seedEnv({ TOPIC: topic }) });
  await prod.waitFor(/^Producer Connected\n> $/);
  prod.write('bill south\ntom north\n');
  await until(async () => (await admin.fetchTopicOffsets(topic)).every(o => o.high === '1'), {
    what: 'one message on each partition',
  });
  prod.end();
  assert.equal((await prod.exited).code, 0, prod.describe());

  const groups = [uniq('user-1'), uniq('user-2')];
  const cons = groups.map(g => program('node', ['seeds/002/consumer.js', g], { env: seedEnv({ TOPIC: topic }) }));
  const lines = p => p.output().split('\n').filter(Boolean).sort();
  for (const c of cons) await c.waitFor(() => lines(c).length >= 2, 60_000);
  await sleep(500);
  groups.forEach((g, i) => {
    assert.deepEqual(
      lines(cons[i]),
      [
        `${g}: [${topic}] PART:0: {"name":"bill","location":"south"}`,
        `${g}: [${topic}] PART:1: {"name":"tom","location":"north"}`,
      ],
      cons[i].describe(),
    );
  });
  for (const c of cons) assert.equal((await c.stop()).code, 0, c.describe());
});

scenario('group: two consumers in one group split a 2-partition topic and receive every message exactly once', 120_000, async () => {
  const topic = uniq('split-2');
  const groupId = uniq('split-group');
  await createTopic(admin, kafka, topic, 2);
  const a = await collectingConsumer(groupId, topic);
  await until(() => a.joins.length > 0, { what: 'first member joined', timeoutMs: 30_000 });
  const b = await collectingConsumer(groupId, topic);

  // Wait for a generation in which both members hold one partition each.
  const assigned = c => c.joins.at(-1)?.memberAssignment?.[topic] ?? [];
  await until(
    () => {
      const ja = a.joins.at(-1);
      const jb = b.joins.at(-1);
      return (
        ja && jb && ja.groupId === groupId && ja.generationId === jb.generationId &&
        assigned(a).length === 1 && assigned(b).length === 1 && assigned(a)[0] !== assigned(b)[0]
      );
    },
    { what: 'a stable generation with one partition each', timeoutMs: 60_000 },
  );
  const ja = a.joins.at(-1);
  const jb = b.joins.at(-1);
  assert.notEqual(ja.memberId, jb.memberId);
  assert.equal(ja.isLeader !== jb.isLeader, true, 'exactly one leader');
  assert.equal(ja.leaderId, jb.leaderId);

  const messages = [];
  for (let i = 0; i < 20; i++) messages.push({ partition: i % 2, key: `k${i}`, value: `v${i}` });
  await produce(topic, messages);

  await until(() => a.got.length + b.got.length >= 20, { what: '20 messages', timeoutMs: 30_000 });
  await sleep(500);
  for (const c of [a, b]) {
    const p = assigned(c)[0];
    const mine = messages.filter(m => m.partition === p);
    assert.deepEqual(
      c.got,
      mine.map((m, i) => ({ partition: p, offset: i, key: m.key, value: m.value })),
      `member on partition ${p} got exactly its partition, in order, once`,
    );
  }
  await a.stop();
  await b.stop();
});

scenario('group: commit, stop, restart resumes at the committed offset', 120_000, async () => {
  const topic = uniq('resume');
  const groupId = uniq('resume-group');
  await createTopic(admin, kafka, topic, 1);
  await produce(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));

  // First run: manual commits, commit offset 4 (= messages 0..3 processed).
  let committed = false;
  const first = await collectingConsumer(groupId, topic, {
    autoCommit: false,
    onMessage: async (m, consumer) => {
      if (m.offset === 3) {
        await consumer.commitOffsets([{ topic, partition: 0, offset: '4' }]);
        committed = true;
      }
    },
  });
  await until(() => committed, { what: 'commit of offset 4', timeoutMs: 60_000 });
  await first.stop();
  assert.deepEqual(first.got.slice(0, 4).map(m => m.offset), [0, 1, 2, 3]);

  assert.deepEqual(await admin.fetchOffsets({ groupId, topics: [topic] }), [
    { topic, partitions: [{ partition: 0, offset: '4', metadata: null }] },
  ]);

  // Second run of the same group: starts at 4 (fromBeginning is only for groups without a commit).
  const second = await collectingConsumer(groupId, topic, { fromBeginning: true });
  await until(() => second.got.length >= 6, { what: 'messages 4..9', timeoutMs: 60_000 });
  await sleep(500);
  assert.deepEqual(
    second.got,
    Array.from({ length: 6 }, (_, j) => ({ partition: 0, offset: 4 + j, key: `k${4 + j}`, value: `v${4 + j}` })),
  );
  await second.stop();
  // autoCommit committed what the second run processed (at the latest on disconnect).
  assert.deepEqual(await admin.fetchOffsets({ groupId, topics: [topic] }), [
    { topic, partitions: [{ partition: 0, offset: '10', metadata: null }] },
  ]);
});

scenario('group: pause, resume and seek', 120_000, async () => {
  const topic = uniq('pause-seek');
  const groupId = uniq('pause-group');
  await createTopic(admin, kafka, topic, 1);
  await produce(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));

  let seen = 0;
  let seeked = false;
  const c = await collectingConsumer(groupId, topic, {
    onMessage: async (m, consumer) => {
      seen++;
      if (m.offset === 2 && seen === 3) consumer.pause([{ topic }]);
      if (m.offset === 9 && !seeked) {
        seeked = true;
        consumer.seek({ topic, partition: 0, offset: '5' });
      }
    },
  });
  await until(() => c.got.length >= 3, { what: 'offsets 0..2', timeoutMs: 60_000 });
  await sleep(1500);
  assert.deepEqual(c.got.map(m => m.offset), [0, 1, 2], 'nothing is delivered while paused');
  assert.deepEqual(c.consumer.paused(), [{ topic, partitions: [0] }]);

  c.consumer.resume([{ topic }]);
  await until(() => c.got.length >= 15, { what: 'offsets 3..9 then 5..9 after the seek', timeoutMs: 30_000 });
  await sleep(500);
  assert.deepEqual(c.got.map(m => m.offset), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5, 6, 7, 8, 9]);
  assert.deepEqual(c.got.slice(10).map(m => m.value), ['v5', 'v6', 'v7', 'v8', 'v9']);
  await c.stop();
});

scenario('group: admin.resetOffsets (earliest, latest) and setOffsets move where a stopped group resumes', 120_000, async () => {
  const topic = uniq('reset');
  const groupId = uniq('reset-group');
  await createTopic(admin, kafka, topic, 1);
  await produce(topic, Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
  const offsetOf = async () =>
    (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions.map(p => p.offset);

  const first = await collectingConsumer(groupId, topic);
  await until(() => first.got.length >= 5, { what: '5 messages', timeoutMs: 60_000 });
  await first.stop();
  assert.deepEqual(await offsetOf(), ['5']);

  // earliest: kafkajs commits -2 (EARLIEST); fetchOffsets({ resolveOffsets })
  // turns it into the log start offset and commits that. A restarted member
  // (fromBeginning: false, so only a commit can send it back) starts there.
  await admin.resetOffsets({ groupId, topic, earliest: true });
  assert.deepEqual(await offsetOf(), ['-2']);
  const resolvedEarliest = await admin.fetchOffsets({ groupId, topics: [topic], resolveOffsets: true });
  assert.deepEqual(resolvedEarliest[0].partitions.map(p => p.offset), ['0']);
  assert.deepEqual(await offsetOf(), ['0']);
  const second = await collectingConsumer(groupId, topic, { fromBeginning: false });
  await until(() => second.got.length >= 5, { what: 'all 5 again', timeoutMs: 60_000 });
  await sleep(500);
  assert.deepEqual(second.got.map(m => m.offset), [0, 1, 2, 3, 4]);
  await second.stop();

  // setOffsets to 3: resumes at 3.
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '3' }] });
  assert.deepEqual(await offsetOf(), ['3']);
  const third = await collectingConsumer(groupId, topic, { fromBeginning: false });
  await until(() => third.got.length >= 2, { what: 'offsets 3, 4', timeoutMs: 60_000 });
  await sleep(500);
  assert.deepEqual(third.got.map(m => m.offset), [3, 4]);
  await third.stop();

  // latest: -1 (LATEST), which fetchOffsets({resolveOffsets}) turns into the high watermark.
  await admin.resetOffsets({ groupId, topic, earliest: false });
  assert.deepEqual(await offsetOf(), ['-1']);
  const resolved = await admin.fetchOffsets({ groupId, topics: [topic], resolveOffsets: true });
  assert.deepEqual(resolved[0].partitions.map(p => p.offset), ['5']);
  assert.deepEqual(await offsetOf(), ['5']);

  // A running member blocks resets: Kafka refuses offset changes for a non-empty group.
  const running = await collectingConsumer(groupId, topic);
  await until(() => running.joins.length > 0, { what: 'member joined', timeoutMs: 60_000 });
  await assert.rejects(admin.resetOffsets({ groupId, topic, earliest: true }), e => {
    assert.equal(e.name, 'KafkaJSNonRetriableError');
    assert.match(e.message, /^The consumer group must have no running instances, current state: Stable$/);
    return true;
  });
  await running.stop();
});
