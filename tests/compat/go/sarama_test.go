package compat

// IBM/sarama: SyncProducer and ConsumerGroup (classic protocol).

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig() // protocol version: sarama's default (2.8.0)
	cfg.ClientID = clientID
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.MaxWaitTime = 500 * time.Millisecond
	return cfg
}

// saramaPartition is sarama's default hash partitioner (FNV-1a 32).
func saramaPartition(key string, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	p := int32(h.Sum32()) % partitions
	if p < 0 {
		p = -p
	}
	return p
}

func saramaHeaders(hs []*sarama.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = string(h.Key) + "=" + string(h.Value)
	}
	return strings.Join(parts, ";")
}

// saramaHandler records every claimed message, marks it, and commits the
// marks synchronously whenever it has caught up with what was fetched.
type saramaHandler struct {
	mu      sync.Mutex
	got     []rec
	claimed map[int32]bool
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ps := range s.Claims() {
		for _, p := range ps {
			h.claimed[p] = true
		}
	}
	return nil
}
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.got = append(h.got, rec{m.Partition, m.Offset, string(m.Key), string(m.Value), saramaHeaders(m.Headers)})
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if len(c.Messages()) == 0 { // end of what was fetched: commit synchronously
			s.Commit()
		}
	}
	return nil
}

func (h *saramaHandler) snapshot() []rec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]rec(nil), h.got...)
}

// consumeSarama runs a sarama consumer group member until it has n records
// (or the deadline), then leaves the group.
func consumeSarama(ctx context.Context, t *testing.T, group, topic string, n int) []rec {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{bootstrap}, group, saramaConfig("sarama-consumer"))
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	h := &saramaHandler{claimed: map[int32]bool{}}
	runCtx, stop := context.WithCancel(ctx)
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for runCtx.Err() == nil {
			if err := cg.Consume(runCtx, []string{topic}, h); err != nil {
				errs <- err
				return
			}
		}
	}()
	waitUntil(ctx, t, func() bool { return len(h.snapshot()) >= n }, func() string {
		return fmt.Sprintf("sarama consumer got %d of %d records", len(h.snapshot()), n)
	})
	stop()
	if err := <-errs; err != nil {
		t.Fatalf("ConsumerGroup.Consume: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Fatalf("ConsumerGroup.Close: %v", err)
	}
	return h.snapshot()
}

// TestSaramaProduceConsumeGroup: SyncProducer sends 150 keyed records with
// headers to 3 partitions (acks=all, sarama's hash partitioner); a
// ConsumerGroup member reads exactly them and commits each; the committed
// offsets are the end offsets; a new member resumes with exactly the 30
// records produced after.
func TestSaramaProduceConsumeGroup(t *testing.T) {
	ctx := deadline(t, 90*time.Second)
	topic, group := name("sarama"), name("sarama")

	ca, err := sarama.NewClusterAdmin([]string{bootstrap}, saramaConfig("sarama-admin"))
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	defer ca.Close()
	if err := ca.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	adm := admin(t)
	waitPartitions(ctx, t, adm, topic, 3)

	prod, err := sarama.NewSyncProducer([]string{bootstrap}, saramaConfig("sarama-producer"))
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer prod.Close()
	next := map[int32]int64{}
	produce := func(from, to int) []rec {
		var want []rec
		for i := from; i < to; i++ {
			key := fmt.Sprintf("user-%02d", i%25)
			val := fmt.Sprintf("event-%03d", i)
			p, off, err := prod.SendMessage(&sarama.ProducerMessage{
				Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(val),
				Headers: []sarama.RecordHeader{{Key: []byte("seq"), Value: []byte(fmt.Sprint(i))}, {Key: []byte("client"), Value: []byte("sarama")}},
			})
			if err != nil {
				t.Fatalf("SendMessage %d: %v", i, err)
			}
			if wp := saramaPartition(key, 3); p != wp || off != next[p] {
				t.Fatalf("SendMessage %d (key %s): partition %d offset %d, want partition %d offset %d", i, key, p, off, wp, next[wp])
			}
			next[p]++
			want = append(want, rec{p, off, key, val, fmt.Sprintf("seq=%d;client=sarama", i)})
		}
		return want
	}

	want := produce(0, 150)
	got := consumeSarama(ctx, t, group, topic, len(want))
	wantBy, gotBy := byPartition(want), byPartition(got)
	for p := int32(0); p < 3; p++ {
		diffRecs(t, fmt.Sprintf("partition %d", p), wantBy[p], gotBy[p])
	}
	parts := map[string][]int32{topic: {0, 1, 2}}
	offs, err := ca.ListConsumerGroupOffsets(group, parts)
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		b := offs.GetBlock(topic, p)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != next[p] {
			t.Fatalf("committed offset of partition %d: %+v, want %d", p, b, next[p])
		}
	}

	more := produce(150, 180)
	got = consumeSarama(ctx, t, group, topic, len(more))
	wantBy, gotBy = byPartition(more), byPartition(got)
	for p := int32(0); p < 3; p++ {
		diffRecs(t, fmt.Sprintf("resumed partition %d", p), wantBy[p], gotBy[p])
	}
	ends := endOffsets(ctx, t, adm, topic)
	for p := int32(0); p < 3; p++ {
		if ends[p] != next[p] {
			t.Fatalf("partition %d: end offset %d, want %d", p, ends[p], next[p])
		}
	}
}
