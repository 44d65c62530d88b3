// The seeds' programs (seeds/), run as child processes with exact stdout
// assertions. Only the parts that need no consumer group are here; their
// consumers are in groups.test.mjs.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, createTopic, scenario, uniq, client, program, killChildren, readPartition, until, failed, TSX, TSC,
  REPLICATION_FACTOR,
} from '../lib/harness.mjs';

let broker;
let kafka;
let admin;

before(async () => {
  broker = await startBroker();
  kafka = client(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  await killChildren();
  await admin?.disconnect();
  await broker?.stop({ printLog: failed() });
});

const seedEnv = extra => ({ KAFKA_BROKER: broker.bootstrap, ...extra });

/** Each partition's metadata, by partition, its leader one of the brokers. */
async function partitions(topic) {
  const { brokers } = await admin.describeCluster();
  const ids = brokers.map(b => b.nodeId);
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  const byPartition = [...topics[0].partitions].sort((a, b) => a.partitionId - b.partitionId);
  for (const p of byPartition) assert.ok(ids.includes(p.leader), `leader ${p.leader} is one of ${ids}`);
  return byPartition;
}

/** Each partition's leader, by partition. */
async function leaders(topic) {
  return (await partitions(topic)).map(p => p.leader);
}

scenario('seed 001: admin.js creates a 2-partition topic, lists and describes it', 60_000, async () => {
  const topic = uniq('rider-updates');
  const p = program('node', ['seeds/001/admin.js'], { env: seedEnv({ TOPIC: topic, PARTITIONS: '2' }) });
  const { code } = await p.exited;
  assert.equal(code, 0, p.describe());
  // The brokers' default replication factor (one on one node), every
  // replica in sync, the first one leading.
  const [p0, p1] = await partitions(topic);
  for (const p of [p0, p1]) {
    assert.equal(new Set(p.replicas).size, REPLICATION_FACTOR, JSON.stringify(p));
    assert.deepEqual([p.leader, p.isr], [p.replicas[0], p.replicas], JSON.stringify(p));
  }
  const line = p => `  partition ${p.partitionId} leader ${p.leader} replicas [${p.replicas}] isr [${p.isr}]`;
  assert.equal(
    p.output(),
    [
      'Admin connecting...',
      'Admin Connection Success...',
      `Creating Topic [${topic}]`,
      `Topic Created Success [${topic}]: true`,
      'Topic listed: true',
      `Topic ${topic}: 2 partitions`,
      line(p0),
      line(p1),
      'Disconnecting Admin..',
      '',
    ].join('\n'),
    p.describe(),
  );

  // Run again: the topic exists, createTopics answers false, nothing else changes.
  const again = program('node', ['seeds/001/admin.js'], { env: seedEnv({ TOPIC: topic, PARTITIONS: '2' }) });
  assert.equal((await again.exited).code, 0, again.describe());
  assert.match(again.output(), new RegExp(`^Topic Created Success \\[${topic}\\]: false$`, 'm'), again.describe());
  assert.match(again.output(), new RegExp(`^Topic ${topic}: 2 partitions$`, 'm'), again.describe());
});

scenario('seed 002: producer.js sends "bill south" to partition 0 and "tom north" to partition 1', 60_000, async () => {
  const topic = uniq('test-group-1');
  assert.equal(await createTopic(admin, kafka, topic, 2), true);

  const p = program('node', ['seeds/002/producer.js'], { env: seedEnv({ TOPIC: topic }) });
  await p.waitFor(/^Producer Connected\n> $/);
  p.write('bill south\n');
  p.write('tom north\n');
  // The seed prints nothing per message: wait until both are in the log,
  // then close its stdin, which disconnects the producer.
  await until(
    async () => {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.every(o => o.high === '1');
    },
    { what: 'one message on each partition' },
  );
  p.end();
  const { code } = await p.exited;
  assert.equal(code, 0, p.describe());
  assert.equal(p.output(), 'Producer Connected\n> ', p.describe());
  assert.equal(p.stderr(), '', p.describe());

  const expected = {
    0: { name: 'bill', location: 'south' },
    1: { name: 'tom', location: 'north' },
  };
  for (const partition of [0, 1]) {
    const msgs = await readPartition(kafka, topic, partition);
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0].offset, 0);
    assert.equal(msgs[0].key.toString(), 'Location Updates');
    assert.equal(msgs[0].value.toString(), JSON.stringify(expected[partition]));
    assert.deepEqual(msgs[0].headers, {});
  }
});

scenario('seed 003: producer.ts (TypeScript, tsx) sends key1 / "Hello Kafka from TypeScript!" to an auto-created topic', 60_000, async () => {
  const topic = uniq('test-topic');
  const p = program(TSX, ['seeds/003/producer.ts'], { env: seedEnv({ TOPIC: topic }) });
  const { code } = await p.exited;
  assert.equal(code, 0, p.describe());
  assert.equal(p.output(), 'Producer connected\nMessage sent\n', p.describe());

  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(meta.topics[0].partitions.length, 1, 'auto-created with num.partitions=1');
  const msgs = await readPartition(kafka, topic, 0);
  assert.deepEqual(
    msgs.map(m => ({ offset: m.offset, key: m.key.toString(), value: m.value.toString(), headers: m.headers })),
    [{ offset: 0, key: 'key1', value: 'Hello Kafka from TypeScript!', headers: {} }],
  );
});

scenario('seed 003: producer.ts and consumer.ts type-check with tsc --strict (kafkajs 2.2.4 typings)', 120_000, async () => {
  const tsc = program(TSC, ['-p', 'tsconfig.json']);
  const { code } = await tsc.exited;
  assert.equal(code, 0, tsc.describe());
  assert.equal(tsc.stdout(), '', tsc.describe());
});
