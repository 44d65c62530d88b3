// Topic configs and DeleteRecords through kafkajs's admin client:
// alterConfigs / describeConfigs round trips with sources, INVALID_CONFIG for
// bad values, and deleteTopicRecords moving the earliest offset.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startBroker, createTopic, scenario, uniq, client, readPartition, failed, MIN_INSYNC_REPLICAS } from '../lib/harness.mjs';

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

const DYNAMIC_TOPIC_CONFIG = 1;
const DEFAULT_CONFIG = 5;

async function describe(topic, configNames) {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames }],
  });
  assert.equal(resources.length, 1);
  assert.equal(resources[0].errorCode, 0);
  return Object.fromEntries(resources[0].configEntries.map(c => [c.configName, [c.configValue, c.configSource]]));
}

scenario('configs: alterConfigs then describeConfigs reports the new values as topic overrides', 60_000, async () => {
  const topic = uniq('configs-alter');
  await createTopic(admin, kafka, topic, 1);
  const names = ['retention.ms', 'cleanup.policy', 'min.cleanable.dirty.ratio', 'delete.retention.ms', 'max.compaction.lag.ms'];
  assert.deepEqual(await describe(topic, names), {
    'retention.ms': ['604800000', DEFAULT_CONFIG],
    'cleanup.policy': ['delete', DEFAULT_CONFIG],
    'min.cleanable.dirty.ratio': ['0.5', DEFAULT_CONFIG],
    'delete.retention.ms': ['86400000', DEFAULT_CONFIG],
    'max.compaction.lag.ms': ['9223372036854775807', DEFAULT_CONFIG],
  });
  await admin.alterConfigs({
    validateOnly: false,
    resources: [
      {
        type: ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: [
          { name: 'retention.ms', value: '60000' },
          { name: 'cleanup.policy', value: 'compact,delete' },
          { name: 'min.cleanable.dirty.ratio', value: '0.1' },
        ],
      },
    ],
  });
  assert.deepEqual(await describe(topic, names), {
    'retention.ms': ['60000', DYNAMIC_TOPIC_CONFIG],
    'cleanup.policy': ['compact,delete', DYNAMIC_TOPIC_CONFIG],
    'min.cleanable.dirty.ratio': ['0.1', DYNAMIC_TOPIC_CONFIG],
    'delete.retention.ms': ['86400000', DEFAULT_CONFIG],
    'max.compaction.lag.ms': ['9223372036854775807', DEFAULT_CONFIG],
  });
  // AlterConfigs replaces the whole set: what is not given returns to the default.
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '120000' }] }],
  });
  assert.deepEqual(await describe(topic, ['retention.ms', 'cleanup.policy']), {
    'retention.ms': ['120000', DYNAMIC_TOPIC_CONFIG],
    'cleanup.policy': ['delete', DEFAULT_CONFIG],
  });
});

scenario('configs: invalid values are refused with INVALID_CONFIG and change nothing', 60_000, async () => {
  const topic = uniq('configs-invalid');
  await createTopic(admin, kafka, topic, 1);
  for (const [name, value] of [
    ['retention.ms', 'soon'],
    ['retention.ms', '-2'],
    ['cleanup.policy', 'forever'],
    ['min.cleanable.dirty.ratio', '1.5'],
    ['compression.type', 'brotli'],
    ['no.such.config', '1'],
  ]) {
    await assert.rejects(
      admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name, value }] }],
      }),
      e => e.type === 'INVALID_CONFIG',
      `${name}=${value}`,
    );
  }
  assert.deepEqual(await describe(topic, ['retention.ms']), { 'retention.ms': ['604800000', DEFAULT_CONFIG] });
});

scenario('configs: deleteTopicRecords moves the earliest offset; reads start there', 60_000, async () => {
  const topic = uniq('configs-delete-records');
  await createTopic(admin, kafka, topic, 1);
  await producer.send({
    topic,
    messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: 0 })),
  });
  // kafkajs's deleteTopicRecords looks leaders up in metadata it already has.
  await admin.fetchTopicOffsets(topic);
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '7' }] });
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.deepEqual(
    offsets.map(o => [o.partition, o.low, o.high]),
    [[0, '7', '10']],
  );
  const got = await readPartition(kafka, topic, 0, { fromOffset: 7 });
  assert.deepEqual(
    got.map(m => [m.offset, m.key.toString(), m.value.toString()]),
    [[7, 'k7', 'v7'], [8, 'k8', 'v8'], [9, 'k9', 'v9']],
  );
});

