// Command scoring-service is an example model scoring service that sends its
// model data the OpenTelemetry way: every input and prediction row is an OTel
// log record following the data contract, exported with OTLP to
// otelcol-modeldata, which writes them in the Azure ML modeldata CSV layout;
// its request spans go through the same collector to Application Insights.
//
//	go run ./examples/scoring-service        # listens on :8080, exports to localhost:4318
//	curl -s localhost:8080/score -d '{"data": [[31, 5000.5, "Redmond"]]}'
//
// Settings are the standard OpenTelemetry environment variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, ...)
// plus MODEL_NAME, MODEL_VERSION and LISTEN_ADDR.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

const instrumentationName = "github.com/otelcol-modeldata/otelcol-modeldata/examples/scoring-service"

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "best-model-scoring")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return err
	}
	loggers, tracers, err := newProviders(ctx, res)
	if err != nil {
		return err
	}
	defer func() {
		// Flush what is batched: rows emitted just before a shutdown are not lost.
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := errors.Join(loggers.Shutdown(shutdownCtx), tracers.Shutdown(shutdownCtx)); err != nil {
			log.Printf("flushing telemetry: %v", err)
		}
	}()
	otel.SetTracerProvider(tracers)

	svc := &Service{
		Logger:       loggers.Logger(instrumentationName),
		Tracer:       tracers.Tracer(instrumentationName),
		ModelName:    getenv("MODEL_NAME", "best_model"),
		ModelVersion: getenv("MODEL_VERSION", "10"),
		Now:          time.Now,
	}
	server := &http.Server{
		Addr:              getenv("LISTEN_ADDR", ":8080"),
		Handler:           newMux(svc, tracers),
		ReadHeaderTimeout: 5 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- server.ListenAndServe() }()
	log.Printf("scoring service on %s, model %s version %s", server.Addr, svc.ModelName, svc.ModelVersion)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return server.Shutdown(shutdownCtx)
}

// newProviders builds the log and trace providers exporting OTLP/HTTP; the
// exporters read OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318).
func newProviders(ctx context.Context, res *resource.Resource, logOpts ...otlploghttp.Option) (*sdklog.LoggerProvider, *sdktrace.TracerProvider, error) {
	logExporter, err := otlploghttp.New(ctx, logOpts...)
	if err != nil {
		return nil, nil, err
	}
	traceExporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, err
	}
	loggers := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(logExporter)))
	tracers := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(traceExporter))
	return loggers, tracers, nil
}

// newMux serves /score with a server span per request, and /healthz.
func newMux(svc *Service, tracers *sdktrace.TracerProvider) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/score", otelhttp.NewHandler(svc, "POST /score", otelhttp.WithTracerProvider(tracers)))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}
