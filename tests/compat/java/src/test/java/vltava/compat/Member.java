package vltava.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import vltava.compat.Kit.Rec;

/**
 * A consumer-group member polled by its own thread: it records its
 * assignment (rebalance listener) and every record, and commits each
 * non-empty poll with commitSync (the offsets after the records it got).
 */
final class Member implements AutoCloseable {
  private final KafkaConsumer<String, String> consumer;
  private final Thread thread;
  private final TreeSet<Integer> assigned = new TreeSet<>();
  private final List<Rec> got = new ArrayList<>();
  private volatile boolean stopping;
  private volatile Throwable error;

  Member(String clientId, String group, String topic, String protocol) {
    Properties p = Kit.consumerProps(group);
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
    p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
    consumer = new KafkaConsumer<>(p);
    thread = new Thread(() -> run(topic), clientId);
    thread.setDaemon(true);
    thread.start();
  }

  private void run(String topic) {
    try {
      consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> ps) {
          synchronized (Member.this) {
            ps.forEach(tp -> assigned.remove(tp.partition()));
          }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> ps) {
          synchronized (Member.this) {
            ps.forEach(tp -> assigned.add(tp.partition()));
          }
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> ps) {
          onPartitionsRevoked(ps);
        }
      });
      while (!stopping) {
        ConsumerRecords<String, String> rs = consumer.poll(Duration.ofMillis(100));
        if (rs.isEmpty()) continue;
        Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
        synchronized (this) {
          for (ConsumerRecord<String, String> r : rs) {
            got.add(Rec.of(r));
            commit.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
          }
        }
        // exactly what was consumed (a bare commitSync() would also commit
        // the positions of partitions nothing was read from)
        consumer.commitSync(commit, Duration.ofSeconds(30));
      }
    } catch (WakeupException e) {
      // close() while polling
    } catch (Throwable t) {
      error = t;
    } finally {
      try {
        consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(30)));
      } catch (Throwable t) {
        if (error == null) error = t;
      }
    }
  }

  synchronized List<Integer> assigned() {
    return new ArrayList<>(assigned);
  }

  synchronized List<Rec> got() {
    return new ArrayList<>(got);
  }

  Throwable error() {
    return error;
  }

  /** Stops polling and closes the consumer (leaves the group). */
  @Override
  public void close() throws InterruptedException {
    stopping = true;
    consumer.wakeup();
    thread.join(TimeUnit.SECONDS.toMillis(45));
    if (thread.isAlive()) throw new IllegalStateException(thread.getName() + " did not stop within 45 s");
  }
}
