// Seed 002's consumer.js as written; changed only: the broker address and
// the topic name come from the environment (KAFKA_BROKER, TOPIC), and the
// marked lines at the end let the test stop it (SIGTERM → leave the group).
import { Kafka } from "kafkajs";

const group = process.argv[2];
const kafka = new Kafka({
    clientId: "my-app",
    brokers: [process.env.KAFKA_BROKER ?? "localhost:9092"]
});

const consumer = kafka.consumer({ groupId: group });

const consumeMessage = async () => {
    await consumer.connect();
    await consumer.subscribe({ topic: process.env.TOPIC ?? "test-group-1", fromBeginning: true });
    
    await consumer.run({
        eachMessage: async ({ topic, partition, message }) => {
            console.log(
                `${group}: [${topic}] PART:${partition}:`,
                message.value.toString()
            );
        }
    });
};

consumeMessage().catch(console.error);

// --- added for the compatibility suite: stop cleanly when the test is done
process.once("SIGTERM", () => { consumer.disconnect().finally(() => process.exit(0)); });