// Kafka 4.4's topic configs (LogConfig) with their defaults; a broker may
// report more (Vltava also reports the Kafka 3.x message.downconversion.enable).
const KAFKA_TOPIC_CONFIG_DEFAULTS = {
  'cleanup.policy': 'delete',
  'compression.gzip.level': '-1',
  'compression.lz4.level': '9',
  'compression.type': 'producer',
  'compression.zstd.level': '3',
  'delete.retention.ms': '86400000',
  'errors.deadletterqueue.group.enable': 'false',
  'file.delete.delay.ms': '60000',
  'flush.messages': '9223372036854775807',
  'flush.ms': '9223372036854775807',
  'follower.replication.throttled.replicas': '',
  'index.interval.bytes': '4096',
  'leader.replication.throttled.replicas': '',
  'local.retention.bytes': '-2',
  'local.retention.ms': '-2',
  'max.compaction.lag.ms': '9223372036854775807',
  'max.decompressed.message.bytes': '2147483639',
  'max.message.bytes': '1048588',
  'message.timestamp.after.max.ms': '3600000',
  'message.timestamp.before.max.ms': '9223372036854775807',
  'message.timestamp.type': 'CreateTime',
  'min.cleanable.dirty.ratio': '0.5',
  'min.compaction.lag.ms': '0',
  'min.insync.replicas': '1',
  'preallocate': 'false',
  'remote.copy.lag.bytes': '-1',
  'remote.copy.lag.ms': '0',
  'remote.log.copy.disable': 'false',
  'remote.log.delete.on.disable': 'false',
  'remote.storage.enable': 'false',
  'retention.bytes': '-1',
  'retention.ms': '604800000',
  'segment.bytes': '1073741824',
  'segment.index.bytes': '10485760',
  'segment.jitter.ms': '0',
  'segment.ms': '604800000',
  'unclean.leader.election.enable': 'false',
};

scenario('configs: a fresh topic reports every Kafka topic config with its default, and createTopics takes each name', 60_000, async () => {
  const topic = uniq('configs-all');
  await createTopic(admin, kafka, topic, 1);
  const described = await describe(topic, Object.keys(KAFKA_TOPIC_CONFIG_DEFAULTS));
  // kafkajs reports an empty list value as null or ''.
  const values = Object.fromEntries(Object.entries(described).map(([k, [v]]) => [k, v ?? '']));
  // The brokers' own min.insync.replicas (cluster.sh sets 2).
  assert.deepEqual(values, { ...KAFKA_TOPIC_CONFIG_DEFAULTS, 'min.insync.replicas': MIN_INSYNC_REPLICAS });
  // Kafka 4.x's storage format writes min.insync.replicas as a cluster
  // default (DYNAMIC_DEFAULT_BROKER_CONFIG, 3), a server.properties value is
  // STATIC_BROKER_CONFIG (4); everything else is a default.
  const DYNAMIC_DEFAULT_BROKER_CONFIG = 3;
  const STATIC_BROKER_CONFIG = 4;
  for (const [k, [, source]] of Object.entries(described)) {
    const allowed = k === 'min.insync.replicas' ? [DEFAULT_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG] : [DEFAULT_CONFIG];
    assert.ok(allowed.includes(source), `${k}: source ${source}`);
  }

  const named = uniq('configs-named');
  const configEntries = [
    ['segment.jitter.ms', '100'], ['flush.messages', '1'], ['flush.ms', '1000'], ['preallocate', 'true'],
    ['file.delete.delay.ms', '1000'], ['index.interval.bytes', '8192'], ['unclean.leader.election.enable', 'true'],
    ['local.retention.ms', '-1'], ['local.retention.bytes', '-1'], ['segment.index.bytes', '4096'],
    ['compression.zstd.level', '10'], ['max.compaction.lag.ms', '600000'],
    ['follower.replication.throttled.replicas', '*'], ['leader.replication.throttled.replicas', '*'],
  ].map(([name, value]) => ({ name, value }));
  assert.equal(await admin.createTopics({ topics: [{ topic: named, numPartitions: 1, configEntries }], waitForLeaders: true }), true);
  const after = await describe(named, configEntries.map(e => e.name));
  for (const { name, value } of configEntries) {
    assert.deepEqual(after[name], [value, DYNAMIC_TOPIC_CONFIG], name);
  }
});
