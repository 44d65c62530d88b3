package vltava.compat.failover;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.StringJoiner;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.FencedInstanceIdException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A transactional consume-transform-produce loop as a Kafka user writes it
 * with the plain Java client (Kafka's own examples/ExactlyOnceMessageProcessor):
 * read_committed consumer in a group, one transaction per poll with every
 * value v written as v + "!" to the same partition number of the output
 * topic and the consumed offsets sent with the consumer's group metadata;
 * on an abortable error abort and rewind to the committed offsets, on a
 * commit timeout retry the commit (KafkaProducer#commitTransaction's docs).
 * Run by tests/failover_clients.rs as a child process while it kills the
 * coordinators' broker.
 *
 * <p>stdout carries one JSON line per event, nothing else: {"event":"assigned"},
 * {"event":"committed","offsets":{"P":O,...}} (next offsets of the input, after
 * each committed transaction), {"event":"aborted","error":E},
 * {"event":"commit_retry","error":E}, {"event":"fatal","error":E} (exit 1),
 * {"event":"holding","offsets":...}, {"event":"stopped"} last.
 *
 * <p>Commands on stdin, one a line: {@code stop} (also stdin closing) ends the
 * loop between transactions; {@code hold} makes the next transaction wait,
 * once its records are sent and its offsets added, until {@code go}, so the
 * test can kill the coordinator with that transaction open (the only thing
 * here a Kafka user would not write).
 * Environment: BOOTSTRAP, INPUT, OUTPUT, GROUP_ID, TRANSACTIONAL_ID.
 */
public final class EosLoop {
  private EosLoop() {}

  /** How often a commit or an abort that timed out is tried again. */
  private static final int RETRIES = 5;

  public static void main(String[] args) throws Exception {
    String bootstrap = System.getenv("BOOTSTRAP");
    String input = System.getenv("INPUT");
    String output = System.getenv("OUTPUT");
    BlockingQueue<String> commands = new LinkedBlockingQueue<>();
    Thread stdin = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
        for (String line = r.readLine(); line != null; line = r.readLine()) commands.add(line.trim());
      } catch (Exception e) {
        // stdin gone: stop as well
      }
      commands.add("stop");
    });
    stdin.setDaemon(true);
    stdin.start();

    Properties c = new Properties();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    c.put(ConsumerConfig.GROUP_ID_CONFIG, System.getenv("GROUP_ID"));
    c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 50);
    c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, System.getenv("TRANSACTIONAL_ID"));
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());

    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c);
        KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      consumer.subscribe(List.of(input), new ConsumerRebalanceListener() {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {}

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
          emit("{\"event\":\"assigned\"}");
        }
      });
      producer.initTransactions();
      boolean stop = false;
      boolean hold = false;
      while (!stop) {
        for (String command = commands.poll(); command != null; command = commands.poll()) {
          stop |= command.equals("stop");
          hold |= command.equals("hold");
        }
        if (stop) break;
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
        if (records.isEmpty()) continue;
        try {
          producer.beginTransaction();
          Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
          for (ConsumerRecord<String, String> r : records) {
            producer.send(new ProducerRecord<>(output, r.partition(), r.key(), r.value() + "!"));
            next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
          }
          producer.sendOffsetsToTransaction(next, consumer.groupMetadata());
          StringJoiner offsets = new StringJoiner(",", "{", "}");
          next.forEach((tp, o) -> offsets.add("\"" + tp.partition() + "\":" + o.offset()));
          if (hold) {
            hold = false;
            emit("{\"event\":\"holding\",\"offsets\":" + offsets + "}");
            String go = commands.poll(120, TimeUnit.SECONDS);
            if (!"go".equals(go)) {
              emit("{\"event\":\"fatal\",\"error\":" + quote("held, then got " + go) + "}");
              System.exit(1);
            }
          }
          commit(producer);
          emit("{\"event\":\"committed\",\"offsets\":" + offsets + "}");
        } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException
            | UnsupportedVersionException | FencedInstanceIdException e) {
          // Not recoverable (Kafka's example shuts down): the test fails.
          emit("{\"event\":\"fatal\",\"error\":" + quote(e.toString()) + "}");
          System.exit(1);
        } catch (KafkaException e) {
          emit("{\"event\":\"aborted\",\"error\":" + quote(e.toString()) + "}");
          abort(producer);
          resetToLastCommittedPositions(consumer);
        }
      }
    }
    emit("{\"event\":\"stopped\"}");
  }

  /** commitTransaction, called again after a timeout as its docs allow. */
  private static void commit(KafkaProducer<String, String> producer) {
    for (int attempt = 1; ; attempt++) {
      try {
        producer.commitTransaction();
        return;
      } catch (TimeoutException e) {
        if (attempt == RETRIES) throw e;
        emit("{\"event\":\"commit_retry\",\"error\":" + quote(e.toString()) + "}");
      }
    }
  }

  /** abortTransaction, called again after a timeout as its docs allow. */
  private static void abort(KafkaProducer<String, String> producer) {
    for (int attempt = 1; ; attempt++) {
      try {
        producer.abortTransaction();
        return;
      } catch (TimeoutException e) {
        if (attempt == RETRIES) throw e;
      }
    }
  }

  /** As in Kafka's ExactlyOnceMessageProcessor: back to what the group committed. */
  private static void resetToLastCommittedPositions(KafkaConsumer<String, String> consumer) {
    Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(consumer.assignment());
    consumer.assignment().forEach(tp -> {
      OffsetAndMetadata o = committed.get(tp);
      if (o != null) {
        consumer.seek(tp, o.offset());
      } else {
        consumer.seekToBeginning(List.of(tp));
      }
    });
  }

  private static void emit(String line) {
    System.out.println(line);
    System.out.flush();
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      if (ch == '"' || ch == '\\') {
        b.append('\\').append(ch);
      } else if (ch < 0x20) {
        b.append(String.format("\\u%04x", (int) ch));
      } else {
        b.append(ch);
      }
    }
    return b.append('"').toString();
  }
}
