package vltava.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import vltava.compat.Kit.Rec;

@ExtendWith(Broker.LogOnFailure.class)
class ConsumerGroupTest {

  static List<Rec> produce(KafkaProducer<String, String> prod, String topic, int from, int to) throws Exception {
    List<Rec> want = new ArrayList<>();
    for (int i = from; i < to; i++) {
      int p = i % 4;
      String k = String.format("k%03d", i), v = String.format("v%03d", i);
      long off = prod.send(new ProducerRecord<>(topic, p, k, v)).get(30, TimeUnit.SECONDS).offset();
      assertEquals(i / 4, off, "offset of record " + i);
      want.add(new Rec(p, off, k, v, ""));
    }
    return want;
  }

  static Map<Integer, Long> committed(Admin admin, String group) throws Exception {
    Map<Integer, Long> out = new TreeMap<>();
    Map<TopicPartition, OffsetAndMetadata> m =
        admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
    m.forEach((tp, o) -> out.put(tp.partition(), o == null ? null : o.offset()));
    return out;
  }

  /**
   * Two consumers with group.protocol=classic (range assignor, eager) or
   * consumer (KIP-848, broker-side assignment) split a 4-partition topic
   * 2/2; 200 records are each consumed exactly once, in order, by the owner
   * of their partition; commitSync'd offsets are 50 per partition; after
   * both leave, 40 more records go to a new member, which resumes exactly
   * after the commits.
   */
  @ParameterizedTest(name = "group.protocol={0}")
  @ValueSource(strings = {"classic", "consumer"})
  void twoMembersSplitPartitionsAndResume(String protocol) throws Exception {
    String topic = Kit.name("group-" + protocol), group = Kit.name("group-" + protocol);
    try (Admin admin = Kit.admin(); KafkaProducer<String, String> prod = Kit.plainProducer()) {
      Kit.createTopic(admin, topic, 4, null);
      Member a = new Member("member-a", group, topic, protocol);
      Member b = new Member("member-b", group, topic, protocol);
      try {
        Kit.waitUntil(Duration.ofSeconds(60), () -> {
          List<Integer> pa = a.assigned(), pb = b.assigned();
          Set<Integer> all = new HashSet<>(pa);
          all.addAll(pb);
          return pa.size() == 2 && pb.size() == 2 && all.size() == 4;
        }, () -> "no 2/2 split: a=" + a.assigned() + " (" + a.error() + ") b=" + b.assigned() + " (" + b.error() + ")");

        List<Rec> want = produce(prod, topic, 0, 200);
        Kit.waitUntil(Duration.ofSeconds(30), () -> a.got().size() + b.got().size() >= want.size(),
            () -> "consumed a=" + a.got().size() + " b=" + b.got().size() + " of " + want.size()
                + " (" + a.error() + " / " + b.error() + ")");
        Kit.waitUntil(Duration.ofSeconds(30), () -> {
          try {
            return committed(admin, group).equals(Map.of(0, 50L, 1, 50L, 2, 50L, 3, 50L));
          } catch (Exception e) {
            return false;
          }
        }, () -> {
          try {
            return "committed offsets " + committed(admin, group) + ", want 50 on each partition";
          } catch (Exception e) {
            return e.toString();
          }
        });
        assertNull(a.error(), "member a");
        assertNull(b.error(), "member b");
        List<Integer> pa = a.assigned(), pb = b.assigned();
        List<Rec> ga = a.got(), gb = b.got();
        assertFalse(ga.isEmpty() || gb.isEmpty(), "both members consumed");
        for (Rec r : ga) assertTrue(pa.contains(r.partition()), "member a got " + r + " but owns " + pa);
        for (Rec r : gb) assertTrue(pb.contains(r.partition()), "member b got " + r + " but owns " + pb);
        List<Rec> both = new ArrayList<>(ga);
        both.addAll(gb);
        Kit.assertSameByPartition(want, both);
      } finally {
        a.close();
        b.close();
      }
      assertNull(a.error(), "member a closing");
      assertNull(b.error(), "member b closing");

      List<Rec> more = produce(prod, topic, 200, 240);
      Member c = new Member("member-c", group, topic, protocol);
      try {
        Kit.waitUntil(Duration.ofSeconds(60), () -> c.got().size() >= more.size(),
            () -> "member c consumed " + c.got().size() + " of " + more.size() + " (" + c.error() + ")");
        assertNull(c.error(), "member c");
        Kit.assertSameByPartition(more, c.got());
      } finally {
        c.close();
      }
      assertEquals(Map.of(0, 60L, 1, 60L, 2, 60L, 3, 60L), committed(admin, group));
    }
  }
}
