package vltava.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Helpers shared by the scenarios. */
final class Kit {
  private Kit() {}

  /** A topic or group name unique to this run. */
  static String name(String prefix) {
    return "java-" + prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  static Admin admin() {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, Broker.bootstrap());
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
    return Admin.create(p);
  }

  /** Only what every producer needs: the defaults are what is tested. */
  static Properties producerDefaults() {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Broker.bootstrap());
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    return p;
  }

  /** A producer that needs no InitProducerId: idempotence off, acks=all. */
  static KafkaProducer<String, String> plainProducer() {
    Properties p = producerDefaults();
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 1);
    return new KafkaProducer<>(p);
  }

  static Properties consumerProps(String group) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Broker.bootstrap());
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 200);
    if (group != null) p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    return p;
  }

  /** Creates a topic and waits until describeTopics serves every partition with a leader. */
  static void createTopic(Admin admin, String topic, int partitions, Map<String, String> configs) throws Exception {
    NewTopic nt = new NewTopic(topic, partitions, (short) 1);
    if (configs != null) nt.configs(configs);
    admin.createTopics(List.of(nt)).all().get(30, TimeUnit.SECONDS);
    waitPartitions(admin, topic, partitions);
  }

  static TopicDescription waitPartitions(Admin admin, String topic, int partitions) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    Exception last = null;
    while (true) {
      try {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic);
        if (d.partitions().size() == partitions && d.partitions().stream().allMatch(p -> p.leader() != null)) {
          return d;
        }
      } catch (Exception e) {
        last = e;
      }
      if (System.nanoTime() > deadline) {
        fail("topic " + topic + ": " + partitions + " partitions with leaders not served within 30 s (" + last + ")");
      }
      TimeUnit.MILLISECONDS.sleep(100);
    }
  }

  /** Polls cond every 50 ms until it holds; fails with what.get() after timeout. */
  static void waitUntil(Duration timeout, BooleanSupplier cond, Supplier<String> what) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > deadline) fail("not within " + timeout + ": " + what.get());
      TimeUnit.MILLISECONDS.sleep(50);
    }
  }

  /** A record as the scenarios compare it. */
  record Rec(int partition, long offset, String key, String value, String headers) {
    static Rec of(ConsumerRecord<String, String> r) {
      List<String> hs = new ArrayList<>();
      for (Header h : r.headers()) hs.add(h.key() + "=" + new String(h.value(), StandardCharsets.UTF_8));
      return new Rec(r.partition(), r.offset(), r.key(), r.value(), String.join(";", hs));
    }
  }

  static Map<Integer, List<Rec>> byPartition(List<Rec> rs) {
    Map<Integer, List<Rec>> m = new TreeMap<>();
    for (Rec r : rs) m.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
    return m;
  }

  /** Exact, ordered per partition. */
  static void assertSameByPartition(List<Rec> want, List<Rec> got) {
    assertEquals(byPartition(want), byPartition(got));
    assertEquals(want.size(), got.size(), "record count");
  }
}
