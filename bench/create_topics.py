#!/usr/bin/env python3
"""CreateTopics latency against one broker (Vltava or Kafka): the median,
min and max of 5 CreateTopics of 1 and of 1,000 partitions, and one request
creating 100 one-partition topics. Not run by CI; needs confluent-kafka
(tests/compat/python/run.sh installs it in tests/compat/python/.venv).

usage: create_topics.py BOOTSTRAP
"""
import sys
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic


def create(admin, topics):
    for f in admin.create_topics(topics, operation_timeout=60).values():
        f.result()


def main():
    admin = AdminClient({"bootstrap.servers": sys.argv[1]})
    admin.list_topics(timeout=10)
    for partitions in (1, 1000):
        times = []
        for _ in range(5):
            name = f"ct-{partitions}-{uuid.uuid4().hex[:8]}"
            start = time.perf_counter()
            create(admin, [NewTopic(name, num_partitions=partitions, replication_factor=1)])
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        print(f"partitions={partitions} runs=5 median_ms={times[2]:.1f} "
              f"min_ms={times[0]:.1f} max_ms={times[-1]:.1f}")
    names = [f"many-{uuid.uuid4().hex[:8]}" for _ in range(100)]
    start = time.perf_counter()
    create(admin, [NewTopic(n, num_partitions=1, replication_factor=1) for n in names])
    print(f"100 topics x 1 partition in one CreateTopics: {(time.perf_counter() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
