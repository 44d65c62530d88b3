// Seed 003's consumer.ts as written; changed only: the broker address, the
// topic and group names come from the environment (KAFKA_BROKER, TOPIC,
// GROUP_ID), and the marked lines at the end let the test stop it.
// consumer.ts
import { Kafka, EachMessagePayload } from 'kafkajs';

// Create Kafka client
const kafka = new Kafka({
  clientId: 'example-consumer',
  brokers: [process.env.KAFKA_BROKER ?? 'localhost:9092'], // Change to your Kafka broker address
});

// Create consumer instance
const consumer = kafka.consumer({ groupId: process.env.GROUP_ID ?? 'test-group' });

async function runConsumer() {
  await consumer.connect();
  console.log('Consumer connected');

  // Subscribe to topic
  await consumer.subscribe({ topic: process.env.TOPIC ?? 'test-topic', fromBeginning: true });

  // Process messages
  await consumer.run({
    eachMessage: async ({ topic, partition, message }: EachMessagePayload) => {
      console.log({
        topic,
        partition,
        key: message.key?.toString(),
        value: message.value?.toString(),
        offset: message.offset,
      });
    },
  });
}

runConsumer().catch(console.error);

// --- added for the compatibility suite: stop cleanly when the test is done
process.once('SIGTERM', () => { consumer.disconnect().finally(() => process.exit(0)); });
