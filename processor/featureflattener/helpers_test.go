package featureflattener

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener/internal/metadata"
)

// Small, valid media heads, built the way the formats define them.

// pngHead is the PNG signature and a complete IHDR chunk of a 1x1 RGBA image.
func pngHead() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := []byte("IHDR")
	chunk = binary.BigEndian.AppendUint32(chunk, 1) // width
	chunk = binary.BigEndian.AppendUint32(chunk, 1) // height
	chunk = append(chunk, 8, 6, 0, 0, 0)            // bit depth, RGBA, compression, filter, interlace
	_ = binary.Write(&b, binary.BigEndian, uint32(len(chunk)-4))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// wavHead is the 44-byte RIFF/WAVE header of 16 kHz mono 16-bit PCM with no samples.
func wavHead() []byte {
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))     // PCM
	le(uint16(1))     // mono
	le(uint32(16000)) // sample rate
	le(uint32(32000)) // byte rate
	le(uint16(2))     // block align
	le(uint16(16))    // bits per sample
	b.WriteString("data")
	le(uint32(0))
	return b.Bytes()
}

// mp4Head is an ISO base media ftyp box (isom, compatible isom/iso2/mp41) and an empty free box.
func mp4Head() []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint32(28))
	b.WriteString("ftypisom")
	_ = binary.Write(&b, binary.BigEndian, uint32(0x200))
	b.WriteString("isomiso2mp41")
	_ = binary.Write(&b, binary.BigEndian, uint32(8))
	b.WriteString("free")
	return b.Bytes()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// newTestProcessor builds the processor through its factory, as the collector would.
func newTestProcessor(t testing.TB, cfg *Config) (func(plog.Logs) plog.Logs, *componenttest.Telemetry) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return func(ld plog.Logs) plog.Logs {
		t.Helper()
		sink.Reset()
		if err := p.ConsumeLogs(context.Background(), ld); err != nil {
			t.Fatal(err)
		}
		if len(sink.AllLogs()) != 1 {
			t.Fatalf("got %d batches downstream", len(sink.AllLogs()))
		}
		return sink.AllLogs()[0]
	}, tel
}

// droppedCounts reads otelcol_featureflattener_dropped_values by reason.
func droppedCounts(t *testing.T, tel *componenttest.Telemetry) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	m, err := tel.GetMetric("otelcol_featureflattener_dropped_values")
	if err != nil {
		return got
	}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value("reason")
		got[r.AsString()] += dp.Value
	}
	return got
}

// records lists every log record of ld, in order.
func records(ld plog.Logs) []plog.LogRecord {
	var out []plog.LogRecord
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				out = append(out, lr)
			}
		}
	}
	return out
}

// oneRecord builds a Logs with one record from raw resource attributes,
// record attributes and body.
func oneRecord(t testing.TB, res, attrs map[string]any, body any) plog.Logs {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	if err := rl.Resource().Attributes().FromRaw(res); err != nil {
		t.Fatal(err)
	}
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	if err := lr.Attributes().FromRaw(attrs); err != nil {
		t.Fatal(err)
	}
	if body != nil {
		if err := lr.Body().FromRaw(body); err != nil {
			t.Fatal(err)
		}
	}
	lr.SetTimestamp(pcommon.Timestamp(1_600_000_000_000_000_000))
	return ld
}

func strSlice(v pcommon.Value, ok bool) []string {
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	var out []string
	for _, e := range v.Slice().All() {
		out = append(out, e.AsString())
	}
	return out
}

// componentType is the component's type (from metadata.yaml) for the tests.
var componentType = metadata.Type
