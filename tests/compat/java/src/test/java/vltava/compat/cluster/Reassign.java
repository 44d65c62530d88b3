package vltava.compat.cluster;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.common.TopicPartition;

/**
 * Moves one partition to new replicas with the Java AdminClient, as an
 * operator's tool does (kafka-reassign-partitions.sh uses the same calls):
 * alterPartitionReassignments, then listPartitionReassignments for that
 * partition. Run by tests/reassignment.rs as a child process.
 *
 * <p>stdout carries one JSON line: {"event":"reassigning","replicas":[..],
 * "adding":[..],"removing":[..]} when the reassignment is still in
 * progress, {"event":"reassigned"} when it is already complete;
 * {"event":"error","error":E} (exit 1) when the AdminClient refused it.
 * Environment: BOOTSTRAP, TOPIC, PARTITION, REPLICAS (comma-separated ids).
 */
public final class Reassign {
  private Reassign() {}

  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv("BOOTSTRAP"));
    TopicPartition tp =
        new TopicPartition(System.getenv("TOPIC"), Integer.parseInt(System.getenv("PARTITION")));
    List<Integer> replicas = new ArrayList<>();
    for (String id : System.getenv("REPLICAS").split(",")) {
      replicas.add(Integer.parseInt(id.trim()));
    }
    try (Admin admin = Admin.create(props)) {
      admin
          .alterPartitionReassignments(
              Map.of(tp, Optional.of(new NewPartitionReassignment(replicas))))
          .all()
          .get(30, TimeUnit.SECONDS);
      Map<TopicPartition, PartitionReassignment> ongoing =
          admin.listPartitionReassignments(Set.of(tp)).reassignments().get(30, TimeUnit.SECONDS);
      PartitionReassignment r = ongoing.get(tp);
      if (r == null) {
        System.out.println("{\"event\":\"reassigned\"}");
      } else {
        System.out.println(
            "{\"event\":\"reassigning\",\"replicas\":"
                + r.replicas()
                + ",\"adding\":"
                + r.addingReplicas()
                + ",\"removing\":"
                + r.removingReplicas()
                + "}");
      }
    } catch (Exception e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      System.out.println(
          "{\"event\":\"error\",\"error\":\""
              + cause.getClass().getSimpleName()
              + ": "
              + String.valueOf(cause.getMessage()).replace("\"", "'")
              + "\"}");
      System.exit(1);
    }
  }
}
