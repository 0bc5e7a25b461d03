package modeldatablobexporter

import (
	"context"
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
	agents []*kgo.Client
	landed atomic.Int64
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
						l.add(time.Since(rec.Timestamp))
						cl.MarkCommitRecords(rec)
						k.landed.Add(1)
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

// produce sends one push of agent a, keyed by its blob.
func (k *kafkaLayout) produce(t *testing.T, a int, ld plog.Logs) {
	var m plog.ProtoMarshaler
	value, err := m.MarshalLogs(ld)
	if err != nil {
		t.Error(err)
		return
	}
	rec := &kgo.Record{Key: []byte("hot/1/inputs"), Value: value, Timestamp: time.Now()}
	if err := k.agents[a].ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Error(err)
	}
}

// waitLanded waits until the writers landed n pushes.
func (k *kafkaLayout) waitLanded(t *testing.T, n int) {
	if !testutil.Poll(5*time.Minute, func() bool { return k.landed.Load() >= int64(n) }) {
		t.Fatalf("%d of %d pushes landed", k.landed.Load(), n)
	}
}
