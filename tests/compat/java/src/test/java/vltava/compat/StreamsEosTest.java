package vltava.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Kafka Streams word count with processing.guarantee=exactly_once_v2 (needs
 * transactions: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
 * TxnOffsetCommit, EndTxn, read_committed fetches). Record caches are off,
 * so every word occurrence is one update: a read_committed consumer of the
 * output must see exactly 1, 2, ..., n for a word occurring n times.
 */
@ExtendWith(Broker.LogOnFailure.class)
@Tag("transactions")
class StreamsEosTest {
  static final List<String> LINES = List.of(
      "the quick brown fox", "jumps over the lazy dog", "The Dog barks",
      "a fox a dog a cat", "quick quick quick", "over and over and over");

  @Test
  void wordCountExactlyOnceV2() throws Exception {
    String input = Kit.name("wc-in"), output = Kit.name("wc-out"), app = Kit.name("wc-app");
    try (Admin admin = Kit.admin()) {
      Kit.createTopic(admin, input, 2, null);
      Kit.createTopic(admin, output, 2, null);
    }
    Map<String, Long> want = new TreeMap<>();
    for (String line : LINES) {
      for (String w : line.toLowerCase(Locale.ROOT).split(" ")) want.merge(w, 1L, Long::sum);
    }
    long totalWords = want.values().stream().mapToLong(Long::longValue).sum();
    try (KafkaProducer<String, String> prod = Kit.plainProducer()) {
      for (int i = 0; i < LINES.size(); i++) {
        prod.send(new ProducerRecord<>(input, "line-" + i, LINES.get(i))).get(30, TimeUnit.SECONDS);
      }
    }

    StreamsBuilder b = new StreamsBuilder();
    b.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
        .flatMapValues(v -> Arrays.asList(v.toLowerCase(Locale.ROOT).split(" ")))
        .groupBy((k, w) -> w)
        .count()
        .toStream()
        .to(output, Produced.with(Serdes.String(), Serdes.Long()));
    Path stateDir = Files.createTempDirectory("vltava-compat-streams-");
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, Broker.bootstrap());
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    AtomicReference<Throwable> streamsError = new AtomicReference<>();

    Map<String, List<Long>> seen = new TreeMap<>();
    int records = 0;
    // not try-with-resources: KafkaStreams.close() without a timeout can wait forever
    KafkaStreams streams = new KafkaStreams(b.build(), p);
    try {
      streams.setUncaughtExceptionHandler(e -> {
        streamsError.compareAndSet(null, e);
        return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
      });
      streams.start();

      Properties cp = Kit.consumerProps(null);
      cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
      cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
      try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp)) {
        List<TopicPartition> tps = List.of(new TopicPartition(output, 0), new TopicPartition(output, 1));
        c.assign(tps);
        c.seekToBeginning(tps);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (records < totalWords) {
          if (streamsError.get() != null) throw new AssertionError("streams failed", streamsError.get());
          if (System.nanoTime() > deadline) {
            fail("read " + records + " of " + totalWords + " committed updates within 60 s; streams state "
                + streams.state() + "; seen " + seen);
          }
          for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200))) {
            seen.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
            records++;
          }
        }
        // Nothing beyond: the committed end of the output is what was read.
        Map<TopicPartition, Long> ends = c.endOffsets(tps, Duration.ofSeconds(30));
        long pos = c.position(tps.get(0)) + c.position(tps.get(1));
        assertEquals(ends.get(tps.get(0)) + ends.get(tps.get(1)), pos, "read_committed position is the end");
      }
    } finally {
      if (streams.close(Duration.ofSeconds(20))) {
        streams.cleanUp();
      } else {
        System.err.println("StreamsEosTest: streams did not close within 20 s (state " + streams.state() + ")");
      }
    }
    Map<String, List<Long>> wantSeq = new LinkedHashMap<>();
    want.forEach((w, n) -> {
      List<Long> seq = new ArrayList<>();
      for (long i = 1; i <= n; i++) seq.add(i);
      wantSeq.put(w, seq);
    });
    assertEquals(wantSeq, seen);
    assertEquals(totalWords, records);
  }
}
