package vltava.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DeletedRecords;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import vltava.compat.Kit.Rec;

/** AdminClient: topics, partitions, configs, offsets, delete-records, consumer groups. */
@ExtendWith(Broker.LogOnFailure.class)
class AdminTest {
  private static final long T = 30;

  static Map<String, ConfigEntry> configs(Admin admin, String topic) throws Exception {
    ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
    Config c = admin.describeConfigs(List.of(r)).all().get(T, TimeUnit.SECONDS).get(r);
    return c.entries().stream().collect(Collectors.toMap(ConfigEntry::name, e -> e));
  }

  static void assertConfig(Map<String, ConfigEntry> cs, String name, String value, ConfigEntry.ConfigSource source) {
    ConfigEntry e = cs.get(name);
    assertTrue(e != null, name + " described");
    assertEquals(value + " " + source, e.value() + " " + e.source(), name);
  }

  static String listed(Admin admin, String topic, OffsetSpec spec) throws Exception {
    Map<TopicPartition, OffsetSpec> req = new TreeMap<>((x, y) -> Integer.compare(x.partition(), y.partition()));
    for (int p = 0; p < 5; p++) req.put(new TopicPartition(topic, p), spec);
    Map<TopicPartition, ListOffsetsResultInfo> res = admin.listOffsets(req).all().get(T, TimeUnit.SECONDS);
    List<String> out = new ArrayList<>();
    for (int p = 0; p < 5; p++) {
      ListOffsetsResultInfo i = res.get(new TopicPartition(topic, p));
      out.add(p + ":" + i.offset() + "@" + i.timestamp());
    }
    return String.join(" ", out);
  }

  static Set<Integer> assignedPartitions(MemberDescription m, String topic) {
    return m.assignment().topicPartitions().stream()
        .filter(tp -> tp.topic().equals(topic)).map(TopicPartition::partition).collect(Collectors.toSet());
  }

