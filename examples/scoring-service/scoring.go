package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// The example model: a credit score from three features.
var (
	inputFeatures      = []string{"age", "income", "city"}
	predictionFeatures = []string{"score", "approved"}
)

func predict(age, income float64) (score float64, approved bool) {
	score = 1 / (1 + math.Exp(-(0.03*(age-40) + 0.0004*(income-3000))))
	return score, score >= 0.5
}

// Service is the /score handler. It answers with the predictions and emits
// every input and prediction row as an OTel log record under the data
// contract (internal/contract), so the collector writes them to the
// modeldata CSV layout; the request's span goes out through the tracer.
type Service struct {
	Logger       otellog.Logger
	Tracer       trace.Tracer
	ModelName    string
	ModelVersion string
	// Now is the clock (tests fix it).
	Now func() time.Time
}

type scoreRequest struct {
	// Data holds rows of [age, income, city].
	Data [][]any `json:"data"`
}

type prediction struct {
	Score    float64 `json:"score"`
	Approved bool    `json:"approved"`
}

type scoreResponse struct {
	Predictions   []prediction `json:"predictions"`
	CorrelationID string       `json:"correlation_id"`
	RequestID     string       `json:"request_id"`
}

// maxBody bounds a scoring request.
const maxBody = 1 << 20

func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a JSON body {\"data\": [[age, income, city], ...]}", http.StatusMethodNotAllowed)
		return
	}
	var req scoreRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(req.Data) == 0 {
		http.Error(w, "data has no rows", http.StatusBadRequest)
		return
	}
	rows := make([]inputRow, len(req.Data))
	for i, raw := range req.Data {
		row, err := parseRow(raw)
		if err != nil {
			http.Error(w, fmt.Sprintf("data[%d]: %v", i, err), http.StatusBadRequest)
			return
		}
		rows[i] = row
	}

	ctx := r.Context()
	// One scoring timestamp, correlation id and request id for the request:
	// inputs and predictions carry the same, so they land side by side and join.
	scoredAt := s.Now().UTC()
	requestID := r.Header.Get("X-Request-Id")
	if requestID == "" {
		requestID = uuid.NewString()
	}
	correlationID := contract.NewCorrelationID(r.Header.Get("X-Correlation-Id"))
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String(contract.AttrRequestID, requestID),
		attribute.String(contract.AttrCorrelationID, correlationID))

	_, span := s.Tracer.Start(ctx, "model.predict", trace.WithAttributes(
		attribute.String(contract.AttrModelName, s.ModelName), attribute.Int("rows", len(rows))))
	resp := scoreResponse{CorrelationID: correlationID, RequestID: requestID, Predictions: make([]prediction, len(rows))}
	for i, row := range rows {
		score, approved := predict(row.age, row.income)
		resp.Predictions[i] = prediction{Score: score, Approved: approved}
	}
	span.End()

	meta := rowMeta{correlationID: correlationID, requestID: requestID, scoredAt: scoredAt}
	for i, row := range rows {
		s.emit(ctx, contract.DesignationInputs, inputFeatures, meta,
			attribute.Float64("age", row.age), attribute.Float64("income", row.income), attribute.String("city", row.city))
		p := resp.Predictions[i]
		s.emit(ctx, contract.DesignationPredictions, predictionFeatures, meta,
			attribute.Float64("score", p.Score), attribute.Bool("approved", p.Approved))
	}

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

type rowMeta struct {
	correlationID, requestID string
	scoredAt                 time.Time
}

// emit writes one model data row as a log record: the contract attributes,
// the features as the body map, the scoring time as the timestamp. The
// request's context links the record to its trace.
func (s *Service) emit(ctx context.Context, designation string, names []string, meta rowMeta, features ...attribute.KeyValue) {
	var rec otellog.Record
	rec.SetEventName(contract.EventName)
	rec.SetTimestamp(meta.scoredAt)
	rec.SetSeverity(otellog.SeverityInfo)
	rec.SetBody(attribute.MapValue(features...))
	rec.AddAttributes(
		attribute.String(contract.AttrModelName, s.ModelName),
		attribute.String(contract.AttrModelVersion, s.ModelVersion),
		attribute.String(contract.AttrDesignation, designation),
		attribute.String(contract.AttrCorrelationID, meta.correlationID),
		attribute.String(contract.AttrRequestID, meta.requestID),
		attribute.StringSlice(contract.AttrFeatureNames, names),
	)
	s.Logger.Emit(ctx, rec)
}

type inputRow struct {
	age, income float64
	city        string
}

func parseRow(raw []any) (inputRow, error) {
	if len(raw) != len(inputFeatures) {
		return inputRow{}, fmt.Errorf("%d values, want %d (%v)", len(raw), len(inputFeatures), inputFeatures)
	}
	var row inputRow
	var err error
	if row.age, err = number(raw[0]); err != nil {
		return row, fmt.Errorf("age: %w", err)
	}
	if row.income, err = number(raw[1]); err != nil {
		return row, fmt.Errorf("income: %w", err)
	}
	city, ok := raw[2].(string)
	if !ok {
		return row, fmt.Errorf("city: %v is not a string", raw[2])
	}
	row.city = city
	return row, nil
}

func number(v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	return n.Float64()
}
