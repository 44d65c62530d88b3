// Seed 001 describes, but does not show, "the admin script" of a kafkajs
// producer/consumer setup: `node admin.js` creates the topics with their
// partitions, then the topics are listed and described. This is that script
// in the usual kafkajs form; the broker address, topic name and partition
// count come from the environment (KAFKA_BROKER, TOPIC, PARTITIONS).
import { Kafka } from "kafkajs";

const kafka = new Kafka({
  clientId: "my-app",
  brokers: [process.env.KAFKA_BROKER ?? "localhost:9092"],
});

const topic = process.env.TOPIC ?? "rider-updates";
const numPartitions = Number(process.env.PARTITIONS ?? 2);

async function init() {
  const admin = kafka.admin();
  console.log("Admin connecting...");
  await admin.connect();
  console.log("Admin Connection Success...");

  console.log(`Creating Topic [${topic}]`);
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions }],
  });
  console.log(`Topic Created Success [${topic}]: ${created}`);

  const topics = await admin.listTopics();
  console.log(`Topic listed: ${topics.includes(topic)}`);

  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  for (const t of metadata.topics) {
    const partitions = [...t.partitions].sort((a, b) => a.partitionId - b.partitionId);
    console.log(`Topic ${t.name}: ${partitions.length} partitions`);
    for (const p of partitions) {
      console.log(
        `  partition ${p.partitionId} leader ${p.leader} replicas [${p.replicas}] isr [${p.isr}]`
      );
    }
  }

  console.log("Disconnecting Admin..");
  await admin.disconnect();
}

init();
