package vltava.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.clients.producer.internals.TransactionManager;
import org.apache.kafka.common.utils.ProducerIdAndEpoch;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import vltava.compat.Kit.Rec;

@ExtendWith(Broker.LogOnFailure.class)
class ProducerTest {

  /** Reads n records from the start of every partition, without a group. */
  static List<Rec> readFromStart(String topic, int partitions, int n) throws InterruptedException {
    List<Rec> got = new ArrayList<>();
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(Kit.consumerProps(null))) {
      List<TopicPartition> tps = IntStream.range(0, partitions)
          .mapToObj(p -> new TopicPartition(topic, p)).collect(Collectors.toList());
      c.assign(tps);
      c.seekToBeginning(tps);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (got.size() < n) {
        if (System.nanoTime() > deadline) fail("read " + got.size() + " of " + n + " records within 30 s");
        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) got.add(Rec.of(r));
      }
    }
    return got;
  }

  static Map<Integer, Long> endOffsets(String topic, int partitions) {
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(Kit.consumerProps(null))) {
      Map<Integer, Long> out = new HashMap<>();
      c.endOffsets(IntStream.range(0, partitions).mapToObj(p -> new TopicPartition(topic, p)).collect(Collectors.toList()),
          Duration.ofSeconds(30)).forEach((tp, o) -> out.put(tp.partition(), o));
      return out;
    }
  }

  /** The producer's id and epoch, null when it has no idempotent/transactional state. */
  static ProducerIdAndEpoch producerIdAndEpoch(KafkaProducer<?, ?> prod) throws ReflectiveOperationException {
    Field f = KafkaProducer.class.getDeclaredField("transactionManager");
    f.setAccessible(true);
    Object tm = f.get(prod);
    if (tm == null) return null;
    Method m = TransactionManager.class.getDeclaredMethod("producerIdAndEpoch");
    m.setAccessible(true);
    return (ProducerIdAndEpoch) m.invoke(tm);
  }

  /**
   * The producer with DEFAULT settings (idempotent, acks=all: needs
   * InitProducerId) sends 200 keyed records with headers to 6 partitions;
   * each lands on murmur2(key) % 6 at the offset its RecordMetadata reports;
   * a consumer reads exactly them back.
   */
  @Test
  @Tag("idempotence")
  void defaultProducerIsIdempotentAndExact() throws Exception {
    String topic = Kit.name("idem");
    try (Admin admin = Kit.admin()) {
      Kit.createTopic(admin, topic, 6, null);
    }
    List<Rec> want = new ArrayList<>();
    Map<Integer, Long> next = new HashMap<>();
    try (KafkaProducer<String, String> prod = new KafkaProducer<>(Kit.producerDefaults())) {
      List<Future<RecordMetadata>> fs = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        ProducerRecord<String, String> r = new ProducerRecord<>(topic, String.format("key-%02d", i % 40), String.format("value-%03d", i));
        r.headers().add(new RecordHeader("seq", String.valueOf(i).getBytes(StandardCharsets.UTF_8)));
        r.headers().add(new RecordHeader("client", "java".getBytes(StandardCharsets.UTF_8)));
        fs.add(prod.send(r));
      }
      prod.flush();
      // The producer silently turns idempotence off when the broker lacks
      // InitProducerId and enable.idempotence was not set explicitly: check
      // that it really wrote as one idempotent producer session.
      ProducerIdAndEpoch pid = producerIdAndEpoch(prod);
      assertTrue(pid != null && pid.producerId >= 0 && pid.epoch == 0,
          "default producer is idempotent (producer id and epoch: " + pid + ")");
      for (int i = 0; i < 200; i++) {
        RecordMetadata md = fs.get(i).get(30, TimeUnit.SECONDS);
        String key = String.format("key-%02d", i % 40);
        int p = Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % 6;
        long off = next.merge(p, 1L, Long::sum) - 1;
        assertEquals(p, md.partition(), "partition of record " + i);
        assertEquals(off, md.offset(), "offset of record " + i);
        want.add(new Rec(p, off, key, String.format("value-%03d", i), "seq=" + i + ";client=java"));
      }
    }
    Kit.assertSameByPartition(want, readFromStart(topic, 6, want.size()));
    Map<Integer, Long> ends = endOffsets(topic, 6);
    for (int p = 0; p < 6; p++) assertEquals(next.getOrDefault(p, 0L), ends.get(p), "end offset of partition " + p);
  }

  /** 20 records per compression codec from a non-idempotent producer, read back exactly. */
  @ParameterizedTest(name = "compression.type={0}")
  @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
  void plainProducerCompression(String codec) throws Exception {
    String topic = Kit.name("codec-" + codec);
    try (Admin admin = Kit.admin()) {
      Kit.createTopic(admin, topic, 1, null);
    }
    Properties p = Kit.producerDefaults();
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
    p.put(ProducerConfig.LINGER_MS_CONFIG, 50);
    List<Rec> want = new ArrayList<>();
    try (KafkaProducer<String, String> prod = new KafkaProducer<>(p)) {
      List<Future<RecordMetadata>> fs = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        String v = codec + "-" + i + "-" + "abcdefgh".repeat(16);
        ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, codec, v);
        r.headers().add(new RecordHeader("codec", codec.getBytes(StandardCharsets.UTF_8)));
        fs.add(prod.send(r));
        want.add(new Rec(0, i, codec, v, "codec=" + codec));
      }
      for (int i = 0; i < 20; i++) assertEquals(i, fs.get(i).get(30, TimeUnit.SECONDS).offset());
    }
    assertEquals(want, readFromStart(topic, 1, want.size()));
  }
}
