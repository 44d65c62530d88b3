// Drives Apache Kafka's Java client through the capturing proxy (capture.sh):
// admin, an idempotent producer with each codec, a transactional producer
// (commit and abort, offsets in the transaction), classic and KIP-848
// consumer groups that commit.
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.*;

public class JavaSeed {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = "java-" + System.currentTimeMillis();
        Properties base = new Properties();
        base.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(base)) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1).configs(Map.of("retention.ms", "600000")))).all().get();
            admin.describeTopics(List.of(topic)).allTopicNames().get();
            admin.describeCluster().nodes().get();
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.describeConfigs(List.of(res)).all().get();
            admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "900000"), AlterConfigOp.OpType.SET)))).all().get();
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all().get();
        }
        Properties p = new Properties();
        p.putAll(base);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            Properties pc = new Properties();
            pc.putAll(p);
            pc.put("compression.type", codec);
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pc)) {
                producer.send(new ProducerRecord<>(topic, 0, "k-" + codec, "v-" + codec)).get();
                producer.send(new ProducerRecord<>(topic, 1, null, "no key")).get();
            }
        }
        Properties pt = new Properties();
        pt.putAll(p);
        pt.put("transactional.id", topic + "-tx");
        try (KafkaProducer<String, String> tx = new KafkaProducer<>(pt)) {
            tx.initTransactions();
            tx.beginTransaction();
            tx.send(new ProducerRecord<>(topic, 0, "t", "committed"));
            tx.sendOffsetsToTransaction(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)), new ConsumerGroupMetadata(topic + "-g"));
            tx.commitTransaction();
            tx.beginTransaction();
            tx.send(new ProducerRecord<>(topic, 0, "t", "aborted"));
            tx.abortTransaction();
        }
        for (String protocol : List.of("classic", "consumer")) {
            Properties c = new Properties();
            c.putAll(base);
            c.put("group.id", topic + "-" + protocol);
            c.put("group.protocol", protocol);
            c.put("auto.offset.reset", "earliest");
            c.put("isolation.level", "read_committed");
            c.put("key.deserializer", StringDeserializer.class.getName());
            c.put("value.deserializer", StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
                consumer.subscribe(List.of(topic));
                int seen = 0;
                long deadline = System.currentTimeMillis() + 15000;
                while (seen < 11 && System.currentTimeMillis() < deadline) {
                    seen += consumer.poll(Duration.ofMillis(500)).count();
                }
                consumer.commitSync();
                System.out.println(protocol + " consumer saw " + seen);
            }
        }
        try (Admin admin = Admin.create(base)) {
            admin.listConsumerGroups().all().get();
            admin.describeConsumerGroups(List.of(topic + "-classic", topic + "-consumer")).all().get();
            admin.listConsumerGroupOffsets(topic + "-classic").partitionsToOffsetAndMetadata().get();
            admin.listOffsets(Map.of(new TopicPartition(topic, 0), OffsetSpec.latest(), new TopicPartition(topic, 1), OffsetSpec.forTimestamp(0))).all().get();
            admin.deleteRecords(Map.of(new TopicPartition(topic, 0), RecordsToDelete.beforeOffset(1))).all().get();
            admin.describeProducers(List.of(new TopicPartition(topic, 0))).all().get();
            admin.listTransactions().all().get();
            admin.describeTransactions(List.of(topic + "-tx")).all().get();
            admin.deleteConsumerGroupOffsets(topic + "-classic", Set.of(new TopicPartition(topic, 1))).all().get();
            admin.deleteConsumerGroups(List.of(topic + "-classic")).all().get();
            admin.deleteTopics(List.of(topic)).all().get();
        }
        System.out.println("java seed run done");
    }
}
