package compat

// franz-go (github.com/twmb/franz-go, kgo + kadm).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func kgoClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.FetchMaxWait(500 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func admin(t *testing.T) *kadm.Client {
	t.Helper()
	// kgo answers repeated metadata requests from a cache for MetadataMinAge
	// (default 5 s); the scenarios wait on metadata changes, so keep it short.
	return kadm.NewClient(kgoClient(t, kgo.MetadataMinAge(250*time.Millisecond)))
}

// plainProducer is a kgo producer that needs no InitProducerId
// (idempotence off) and puts each record on the partition it names.
func plainProducer(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return kgoClient(t, append([]kgo.Opt{
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
}

// createTopic creates a topic with kadm and waits until metadata serves
// every partition with a leader.
func createTopic(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("CreateTopic %s: %v %s", topic, resp.Err, resp.ErrMessage)
	}
	waitPartitions(ctx, t, adm, topic, int(partitions))
}

func waitPartitions(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, partitions int) kadm.TopicDetail {
	t.Helper()
	for {
		tds, err := adm.ListTopics(ctx, topic)
		if err == nil {
			td := tds[topic]
			if td.Err == nil && len(td.Partitions) == partitions {
				ok := true
				for _, p := range td.Partitions {
					ok = ok && p.Err == nil && p.Leader >= 0
				}
				if ok {
					return td
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s: %d partitions with leaders not served before the deadline (last: %v %+v)", topic, partitions, err, tds)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func headerString(hs []kgo.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Key + "=" + string(h.Value)
	}
	return strings.Join(parts, ";")
}

func kgoRec(r *kgo.Record) rec {
	return rec{r.Partition, r.Offset, string(r.Key), string(r.Value), headerString(r.Headers)}
}

// pollN polls cl until it has n records, failing on any fetch error or at
// the context's deadline.
func pollN(ctx context.Context, t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before the deadline", len(out), n)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("fetch %s[%d]: %v", fe.Topic, fe.Partition, fe.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// byPartition groups records per partition, keeping their order.
func byPartition(rs []rec) map[int32][]rec {
	m := map[int32][]rec{}
	for _, r := range rs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	return m
}

func endOffsets(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("ListEndOffsets %s[%d]: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// TestFranzDefaultProducerIdempotent: kgo's producer with its DEFAULT options
// (idempotent, acks=all: needs InitProducerId) sends 200 keyed records with
// headers to 6 partitions; each lands on murmur2(key) % 6 at the offset
// ProduceSync reports, and a partition consumer reads exactly them back.
func TestFranzDefaultProducerIdempotent(t *testing.T) {
	ctx := deadline(t, 60*time.Second)
	adm := admin(t)
	topic := name("kgo-idem")
	createTopic(ctx, t, adm, topic, 6, nil)

	prod := kgoClient(t) // defaults: idempotent writes, acks=all, sticky murmur2 key partitioner
	var records []*kgo.Record
	for i := 0; i < 200; i++ {
		key := fmt.Sprintf("key-%02d", i%40)
		records = append(records, &kgo.Record{
			Topic: topic,
			Key:   []byte(key),
			Value: []byte(fmt.Sprintf("value-%03d", i)),
			Headers: []kgo.RecordHeader{
				{Key: "seq", Value: []byte(fmt.Sprint(i))},
				{Key: "client", Value: []byte("franz-go")},
			},
		})
	}
	if err := prod.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	next := map[int32]int64{}
	var want []rec
	for i, r := range records {
		p := javaPartition(string(r.Key), 6)
		if r.Partition != p {
			t.Fatalf("record %d (key %s) went to partition %d, murmur2 says %d", i, r.Key, r.Partition, p)
		}
		if r.Offset != next[p] {
			t.Fatalf("record %d: ProduceSync offset %d on partition %d, want %d", i, r.Offset, p, next[p])
		}
		next[p]++
		want = append(want, rec{p, r.Offset, string(r.Key), fmt.Sprintf("value-%03d", i), fmt.Sprintf("seq=%d;client=franz-go", i)})
	}

	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < 6; p++ {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cons := kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	var got []rec
	polled := pollN(ctx, t, cons, len(want))
	for _, r := range polled {
		got = append(got, kgoRec(r))
	}
	// kgo silently falls back to non-idempotent writes when the broker does
	// not offer InitProducerId; the batches' producer id shows which it was.
	pid := polled[0].ProducerID
	for _, r := range polled {
		if r.ProducerID < 0 || r.ProducerID != pid || r.ProducerEpoch != 0 {
			t.Fatalf("record %v written with producer id %d epoch %d (first record: id %d): not one idempotent producer session",
				kgoRec(r), r.ProducerID, r.ProducerEpoch, pid)
		}
	}
	wantBy, gotBy := byPartition(want), byPartition(got)
	for p := int32(0); p < 6; p++ {
		diffRecs(t, fmt.Sprintf("partition %d", p), wantBy[p], gotBy[p])
	}
	ends := endOffsets(ctx, t, adm, topic)
	for p := int32(0); p < 6; p++ {
		if ends[p] != next[p] {
			t.Fatalf("partition %d: end offset %d, want %d", p, ends[p], next[p])
		}
	}
}

// TestFranzCompressionCodecs: 20 records per codec (none, gzip, snappy, lz4,
// zstd) from non-idempotent kgo producers, read back exactly in order.
func TestFranzCompressionCodecs(t *testing.T) {
	ctx := deadline(t, 60*time.Second)
	adm := admin(t)
	topic := name("kgo-codecs")
	createTopic(ctx, t, adm, topic, 1, nil)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	var want []rec
	for _, c := range codecs {
		prod := plainProducer(t, kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(50*time.Millisecond))
		var rs []*kgo.Record
		for i := 0; i < 20; i++ {
			// compressible values so every codec really compresses
			v := fmt.Sprintf("%s-%02d-%s", c.name, i, strings.Repeat("abcdefgh", 16))
			rs = append(rs, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(c.name), Value: []byte(v),
				Headers: []kgo.RecordHeader{{Key: "codec", Value: []byte(c.name)}}})
			want = append(want, rec{0, int64(len(want)), c.name, v, "codec=" + c.name})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("ProduceSync %s: %v", c.name, err)
		}
		prod.Close()
	}
	cons := kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	var got []rec
	for _, r := range pollN(ctx, t, cons, len(want)) {
		got = append(got, kgoRec(r))
	}
	diffRecs(t, "codecs", want, got)
}

// groupMember is a kgo consumer-group member that records what it is
// assigned and what it consumes, and commits every polled batch
// synchronously.
type groupMember struct {
	name string
	cl   *kgo.Client

	mu       sync.Mutex
	assigned map[int32]bool
	got      []rec
	err      error
	done     chan struct{}
}

func startMember(t *testing.T, memberName, group, topic string, extra ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{name: memberName, assigned: map[int32]bool{}, done: make(chan struct{})}
	opts := append([]kgo.Opt{
		kgo.ClientID(memberName),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, as map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range as[topic] {
				m.assigned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, rs map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range rs[topic] {
				delete(m.assigned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ls map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ls[topic] {
				delete(m.assigned, p)
			}
		}),
	}, extra...)
	m.cl = kgoClient(t, opts...)
	go m.run()
	return m
}

func (m *groupMember) run() {
	defer close(m.done)
	ctx := context.Background()
	for {
		fs := m.cl.PollFetches(ctx)
		if fs.IsClientClosed() {
			return
		}
		for _, fe := range fs.Errors() {
			m.mu.Lock()
			if m.err == nil {
				m.err = fmt.Errorf("%s: fetch %s[%d]: %w", m.name, fe.Topic, fe.Partition, fe.Err)
			}
			m.mu.Unlock()
		}
		rs := fs.Records()
		if len(rs) == 0 {
			continue
		}
		m.mu.Lock()
		for _, r := range rs {
			m.got = append(m.got, kgoRec(r))
		}
		m.mu.Unlock()
		if err := m.cl.CommitRecords(ctx, rs...); err != nil {
			m.mu.Lock()
			if m.err == nil && !errors.Is(err, kgo.ErrClientClosed) {
				m.err = fmt.Errorf("%s: CommitRecords: %w", m.name, err)
			}
			m.mu.Unlock()
		}
	}
}

func (m *groupMember) snapshot() (assigned []int32, got []rec, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.assigned {
		assigned = append(assigned, p)
	}
	sort.Slice(assigned, func(i, j int) bool { return assigned[i] < assigned[j] })
	return assigned, append([]rec(nil), m.got...), m.err
}

func (m *groupMember) close() {
	m.cl.Close() // leaves the group
	<-m.done
}

// waitUntil polls cond every 50 ms until it is true, failing at ctx's
// deadline with what().
func waitUntil(ctx context.Context, t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("deadline: %s", what())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestFranzGroupPair: two kgo group members (classic protocol,
// cooperative-sticky) split a 4-partition topic 2/2; 200 records are each
// consumed exactly once, in order, by the member owning the partition; the
// commits are what OffsetFetch returns; a new member resumes after them.
func TestFranzGroupPair(t *testing.T) {
	ctx := deadline(t, 90*time.Second)
	adm := admin(t)
	topic, group := name("kgo-group"), name("kgo-group")
	createTopic(ctx, t, adm, topic, 4, nil)

	a := startMember(t, "member-a", group, topic)
	b := startMember(t, "member-b", group, topic)
	split := func() bool {
		pa, _, _ := a.snapshot()
		pb, _, _ := b.snapshot()
		all := map[int32]bool{}
		for _, p := range append(pa, pb...) {
			all[p] = true
		}
		return len(pa) == 2 && len(pb) == 2 && len(all) == 4
	}
	waitUntil(ctx, t, split, func() string {
		pa, _, ea := a.snapshot()
		pb, _, eb := b.snapshot()
		return fmt.Sprintf("no 2/2 split: a=%v (%v) b=%v (%v)", pa, ea, pb, eb)
	})

	prod := plainProducer(t)
	var want []rec
	var rs []*kgo.Record
	for i := 0; i < 200; i++ {
		p := int32(i % 4)
		k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("v%03d", i)
		rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(k), Value: []byte(v)})
		want = append(want, rec{p, int64(i / 4), k, v, ""})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}

	waitUntil(ctx, t, func() bool {
		_, ga, _ := a.snapshot()
		_, gb, _ := b.snapshot()
		return len(ga)+len(gb) >= len(want)
	}, func() string {
		_, ga, ea := a.snapshot()
		_, gb, eb := b.snapshot()
		return fmt.Sprintf("consumed a=%d (%v) b=%d (%v) of %d", len(ga), ea, len(gb), eb, len(want))
	})
	// Every commit of the consumed batches has been acknowledged once the
	// committed offsets reach the end.
	waitUntil(ctx, t, func() bool {
		or, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p := int32(0); p < 4; p++ {
			o, ok := or.Lookup(topic, p)
			if !ok || o.Err != nil || o.At != 50 {
				return false
			}
		}
		return true
	}, func() string {
		or, err := adm.FetchOffsets(ctx, group)
		return fmt.Sprintf("committed offsets never reached 50 on every partition: %v %+v", err, or)
	})

	pa, ga, ea := a.snapshot()
	pb, gb, eb := b.snapshot()
	if ea != nil || eb != nil {
		t.Fatalf("member errors: %v / %v", ea, eb)
	}
	if len(ga) == 0 || len(gb) == 0 {
		t.Fatalf("one member consumed nothing: a=%d b=%d", len(ga), len(gb))
	}
	owner := map[int32]string{}
	for _, p := range pa {
		owner[p] = "a"
	}
	for _, p := range pb {
		owner[p] = "b"
	}
	for _, r := range ga {
		if owner[r.Partition] != "a" {
			t.Fatalf("member a consumed %v from a partition it does not own (a=%v b=%v)", r, pa, pb)
		}
	}
	for _, r := range gb {
		if owner[r.Partition] != "b" {
			t.Fatalf("member b consumed %v from a partition it does not own (a=%v b=%v)", r, pa, pb)
		}
	}
	wantBy, gotBy := byPartition(want), byPartition(append(ga, gb...))
	for p := int32(0); p < 4; p++ {
		diffRecs(t, fmt.Sprintf("partition %d", p), wantBy[p], gotBy[p])
	}

	a.close()
	b.close()

	// 40 more records; a new member of the group gets exactly those.
	var more []rec
	rs = rs[:0]
	for i := 200; i < 240; i++ {
		p := int32(i % 4)
		k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("v%03d", i)
		rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(k), Value: []byte(v)})
		more = append(more, rec{p, int64(i / 4), k, v, ""})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	c := startMember(t, "member-c", group, topic)
	defer c.close()
	waitUntil(ctx, t, func() bool { _, gc, _ := c.snapshot(); return len(gc) >= len(more) }, func() string {
		_, gc, ec := c.snapshot()
		return fmt.Sprintf("member c consumed %d of %d (%v)", len(gc), len(more), ec)
	})
	_, gc, ec := c.snapshot()
	if ec != nil {
		t.Fatal(ec)
	}
	wantBy, gotBy = byPartition(more), byPartition(gc)
	for p := int32(0); p < 4; p++ {
		diffRecs(t, fmt.Sprintf("resumed partition %d", p), wantBy[p], gotBy[p])
	}
}

func configMap(t *testing.T, rcs kadm.ResourceConfigs, topic string) map[string]kadm.Config {
	t.Helper()
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v", topic, err)
	}
	if rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v %s", topic, rc.Err, rc.ErrMessage)
	}
	m := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		m[c.Key] = c
	}
	return m
}

func checkConfig(t *testing.T, cs map[string]kadm.Config, key, value string, source kmsg.ConfigSource) {
	t.Helper()
	c, ok := cs[key]
	if !ok {
		t.Fatalf("config %s not described", key)
	}
	if c.Value == nil || *c.Value != value || c.Source != source {
		v := "<nil>"
		if c.Value != nil {
			v = *c.Value
		}
		t.Fatalf("config %s = %q (source %v), want %q (source %v)", key, v, c.Source, value, source)
	}
}

// TestKadmAdmin: topics, partitions, configs, groups, offsets and
// delete-records through kadm.
func TestKadmAdmin(t *testing.T) {
	ctx := deadline(t, 90*time.Second)
	adm := admin(t)
	topic, other, group := name("kadm"), name("kadm-other"), name("kadm")

	// --- create, list, describe --------------------------------------------
	resps, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{
		"retention.ms":   kadm.StringPtr("3600000"),
		"cleanup.policy": kadm.StringPtr("delete"),
	}, topic)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if r := resps[topic]; r.Err != nil || r.NumPartitions != 3 || r.ReplicationFactor != 1 {
		t.Fatalf("CreateTopics %s: %+v", topic, r)
	}
	createTopic(ctx, t, adm, other, 1, nil)
	td := waitPartitions(ctx, t, adm, topic, 3)
	for p := int32(0); p < 3; p++ {
		pd := td.Partitions[p]
		if pd.Partition != p || len(pd.Replicas) != 1 || pd.Replicas[0] != pd.Leader || fmt.Sprint(pd.ISR) != fmt.Sprint(pd.Replicas) {
			t.Fatalf("partition %d: %+v", p, pd)
		}
	}
	// kadm.CreateTopic returns the topic's error as its error too
	again, err := adm.CreateTopic(ctx, 3, 1, nil, topic)
	if !errors.Is(err, kerr.TopicAlreadyExists) || !errors.Is(again.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("creating %s again: %v / %v, want TOPIC_ALREADY_EXISTS", topic, err, again.Err)
	}
	all, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if !all.Has(topic) || !all.Has(other) || len(all[topic].Partitions) != 3 || len(all[other].Partitions) != 1 {
		t.Fatalf("ListTopics: %s/%s missing or wrong: %v", topic, other, all.Names())
	}

	// --- partitions ----------------------------------------------------------
	cp, err := adm.CreatePartitions(ctx, 2, topic)
	if err != nil || cp[topic].Err != nil {
		t.Fatalf("CreatePartitions +2: %v %+v", err, cp[topic])
	}
	waitPartitions(ctx, t, adm, topic, 5)
	shrink, err := adm.UpdatePartitions(ctx, 2, topic)
	if err != nil || !errors.Is(shrink[topic].Err, kerr.InvalidPartitions) {
		t.Fatalf("UpdatePartitions 5→2: %v %+v, want INVALID_PARTITIONS", err, shrink[topic])
	}

	// --- configs -------------------------------------------------------------
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	cs := configMap(t, rcs, topic)
	checkConfig(t, cs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
	checkConfig(t, cs, "cleanup.policy", "delete", kmsg.ConfigSourceDynamicTopicConfig)
	if c, ok := cs["max.message.bytes"]; !ok || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("max.message.bytes before alter: %+v", c)
	}
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")},
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("65536")},
		{Op: kadm.DeleteConfig, Name: "cleanup.policy"},
	}, topic)
	if err != nil {
		t.Fatalf("AlterTopicConfigs: %v", err)
	}
	if a, err := alt.On(topic, nil); err != nil || a.Err != nil {
		t.Fatalf("AlterTopicConfigs %s: %v %+v", topic, err, a)
	}
	rcs, err = adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	cs = configMap(t, rcs, topic)
	checkConfig(t, cs, "retention.ms", "7200000", kmsg.ConfigSourceDynamicTopicConfig)
	checkConfig(t, cs, "max.message.bytes", "65536", kmsg.ConfigSourceDynamicTopicConfig)
	if c := cs["cleanup.policy"]; c.Value == nil || *c.Value != "delete" || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("cleanup.policy after DeleteConfig: %+v, want the default \"delete\" from a non-topic source", c)
	}

	// --- offsets -------------------------------------------------------------
	// partition 0: 10 records at ts0+0s..9s; partition 1: 5 at ts0+0s..4s;
	// partitions 2-4 empty.
	ts0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	prod := plainProducer(t)
	var rs []*kgo.Record
	for p, n := range map[int32]int{0: 10, 1: 5} {
		for i := 0; i < n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("p%d-%d", p, i)),
				Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: ts0.Add(time.Duration(i) * time.Second)})
		}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Partition < rs[j].Partition })
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	listed := func(what string, lo kadm.ListedOffsets, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var parts []string
		for p := int32(0); p < 5; p++ {
			o, ok := lo.Lookup(topic, p)
			if !ok || o.Err != nil {
				t.Fatalf("%s partition %d: %v %+v", what, p, ok, o)
			}
			parts = append(parts, fmt.Sprintf("%d:%d@%d", p, o.Offset, o.Timestamp))
		}
		return strings.Join(parts, " ")
	}
	ms := func(d time.Duration) int64 { return ts0.Add(d).UnixMilli() }
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s:\n got  %s\n want %s", what, got, want)
		}
	}
	lo, err := adm.ListStartOffsets(ctx, topic)
	check("ListStartOffsets", listed("ListStartOffsets", lo, err), "0:0@-1 1:0@-1 2:0@-1 3:0@-1 4:0@-1")
	lo, err = adm.ListEndOffsets(ctx, topic)
	check("ListEndOffsets", listed("ListEndOffsets", lo, err), "0:10@-1 1:5@-1 2:0@-1 3:0@-1 4:0@-1")
	lo, err = adm.ListOffsetsAfterMilli(ctx, ms(3500*time.Millisecond), topic)
	check("ListOffsetsAfterMilli(ts0+3.5s)", listed("ListOffsetsAfterMilli", lo, err),
		fmt.Sprintf("0:4@%d 1:4@%d 2:0@-1 3:0@-1 4:0@-1", ms(4*time.Second), ms(4*time.Second)))
	lo, err = adm.ListOffsetsAfterMilli(ctx, ms(0), topic)
	check("ListOffsetsAfterMilli(ts0)", listed("ListOffsetsAfterMilli", lo, err),
		fmt.Sprintf("0:0@%d 1:0@%d 2:0@-1 3:0@-1 4:0@-1", ms(0), ms(0)))
	// after the last record: kadm answers the end offsets
	lo, err = adm.ListOffsetsAfterMilli(ctx, ms(20*time.Second), topic)
	check("ListOffsetsAfterMilli(ts0+20s)", listed("ListOffsetsAfterMilli", lo, err), "0:10@-1 1:5@-1 2:0@-1 3:0@-1 4:0@-1")

	// --- delete records ------------------------------------------------------
	var del kadm.Offsets
	del.AddOffset(topic, 0, 3, -1)
	del.AddOffset(topic, 1, 5, -1)
	dr, err := adm.DeleteRecords(ctx, del)
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	for p, lw := range map[int32]int64{0: 3, 1: 5} {
		r, ok := dr.Lookup(topic, p)
		if !ok || r.Err != nil || r.LowWatermark != lw {
			t.Fatalf("DeleteRecords partition %d: %+v, want low watermark %d", p, r, lw)
		}
	}
	lo, err = adm.ListStartOffsets(ctx, topic)
	check("ListStartOffsets after DeleteRecords", listed("ListStartOffsets", lo, err), "0:3@-1 1:5@-1 2:0@-1 3:0@-1 4:0@-1")

	// --- groups --------------------------------------------------------------
	// One member consumes what is left (partition 0 offsets 3..9) and commits.
	m := startMember(t, "kadm-member", group, topic)
	waitUntil(ctx, t, func() bool { _, g, _ := m.snapshot(); return len(g) >= 7 }, func() string {
		p, g, e := m.snapshot()
		return fmt.Sprintf("member assigned %v consumed %d of 7 (%v)", p, len(g), e)
	})
	_, got, merr := m.snapshot()
	if merr != nil {
		t.Fatal(merr)
	}
	var want []rec
	for i := 3; i < 10; i++ {
		want = append(want, rec{0, int64(i), fmt.Sprintf("p0-%d", i), fmt.Sprintf("v%d", i), ""})
	}
	diffRecs(t, "group member after DeleteRecords", want, got)
	waitUntil(ctx, t, func() bool {
		or, err := adm.FetchOffsets(ctx, group)
		o, ok := or.Lookup(topic, 0)
		return err == nil && ok && o.Err == nil && o.At == 10
	}, func() string {
		or, err := adm.FetchOffsets(ctx, group)
		return fmt.Sprintf("FetchOffsets: %v %+v", err, or)
	})

	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if g, ok := lg[group]; !ok || g.ProtocolType != "consumer" || g.State != "Stable" {
		t.Fatalf("ListGroups: %s = %+v (present %v), want consumer/Stable", group, g, ok)
	}
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	d := dg[group]
	if d.Err != nil || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "cooperative-sticky" || len(d.Members) != 1 {
		t.Fatalf("DescribeGroups: %+v", d)
	}
	mem := d.Members[0]
	as, ok := mem.Assigned.AsConsumer()
	if mem.ClientID != "kadm-member" || !ok || len(as.Topics) != 1 || as.Topics[0].Topic != topic ||
		fmt.Sprint(as.Topics[0].Partitions) != "[0 1 2 3 4]" {
		t.Fatalf("DescribeGroups member: client %q assignment %+v", mem.ClientID, as)
	}
	m.close()
	dg, err = adm.DescribeGroups(ctx, group)
	if err != nil || dg[group].State != "Empty" || len(dg[group].Members) != 0 {
		t.Fatalf("DescribeGroups after the member left: %v %+v, want Empty with no members", err, dg[group])
	}
	lg, err = adm.ListGroups(ctx)
	if err != nil || lg[group].State != "Empty" {
		t.Fatalf("ListGroups after the member left: %v %+v", err, lg[group])
	}
	or, err := adm.FetchOffsets(ctx, group)
	if o, ok := or.Lookup(topic, 0); err != nil || !ok || o.At != 10 {
		t.Fatalf("FetchOffsets after the member left: %v %+v", err, or)
	}

	// --- delete topic --------------------------------------------------------
	dt, err := adm.DeleteTopics(ctx, other)
	if err != nil || dt[other].Err != nil {
		t.Fatalf("DeleteTopics: %v %+v", err, dt[other])
	}
	waitUntil(ctx, t, func() bool {
		tds, err := adm.ListTopics(ctx)
		return err == nil && !tds.Has(other)
	}, func() string { return other + " still listed after DeleteTopics" })
}
