// A kafkajs consumer group member written as the seeds write one (a Kafka
// client, consumer({ groupId }), subscribe fromBeginning, run with
// eachMessage and kafkajs's default auto-commit after every batch), run by
// tests/failover_clients.rs as a child process while it kills the group's
// coordinator.
//
// stdout carries one JSON line per event, nothing else:
//   {"event":"joined","generation":G}
//   {"event":"consumed","partition":P,"offset":O,"value":V}   every message
//   {"event":"committed","offsets":{"P":O,...}}   every acknowledged OffsetCommit
//   {"event":"crash","error":E,"restart":R}     kafkajs restarting the consumer
//   {"event":"stopped"}                         last, after leaving the group
// It stops at a line on stdin or when stdin closes. kafkajs logs go to stderr.
// Environment: KAFKA_BROKERS (comma-separated), TOPIC, GROUP_ID.
import { Kafka, logLevel } from "kafkajs";
import readline from "node:readline";

const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");

const kafka = new Kafka({
  clientId: "failover-group",
  brokers: process.env.KAFKA_BROKERS.split(","),
  logLevel: logLevel.WARN,
  logCreator: () => ({ level, label, namespace, log }) =>
    process.stderr.write(`${new Date().toISOString()} ${label} [${namespace}] ${log.message} ${JSON.stringify(log)}\n`),
});

const topic = process.env.TOPIC;
const consumer = kafka.consumer({ groupId: process.env.GROUP_ID });

consumer.on(consumer.events.GROUP_JOIN, ({ payload }) =>
  emit({ event: "joined", generation: payload.groupGenerationId }));
consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => {
  const offsets = {};
  for (const t of payload.topics) {
    if (t.topic !== topic) continue;
    for (const p of t.partitions) offsets[p.partition] = Number(p.offset);
  }
  emit({ event: "committed", offsets });
});
consumer.on(consumer.events.CRASH, ({ payload }) =>
  emit({ event: "crash", error: String(payload.error), restart: payload.restart }));

await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ partition, message }) => {
    emit({ event: "consumed", partition, offset: Number(message.offset), value: message.value.toString() });
  },
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await consumer.disconnect();
  emit({ event: "stopped" });
  process.exit(0);
};
const input = readline.createInterface({ input: process.stdin });
input.on("line", stop);
input.on("close", stop);
