// Admin API scenarios (kafkajs admin client): topic creation with partitions,
// listing, metadata, partition growth, configs, deletion, and the offset
// look-ups fetchTopicOffsets / fetchTopicOffsetsByTimestamp.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startBroker, createTopic, scenario, uniq, client, until, failed, REPLICATION_FACTOR } from '../lib/harness.mjs';

const require = createRequire(import.meta.url);
const { ConfigResourceTypes } = require('kafkajs');

let broker;
let kafka;
let admin;
let producer;

before(async () => {
  broker = await startBroker();
  kafka = client(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer();
  await producer.connect();
});

after(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  await broker?.stop({ printLog: failed() });
});

const byPartition = (a, b) => a.partition - b.partition;

async function describeTopics(topics) {
  const { topics: meta } = await admin.fetchTopicMetadata({ topics });
  return Object.fromEntries(
    meta.map(t => [
      t.name,
      [...t.partitions]
        .sort((a, b) => a.partitionId - b.partitionId)
        .map(p => ({ partitionId: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr, error: p.partitionErrorCode })),
    ]),
  );
}

scenario('admin: createTopics with partitions, listTopics, fetchTopicMetadata (exact partitions and leaders)', 60_000, async () => {
  // One broker, or a cluster (tests/compat/cluster.sh) that lists the one
  // bootstrapped from among its brokers.
  const { brokers, controller } = await admin.describeCluster();
  const ids = brokers.map(b => b.nodeId);
  assert.equal(typeof controller, 'number');
  assert.ok(
    brokers.some(b => b.host === broker.bootstrap.split(':')[0] && b.port === Number(broker.bootstrap.split(':')[1])),
    JSON.stringify(brokers),
  );

  const one = uniq('admin-one');
  const three = uniq('admin-three');
  const twelve = uniq('admin-twelve');
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: one, numPartitions: 1 },
      { topic: three, numPartitions: 3 },
      { topic: twelve, numPartitions: 12, replicationFactor: 1 },
    ],
  });
  assert.equal(created, true);

  const listed = await admin.listTopics();
  for (const t of [one, three, twelve]) assert.ok(listed.includes(t), `${t} listed`);
  assert.equal(new Set(listed).size, listed.length, 'no duplicates in listTopics');

  // The brokers' default replication factor (or the one asked for), every
  // replica in sync, the first one leading; the leaders spread evenly.
  const described = await describeTopics([one, three, twelve]);
  const replicasOf = (t, i) => described[t][i].replicas;
  const part = (t, i) => ({ partitionId: i, leader: replicasOf(t, i)[0], replicas: replicasOf(t, i), isr: replicasOf(t, i), error: 0 });
  const range = (t, n) => Array.from({ length: n }, (_, i) => part(t, i));
  assert.deepEqual(described, {
    [one]: range(one, 1),
    [three]: range(three, 3),
    [twelve]: range(twelve, 12),
  });
  for (const [t, factor] of [[one, REPLICATION_FACTOR], [three, REPLICATION_FACTOR], [twelve, 1]]) {
    for (const p of described[t]) {
      assert.equal(new Set(p.replicas).size, factor, `${t}: ${JSON.stringify(p)}`);
      for (const r of p.replicas) assert.ok(ids.includes(r), `${t}: ${JSON.stringify(p)}`);
    }
  }
  for (const id of ids) {
    assert.equal(described[twelve].filter(p => p.leader === id).length, 12 / ids.length, `broker ${id} leads its share`);
  }

  // Creating an existing topic: kafkajs answers false (TOPIC_ALREADY_EXISTS is swallowed).
  assert.equal(await admin.createTopics({ topics: [{ topic: three, numPartitions: 3 }] }), false);

  // Grow 3 → 5 partitions.
  await admin.createPartitions({ topicPartitions: [{ topic: three, count: 5 }] });
  await until(async () => (await describeTopics([three]))[three].length === 5, { what: '5 partitions' });
  const grown = (await describeTopics([three]))[three];
  assert.deepEqual(grown.slice(0, 3), described[three], 'the first three unchanged');
  for (const p of grown) {
    assert.ok(ids.includes(p.leader), JSON.stringify(p));
    assert.deepEqual(p, { partitionId: p.partitionId, leader: p.replicas[0], replicas: p.replicas, isr: p.replicas, error: 0 });
    assert.equal(new Set(p.replicas).size, REPLICATION_FACTOR, JSON.stringify(p));
  }
  assert.deepEqual(grown.map(p => p.partitionId), [0, 1, 2, 3, 4]);
  await assert.rejects(
    admin.createPartitions({ topicPartitions: [{ topic: three, count: 2 }] }),
    e => e.name === 'KafkaJSAggregateError' || /partition/i.test(e.message),
    'shrinking is refused',
  );

  // Delete: gone from the listing.
  await admin.deleteTopics({ topics: [one] });
  await until(async () => !(await admin.listTopics()).includes(one), { what: `${one} deleted` });
});

