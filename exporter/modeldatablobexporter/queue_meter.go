package modeldatablobexporter

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
)

// The exporterhelper's gauge of the queue's size reads the size under the
// queue's lock: while a write of the queue waits for disk space, every
// collection of the collector's metrics (a scrape of :8888) would wait with
// it, and the counters that tell of the full disk would never be read. So
// the exporterhelper's meter runs its callbacks from another goroutine and
// leaves them out of a collection when the queue waits: the queue's size
// then has no point in that collection.

// stallSafeMeterProvider is the exporterhelper's meter provider.
type stallSafeMeterProvider struct {
	metric.MeterProvider
	gate *queueGate
}

func (p stallSafeMeterProvider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return stallSafeMeter{Meter: p.MeterProvider.Meter(name, opts...), gate: p.gate}
}

type stallSafeMeter struct {
	metric.Meter
	gate *queueGate
}

func (m stallSafeMeter) RegisterCallback(f metric.Callback, instruments ...metric.Observable) (metric.Registration, error) {
	return m.Meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		return m.gate.observe(ctx, o, f)
	}, instruments...)
}

// observe runs f for o, unless the queue waits for disk space now or
// starts to before f returns.
func (g *queueGate) observe(ctx context.Context, o metric.Observer, f metric.Callback) error {
	stalled, stall := g.watch()
	if stalled {
		return nil
	}
	rec := &recordedObservations{}
	done := make(chan error, 1)
	go func() { done <- f(ctx, rec) }()
	select {
	case err := <-done:
		rec.replay(o)
		return err
	case <-stall:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recordedObservations keeps a callback's observations for the collection
// it runs for, which may have moved on when the callback returns.
type recordedObservations struct {
	embedded.Observer
	mu     sync.Mutex
	ints   []observation[int64, metric.Int64Observable]
	floats []observation[float64, metric.Float64Observable]
}

type observation[V any, I any] struct {
	instrument I
	value      V
	opts       []metric.ObserveOption
}

func (r *recordedObservations) ObserveInt64(i metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ints = append(r.ints, observation[int64, metric.Int64Observable]{i, v, opts})
}

func (r *recordedObservations) ObserveFloat64(i metric.Float64Observable, v float64, opts ...metric.ObserveOption) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.floats = append(r.floats, observation[float64, metric.Float64Observable]{i, v, opts})
}

func (r *recordedObservations) replay(o metric.Observer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ob := range r.ints {
		o.ObserveInt64(ob.instrument, ob.value, ob.opts...)
	}
	for _, ob := range r.floats {
		o.ObserveFloat64(ob.instrument, ob.value, ob.opts...)
	}
}