  @Test
  void topicsConfigsOffsetsRecordsGroups() throws Exception {
    String topic = Kit.name("admin"), other = Kit.name("admin-other");
    try (Admin admin = Kit.admin()) {
      // --- createTopics / describeTopics / listTopics ------------------------
      NewTopic nt = new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete"));
      CreateTopicsResult cr = admin.createTopics(List.of(nt, new NewTopic(other, 1, (short) 1)));
      cr.all().get(T, TimeUnit.SECONDS);
      assertEquals(3, cr.numPartitions(topic).get());
      assertEquals(1, cr.replicationFactor(topic).get());
      TopicDescription d = Kit.waitPartitions(admin, topic, 3);
      Kit.waitPartitions(admin, other, 1);
      assertEquals(topic, d.name());
      assertEquals(List.of(0, 1, 2), d.partitions().stream().map(TopicPartitionInfo::partition).collect(Collectors.toList()));
      for (TopicPartitionInfo p : d.partitions()) {
        assertEquals(List.of(p.leader()), p.replicas(), "replicas of partition " + p.partition());
        assertEquals(p.replicas(), p.isr(), "isr of partition " + p.partition());
      }
      ExecutionException again = assertThrows(ExecutionException.class,
          () -> admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(T, TimeUnit.SECONDS));
      assertInstanceOf(TopicExistsException.class, again.getCause());
      Set<String> names = admin.listTopics().names().get(T, TimeUnit.SECONDS);
      assertTrue(names.contains(topic) && names.contains(other), "listTopics has both: " + names);

      // --- createPartitions ---------------------------------------------------
      admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get(T, TimeUnit.SECONDS);
      Kit.waitPartitions(admin, topic, 5);
      ExecutionException shrink = assertThrows(ExecutionException.class,
          () -> admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all().get(T, TimeUnit.SECONDS));
      assertInstanceOf(InvalidPartitionsException.class, shrink.getCause());

      // --- describeConfigs / incrementalAlterConfigs -------------------------
      Map<String, ConfigEntry> cs = configs(admin, topic);
      assertConfig(cs, "retention.ms", "3600000", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
      assertConfig(cs, "cleanup.policy", "delete", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
      assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cs.get("max.message.bytes").source());
      ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
      Collection<AlterConfigOp> ops = List.of(
          new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
          new AlterConfigOp(new ConfigEntry("max.message.bytes", "65536"), AlterConfigOp.OpType.SET),
          new AlterConfigOp(new ConfigEntry("cleanup.policy", ""), AlterConfigOp.OpType.DELETE));
      admin.incrementalAlterConfigs(Map.of(res, ops)).all().get(T, TimeUnit.SECONDS);
      cs = configs(admin, topic);
      assertConfig(cs, "retention.ms", "7200000", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
      assertConfig(cs, "max.message.bytes", "65536", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
      assertEquals("delete", cs.get("cleanup.policy").value());
      assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cs.get("cleanup.policy").source());

      // --- listOffsets ----------------------------------------------------------
      // partition 0: 10 records at ts0+0s..9s, partition 1: 5 at ts0+0s..4s, 2-4 empty
      long ts0 = (System.currentTimeMillis() - 3_600_000L) / 1000 * 1000;
      try (KafkaProducer<String, String> prod = Kit.plainProducer()) {
        for (int p = 0; p < 2; p++) {
          for (int i = 0; i < (p == 0 ? 10 : 5); i++) {
            long off = prod.send(new ProducerRecord<>(topic, p, ts0 + i * 1000L, "p" + p + "-" + i, "v" + i))
                .get(T, TimeUnit.SECONDS).offset();
            assertEquals(i, off);
          }
        }
      }
      assertEquals("0:0@-1 1:0@-1 2:0@-1 3:0@-1 4:0@-1", listed(admin, topic, OffsetSpec.earliest()));
      assertEquals("0:10@-1 1:5@-1 2:0@-1 3:0@-1 4:0@-1", listed(admin, topic, OffsetSpec.latest()));
      long at4 = ts0 + 4000;
      assertEquals("0:4@" + at4 + " 1:4@" + at4 + " 2:-1@-1 3:-1@-1 4:-1@-1",
          listed(admin, topic, OffsetSpec.forTimestamp(ts0 + 3500)));
      assertEquals("0:0@" + ts0 + " 1:0@" + ts0 + " 2:-1@-1 3:-1@-1 4:-1@-1",
          listed(admin, topic, OffsetSpec.forTimestamp(ts0)));
      assertEquals("0:-1@-1 1:-1@-1 2:-1@-1 3:-1@-1 4:-1@-1",
          listed(admin, topic, OffsetSpec.forTimestamp(ts0 + 20_000)));
      assertEquals("0:9@" + (ts0 + 9000) + " 1:4@" + at4 + " 2:-1@-1 3:-1@-1 4:-1@-1",
          listed(admin, topic, OffsetSpec.maxTimestamp()));

      // --- deleteRecords ----------------------------------------------------------
      Map<TopicPartition, DeletedRecords> dr = admin.deleteRecords(Map.of(
          new TopicPartition(topic, 0), RecordsToDelete.beforeOffset(3),
          new TopicPartition(topic, 1), RecordsToDelete.beforeOffset(5))).lowWatermarks().entrySet().stream()
          .collect(Collectors.toMap(Map.Entry::getKey, e -> {
            try {
              return e.getValue().get(T, TimeUnit.SECONDS);
            } catch (Exception ex) {
              throw new AssertionError("deleteRecords " + e.getKey(), ex);
            }
          }));
      assertEquals(3, dr.get(new TopicPartition(topic, 0)).lowWatermark());
      assertEquals(5, dr.get(new TopicPartition(topic, 1)).lowWatermark());
      assertEquals("0:3@-1 1:5@-1 2:0@-1 3:0@-1 4:0@-1", listed(admin, topic, OffsetSpec.earliest()));

      // --- consumer groups: one classic, one KIP-848 member -------------------------
      String classic = Kit.name("admin-classic"), consumer = Kit.name("admin-consumer");
      List<Rec> left = IntStream.range(3, 10).mapToObj(i -> new Rec(0, i, "p0-" + i, "v" + i, ""))
          .collect(Collectors.toList());
      Member mc = new Member("admin-classic-member", classic, topic, "classic");
      Member mk = new Member("admin-consumer-member", consumer, topic, "consumer");
      try {
        for (Member m : List.of(mc, mk)) {
          Kit.waitUntil(Duration.ofSeconds(60), () -> m.got().size() >= left.size() && m.assigned().size() == 5,
              () -> "member assigned " + m.assigned() + " consumed " + m.got().size() + " (" + m.error() + ")");
          assertNull(m.error());
          assertEquals(left, m.got());
        }
        for (String g : List.of(classic, consumer)) {
          Kit.waitUntil(Duration.ofSeconds(30), () -> {
            try {
              return ConsumerGroupTest.committed(admin, g).equals(Map.of(0, 10L));
            } catch (Exception e) {
              return false;
            }
          }, () -> "committed offsets of " + g + " never became {0=10}");
        }
        Map<String, ConsumerGroupListing> listing = admin.listConsumerGroups().all().get(T, TimeUnit.SECONDS).stream()
            .collect(Collectors.toMap(ConsumerGroupListing::groupId, l -> l));
        assertEquals("Optional[Stable] Optional[Classic]",
            listing.get(classic).groupState() + " " + listing.get(classic).type(), "listing of " + classic);
        assertEquals("Optional[Stable] Optional[Consumer]",
            listing.get(consumer).groupState() + " " + listing.get(consumer).type(), "listing of " + consumer);
        Map<String, ConsumerGroupDescription> desc =
            admin.describeConsumerGroups(List.of(classic, consumer)).all().get(T, TimeUnit.SECONDS);
        ConsumerGroupDescription dc = desc.get(classic), dk = desc.get(consumer);
        assertEquals("Stable Classic range false", dc.groupState() + " " + dc.type() + " " + dc.partitionAssignor() + " " + dc.isSimpleConsumerGroup());
        assertEquals("Stable Consumer uniform false", dk.groupState() + " " + dk.type() + " " + dk.partitionAssignor() + " " + dk.isSimpleConsumerGroup());
        for (ConsumerGroupDescription g : List.of(dc, dk)) {
          assertEquals(1, g.members().size(), g.groupId() + " members");
          MemberDescription m = g.members().iterator().next();
          assertEquals(g == dc ? "admin-classic-member" : "admin-consumer-member", m.clientId());
          assertEquals(Set.of(0, 1, 2, 3, 4), assignedPartitions(m, topic), g.groupId() + " assignment");
        }
      } finally {
        mc.close();
        mk.close();
      }
      Map<String, ConsumerGroupDescription> desc =
          admin.describeConsumerGroups(List.of(classic, consumer)).all().get(T, TimeUnit.SECONDS);
      assertEquals(GroupState.EMPTY, desc.get(classic).groupState());
      assertEquals(0, desc.get(classic).members().size());
      assertEquals(GroupState.EMPTY, desc.get(consumer).groupState());
      assertEquals(0, desc.get(consumer).members().size());
      assertEquals(GroupType.CLASSIC, desc.get(classic).type());
      assertEquals(GroupType.CONSUMER, desc.get(consumer).type());
      assertEquals(Map.of(0, 10L), ConsumerGroupTest.committed(admin, classic));

      // --- deleteTopics -----------------------------------------------------------
      admin.deleteTopics(List.of(other)).all().get(T, TimeUnit.SECONDS);
      Kit.waitUntil(Duration.ofSeconds(30), () -> {
        try {
          return !admin.listTopics().names().get(T, TimeUnit.SECONDS).contains(other);
        } catch (Exception e) {
          return false;
        }
      }, () -> other + " still listed after deleteTopics");
    }
  }
}
