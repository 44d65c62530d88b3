// Seed 002's producer.js as written; changed only: the broker address and
// the topic name come from the environment (KAFKA_BROKER, TOPIC).
import { Kafka } from "kafkajs";
import readline from "readline";

const kafka = new Kafka({
    clientId: "my-app",
    brokers: [process.env.KAFKA_BROKER ?? "localhost:9092"]
});

const producer = kafka.producer();

const produceMessage = async () => {
    await producer.connect();
    console.log("Producer Connected");

    const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
    rl.setPrompt('> ');
    rl.prompt();
    
    rl.on('line', async function(line) {
        const [riderName, location] = line.split(' ');
        await producer.send({
            topic: process.env.TOPIC ?? 'test-group-1',
            messages: [{
                partition: location.toLowerCase() === 'south' ? 0 : 1,
                key: 'Location Updates',
                value: JSON.stringify({ name: riderName, location })
            }]
        });
    }).on('close', async () => {
        await producer.disconnect();
    });
};

produceMessage().catch(console.error);
