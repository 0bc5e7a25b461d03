package modeldatablobexporter

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// kafkaLayout is the three-tier layout of docs/aks.md in one process: each
// agent produces its pushes to a topic keyed by blob (one hot model: one
// key, one partition), and the writers consume the topic in one consumer
// group, each into its own exporter, marking a record's offset once its rows
// landed (message_marking after: true). The broker is kfake.
type kafkaLayout struct {
	agents   []*kgo.Client
	landed   atomic.Int64
	maxValue atomic.Int64 // the largest message, to stay under Event Hubs' 1 MB
}

const (
	kafkaScaleTopic = "modeldata"
	// kafkaScalePartitions is at least the most writers of a run, so every
	// writer of the group owns a partition.
	kafkaScalePartitions = 16
)

func startKafkaLayout(t *testing.T, writers []*blobExporter, l *landings) *kafkaLayout {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(kafkaScalePartitions, kafkaScaleTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := kgo.SeedBrokers(cluster.ListenAddrs()...)
	k := &kafkaLayout{}

	var mu sync.Mutex
	owned := map[*kgo.Client]int{}
	assigned := func(delta int) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			mu.Lock()
			owned[cl] += delta * len(m[kafkaScaleTopic])
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var consumers sync.WaitGroup
	t.Cleanup(func() { cancel(); consumers.Wait() })
	for _, e := range writers {
		cl, err := kgo.NewClient(brokers, kgo.ConsumerGroup("writers"), kgo.ConsumeTopics(kafkaScaleTopic),
			kgo.AutoCommitMarks(), kgo.FetchMaxWait(50*time.Millisecond),
			kgo.OnPartitionsAssigned(assigned(1)), kgo.OnPartitionsRevoked(assigned(-1)), kgo.OnPartitionsLost(assigned(-1)))
		if err != nil {
			t.Fatal(err)
		}
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			defer cl.Close()
			var logs plog.ProtoUnmarshaler
			for ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
					ld, err := logs.UnmarshalLogs(rec.Value)
					if err != nil {
						l.failed.Store(err)
						return
					}
					if l.deliver(e, ld) {
						for _, h := range rec.Headers {
							due, _ := strconv.ParseInt(string(h.Value), 10, 64)
							l.add(time.Since(time.Unix(0, due)))
						}
						cl.MarkCommitRecords(rec)
						k.landed.Add(int64(len(rec.Headers)))
					}
				})
			}
		}()
	}
	// Rows are sent once every writer owns its share of the partitions.
	ready := func() bool {
		mu.Lock()
		defer mu.Unlock()
		sum := 0
		for _, n := range owned {
			if n == 0 {
				return false
			}
			sum += n
		}
		return len(owned) == len(writers) && sum == kafkaScalePartitions
	}
	if !testutil.Poll(60*time.Second, ready) {
		t.Fatal("the consumer group did not settle")
	}
	for range writers {
		cl, err := kgo.NewClient(brokers, kgo.DefaultProduceTopic(kafkaScaleTopic), kgo.ProducerLinger(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		k.agents = append(k.agents, cl)
	}
	return k
}

// The agents batch as `sending_queue.batch` of deploy/kubernetes/kafka-agent.yaml
// does: a message when the oldest row waited kafkaFlush, or when it holds
// kafkaMaxBytes of otlp_proto.
const (
	kafkaFlush    = 500 * time.Millisecond
	kafkaMaxBytes = 900_000
)

// agent sends agent a's pushes of run r (every writers-th, from the a-th) in
// messages keyed by their blob; each message carries when its pushes were
// due, so their landing time counts the batching.
func (k *kafkaLayout) agent(t *testing.T, a int, r contentionRun, start time.Time) {
	batch, rec := plog.NewLogs(), &kgo.Record{Key: []byte("hot/1/inputs")}
	var flushAt time.Time
	send := func() {
		var m plog.ProtoMarshaler
		value, err := m.MarshalLogs(batch)
		if err != nil {
			t.Error(err)
			return
		}
		rec.Value = value
		if n := int64(len(value)); n > k.maxValue.Load() {
			k.maxValue.Store(n)
		}
		if err := k.agents[a].ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Error(err)
		}
		batch, rec = plog.NewLogs(), &kgo.Record{Key: rec.Key}
	}
	for p := a; p < r.rows/r.rowsPerPush; p += r.writers {
		due := r.due(start, p)
		if len(rec.Headers) > 0 && due.After(flushAt) {
			time.Sleep(time.Until(flushAt))
			send()
		}
		time.Sleep(time.Until(due))
		if len(rec.Headers) == 0 {
			flushAt = due.Add(kafkaFlush)
		}
		r.pushLogs(p).ResourceLogs().MoveAndAppendTo(batch.ResourceLogs())
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "due", Value: []byte(strconv.FormatInt(due.UnixNano(), 10))})
		if (&plog.ProtoMarshaler{}).LogsSize(batch) >= kafkaMaxBytes {
			send()
		}
	}
	if len(rec.Headers) > 0 {
		time.Sleep(time.Until(flushAt))
		send()
	}
}

// waitLanded waits until the writers landed the n pushes of a run.
func (k *kafkaLayout) waitLanded(t *testing.T, n int) {
	if !testutil.Poll(5*time.Minute, func() bool { return k.landed.Load() >= int64(n) }) {
		t.Fatalf("%d of %d pushes landed", k.landed.Load(), n)
	}
	if k.maxValue.Load() > 1_000_000 {
		t.Errorf("a message of %d bytes: Event Hubs takes at most 1 MB", k.maxValue.Load())
	}
}
