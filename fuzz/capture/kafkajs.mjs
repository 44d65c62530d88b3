// Drives kafkajs through the capturing proxy (capture.sh): admin, idempotent
// and transactional producers with each codec kafkajs has built in, a
// consumer group that commits. Run from tests/compat (its node_modules).
import { Kafka, CompressionTypes, logLevel } from 'kafkajs';

const T = `kjs-${Date.now()}`;
const kafka = new Kafka({ clientId: 'kafkajs-seed', brokers: [process.argv[2]], logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic: T, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '600000' }] }] });
await admin.fetchTopicMetadata({ topics: [T] });
await admin.describeCluster();
await admin.describeConfigs({ resources: [{ type: 2, name: T }], includeSynonyms: true });
await admin.alterConfigs({ resources: [{ type: 2, name: T, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] }] });
await admin.createPartitions({ topicPartitions: [{ topic: T, count: 3 }] });

const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
await producer.send({ topic: T, messages: [{ key: 'a', value: 'one', headers: { h: 'x' } }, { value: 'two' }] });
await producer.send({ topic: T, compression: CompressionTypes.GZIP, messages: [{ key: 'b', value: 'three' }] });
await producer.disconnect();

const tx = kafka.producer({ transactionalId: 'kjs-tx', idempotent: true, maxInFlightRequests: 1 });
await tx.connect();
const t1 = await tx.transaction();
await t1.send({ topic: T, messages: [{ key: 'c', value: 'in-tx' }] });
await t1.sendOffsets({ consumerGroupId: 'kjs-g', topics: [{ topic: T, partitions: [{ partition: 0, offset: '1' }] }] });
await t1.commit();
const t2 = await tx.transaction();
await t2.send({ topic: T, messages: [{ key: 'd', value: 'aborted' }] });
await t2.abort();
await tx.disconnect();

const consumer = kafka.consumer({ groupId: 'kjs-g', sessionTimeout: 10000, heartbeatInterval: 500 });
await consumer.connect();
await consumer.subscribe({ topics: [T], fromBeginning: true });
let seen = 0;
await new Promise((resolve) => {
  setTimeout(resolve, 15000);
  consumer.run({ eachMessage: async () => { seen += 1; if (seen >= 4) resolve(); } });
});
await consumer.commitOffsets([{ topic: T, partition: 1, offset: '1' }]);
await consumer.disconnect();

await admin.listGroups();
await admin.describeGroups(['kjs-g']);
await admin.fetchOffsets({ groupId: 'kjs-g', topics: [T] });
await admin.fetchTopicOffsets(T);
await admin.fetchTopicOffsetsByTimestamp(T, Date.now() - 60000);
await admin.deleteTopicRecords({ topic: T, partitions: [{ partition: 0, offset: '1' }] });
await admin.resetOffsets({ groupId: 'kjs-g', topic: T, earliest: true });
await admin.deleteGroups(['kjs-g']);
await admin.deleteTopics({ topics: [T] });
await admin.disconnect();
console.log(`kafkajs seed run done, consumed ${seen}`);