scenario('admin: topic configs given at creation are reported by describeConfigs', 60_000, async () => {
  const topic = uniq('admin-configs');
  assert.equal(
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: 2,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'retention.ms', value: '3600000' },
            { name: 'segment.bytes', value: '1048576' },
          ],
        },
      ],
    }),
    true,
  );
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [
      { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy', 'retention.ms', 'segment.bytes'] },
    ],
  });
  assert.equal(resources.length, 1);
  assert.equal(resources[0].errorCode, 0);
  assert.equal(resources[0].resourceName, topic);
  const values = Object.fromEntries(resources[0].configEntries.map(c => [c.configName, c.configValue]));
  assert.deepEqual(values, { 'cleanup.policy': 'compact', 'retention.ms': '3600000', 'segment.bytes': '1048576' });
  for (const c of resources[0].configEntries) assert.equal(c.isDefault, false, `${c.configName} is not a default`);
});

scenario('admin: fetchTopicOffsets and fetchTopicOffsetsByTimestamp', 60_000, async () => {
  const topic = uniq('admin-offsets');
  await createTopic(admin, kafka, topic, 3);
  const t0 = Date.now() - 60_000;
  // partition 0: 5 messages at t0, t0+1s, ... t0+4s; partition 1: 2 at t0+0.5s, t0+1.5s; partition 2: empty.
  await producer.send({
    topic,
    acks: -1,
    messages: [0, 1, 2, 3, 4].map(i => ({ partition: 0, key: `k${i}`, value: `v${i}`, timestamp: String(t0 + i * 1000) })),
  });
  await producer.send({
    topic,
    acks: -1,
    messages: [0, 1].map(i => ({ partition: 1, key: `k${i}`, value: `v${i}`, timestamp: String(t0 + 500 + i * 1000) })),
  });

  assert.deepEqual((await admin.fetchTopicOffsets(topic)).sort(byPartition), [
    { partition: 0, offset: '5', high: '5', low: '0' },
    { partition: 1, offset: '2', high: '2', low: '0' },
    { partition: 2, offset: '0', high: '0', low: '0' },
  ]);

  // The first offset whose timestamp is >= the one asked for; none → kafkajs
  // substitutes the high watermark.
  const at = async ts => (await admin.fetchTopicOffsetsByTimestamp(topic, ts)).sort(byPartition).map(o => o.offset);
  assert.deepEqual(await at(t0 - 1), ['0', '0', '0']);
  assert.deepEqual(await at(t0), ['0', '0', '0']);
  assert.deepEqual(await at(t0 + 1), ['1', '0', '0']);
  assert.deepEqual(await at(t0 + 1000), ['1', '1', '0']);
  assert.deepEqual(await at(t0 + 2500), ['3', '2', '0']);
  assert.deepEqual(await at(t0 + 4000), ['4', '2', '0']);
  assert.deepEqual(await at(t0 + 4001), ['5', '2', '0']);
});
