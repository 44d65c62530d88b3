package compat

// segmentio/kafka-go: Writer and a Reader with GroupID (classic protocol).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func kafkaGoHeaders(hs []kafka.Header) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Key + "=" + string(h.Value)
	}
	return strings.Join(parts, ";")
}

// readKafkaGo reads n messages with a group Reader, committing each
// synchronously (CommitInterval 0), then closes the reader (leaves the
// group).
func readKafkaGo(ctx context.Context, t *testing.T, group, topic string, n int) []rec {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{bootstrap},
		GroupID:     group,
		Topic:       topic,
		MinBytes:    1,
		MaxBytes:    1 << 20,
		MaxWait:     500 * time.Millisecond,
		StartOffset: kafka.FirstOffset,
	})
	var got []rec
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			r.Close()
			t.Fatalf("FetchMessage after %d of %d: %v", len(got), n, err)
		}
		got = append(got, rec{int32(m.Partition), m.Offset, string(m.Key), string(m.Value), kafkaGoHeaders(m.Headers)})
		if err := r.CommitMessages(ctx, m); err != nil {
			r.Close()
			t.Fatalf("CommitMessages: %v", err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Reader.Close: %v", err)
	}
	return got
}

// TestKafkaGoWriterReaderGroup: a Writer (murmur2 balancer, acks=all) sends
// 120 keyed records with headers to 3 partitions; a group Reader reads
// exactly them and commits each; OffsetFetch returns the end offsets; a new
// Reader in the group resumes with exactly the 30 records written after.
func TestKafkaGoWriterReaderGroup(t *testing.T) {
	ctx := deadline(t, 120*time.Second)
	topic, group := name("kafkago"), name("kafkago")
	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 10 * time.Second}
	cr, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 3, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if err := cr.Errors[topic]; err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
	adm := admin(t)
	waitPartitions(ctx, t, adm, topic, 3)

	w := &kafka.Writer{
		Addr:         kafka.TCP(bootstrap),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    200,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	next := map[int32]int64{}
	write := func(from, to int) []rec {
		var msgs []kafka.Message
		var want []rec
		for i := from; i < to; i++ {
			key, val := fmt.Sprintf("order-%02d", i%20), fmt.Sprintf("payload-%03d", i)
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(val),
				Headers: []kafka.Header{{Key: "seq", Value: []byte(fmt.Sprint(i))}, {Key: "client", Value: []byte("kafka-go")}}})
			p := javaPartition(key, 3)
			want = append(want, rec{p, next[p], key, val, fmt.Sprintf("seq=%d;client=kafka-go", i)})
			next[p]++
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			var we kafka.WriteErrors
			if errors.As(err, &we) {
				t.Fatalf("WriteMessages: %d failed, first: %v", we.Count(), err)
			}
			t.Fatalf("WriteMessages: %v", err)
		}
		return want
	}

	want := write(0, 120)
	got := readKafkaGo(ctx, t, group, topic, len(want))
	wantBy, gotBy := byPartition(want), byPartition(got)
	for p := int32(0); p < 3; p++ {
		diffRecs(t, fmt.Sprintf("partition %d", p), wantBy[p], gotBy[p])
	}
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil || of.Error != nil {
		t.Fatalf("OffsetFetch: %v %v", err, of)
	}
	committed := map[int32]int64{}
	for _, p := range of.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("OffsetFetch partition %d: %v", p.Partition, p.Error)
		}
		committed[int32(p.Partition)] = p.CommittedOffset
	}
	if fmt.Sprint(committed) != fmt.Sprint(next) {
		t.Fatalf("committed offsets %v, want %v", committed, next)
	}

	more := write(120, 150)
	got = readKafkaGo(ctx, t, group, topic, len(more))
	wantBy, gotBy = byPartition(more), byPartition(got)
	for p := int32(0); p < 3; p++ {
		diffRecs(t, fmt.Sprintf("resumed partition %d", p), wantBy[p], gotBy[p])
	}
	ends := endOffsets(ctx, t, adm, topic)
	if fmt.Sprint(ends) != fmt.Sprint(next) {
		t.Fatalf("end offsets %v, want %v", ends, next)
	}
}
