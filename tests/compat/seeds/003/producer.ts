// Seed 003's producer.ts as written; changed only: the broker address and
// the topic name come from the environment (KAFKA_BROKER, TOPIC).
// producer.ts
import { Kafka } from 'kafkajs';

// Create Kafka client
const kafka = new Kafka({
  clientId: 'example-producer',
  brokers: [process.env.KAFKA_BROKER ?? 'localhost:9092'], // Change to your Kafka broker address
});

// Create producer instance
const producer = kafka.producer();

async function runProducer() {
  await producer.connect();
  console.log('Producer connected');

  // Send a message
  await producer.send({
    topic: process.env.TOPIC ?? 'test-topic',
    messages: [
      { key: 'key1', value: 'Hello Kafka from TypeScript!' },
    ],
  });

  console.log('Message sent');
  await producer.disconnect();
}

runProducer().catch(console.error);
