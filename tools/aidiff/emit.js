// One fixed set of telemetry, exported at the same time through Microsoft's
// Azure Monitor exporters (to AI_CONNECTION_STRING) and as OTLP/HTTP (to
// OTLP_ENDPOINT), for the appinsights exporter's differential test
// (exporter/appinsightsexporter/aidiff_test.go). Both sides see the very same
// spans, log records and metric points: same ids, same timestamps.
"use strict";

const os = require("node:os");
const { trace, ROOT_CONTEXT, SpanKind, SpanStatusCode } = require("@opentelemetry/api");
const { SeverityNumber } = require("@opentelemetry/api-logs");
const { resourceFromAttributes, defaultResource } = require("@opentelemetry/resources");
const { BasicTracerProvider, BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { LoggerProvider, BatchLogRecordProcessor } = require("@opentelemetry/sdk-logs");
const { MeterProvider, PeriodicExportingMetricReader } = require("@opentelemetry/sdk-metrics");
const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http");
const { OTLPLogExporter } = require("@opentelemetry/exporter-logs-otlp-http");
const { OTLPMetricExporter } = require("@opentelemetry/exporter-metrics-otlp-http");
const {
  AzureMonitorTraceExporter,
  AzureMonitorLogExporter,
  AzureMonitorMetricExporter,
} = require("@azure/monitor-opentelemetry-exporter");

const connectionString = process.env.AI_CONNECTION_STRING;
const otlp = process.env.OTLP_ENDPOINT;
if (!connectionString || !otlp) {
  console.error("AI_CONNECTION_STRING and OTLP_ENDPOINT must be set");
  process.exit(2);
}
const azureOptions = { connectionString, disableOfflineStorage: true };

// Fixed times: spans start 10 s in the past, with sub-millisecond durations.
const base = Date.now() - 10_000;
const at = (ms) => [Math.floor((base + ms) / 1000), Math.round(((base + ms) % 1000) * 1e6)];
const atNanos = (ms, extraNanos) => {
  const t = at(ms);
  return [t[0], t[1] + extraNanos];
};

const resources = {
  // Named service with an instance id.
  scoring: resourceFromAttributes({
    "service.name": "scoring",
    "service.namespace": "ml",
    "service.version": "1.4.2",
    "service.instance.id": "scoring-7f9c",
    "deployment.environment.name": "test",
  }),
  // No service name of its own, on Kubernetes: role and instance from the workload and pod.
  kubernetes: resourceFromAttributes({
    "k8s.deployment.name": "scorer",
    "k8s.replicaset.name": "scorer-5d8f7",
    "k8s.pod.name": "scorer-5d8f7-xk2p9",
    "k8s.namespace.name": "ml",
    "host.name": os.hostname(),
  }),
  // Neither instance id nor pod: the host name.
  batch: resourceFromAttributes({ "service.name": "batch-scorer", "host.name": os.hostname() }),
};

const tracerProviders = [];
const loggerProviders = [];
const meterProviders = [];

function providers(resource) {
  resource = defaultResource().merge(resource);
  const tp = new BasicTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(new AzureMonitorTraceExporter(azureOptions)),
      new BatchSpanProcessor(new OTLPTraceExporter({ url: otlp + "/v1/traces" })),
    ],
  });
  const lp = new LoggerProvider({
    resource,
    processors: [
      new BatchLogRecordProcessor({ exporter: new AzureMonitorLogExporter(azureOptions) }),
      new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: otlp + "/v1/logs" }) }),
    ],
  });
  const hour = 3_600_000;
  const mp = new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({ exporter: new AzureMonitorMetricExporter(azureOptions), exportIntervalMillis: hour }),
      new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: otlp + "/v1/metrics" }), exportIntervalMillis: hour }),
    ],
  });
  tracerProviders.push(tp);
  loggerProviders.push(lp);
  meterProviders.push(mp);
  return { tracer: tp.getTracer("aidiff", "1.0.0"), logger: lp.getLogger("aidiff", "1.0.0"), meter: mp.getMeter("aidiff", "1.0.0") };
}

async function main() {
  const scoring = providers(resources.scoring);
  const kubernetes = providers(resources.kubernetes);
  const batch = providers(resources.batch);
  const tracer = scoring.tracer;

  // Server span with url.full, a route and a client address.
  const score = tracer.startSpan(
    "POST /score",
    {
      kind: SpanKind.SERVER,
      startTime: at(0),
      attributes: {
        "http.request.method": "POST",
        "url.full": "https://scoring.example.com:8443/score?model=churn",
        "url.scheme": "https",
        "url.path": "/score",
        "url.query": "model=churn",
        "http.route": "/score",
        "http.response.status_code": 200,
        "server.address": "scoring.example.com",
        "server.port": 8443,
        "client.address": "203.0.113.7",
        "user_agent.original": "python-requests/2.32.3",
        "network.protocol.version": "1.1",
        "model.name": "churn",
      },
    },
    ROOT_CONTEXT,
  );
  const scoreCtx = trace.setSpan(ROOT_CONTEXT, score);

  // Internal span with an exception event and a plain event.
  const flatten = tracer.startSpan("flatten features", { kind: SpanKind.INTERNAL, startTime: at(2) }, scoreCtx);
  flatten.addEvent("batch.flushed", { rows: 12, "model.name": "churn" }, at(3));
  flatten.addEvent(
    "exception",
    {
      "exception.type": "ValueError",
      "exception.message": "feature 'age' is not a number",
      "exception.stacktrace": "Traceback (most recent call last):\n  File \"score.py\", line 12, in flatten\nValueError: feature 'age' is not a number",
      "exception.escaped": false,
    },
    at(4),
  );
  flatten.end(atNanos(5, 250_300));

  // Client dependency to blob storage (default port in the URL).
  const put = tracer.startSpan(
    "PUT",
    {
      kind: SpanKind.CLIENT,
      startTime: at(6),
      attributes: {
        "http.request.method": "PUT",
        "url.full": "https://mdcaccount.blob.core.windows.net:443/modeldata/churn/2026/11/29/inputs.csv",
        "server.address": "mdcaccount.blob.core.windows.net",
        "server.port": 443,
        "http.response.status_code": 201,
        "az.service_request_id": "5f0c0c2e-0001-0042-0000-000000000000",
      },
    },
    scoreCtx,
  );
  put.end(atNanos(18, 420_100));

  // A database call, a message published, a failing gRPC call.
  tracer
    .startSpan(
      "SELECT features",
      {
        kind: SpanKind.CLIENT,
        startTime: at(10),
        attributes: {
          "db.system.name": "postgresql",
          "db.namespace": "features",
          "db.query.text": "SELECT * FROM features WHERE id = $1",
          "db.operation.name": "SELECT",
          "server.address": "pg.ml.svc",
          "server.port": 5432,
        },
      },
      scoreCtx,
    )
    .end(atNanos(12, 700));
  tracer
    .startSpan(
      "scores publish",
      {
        kind: SpanKind.PRODUCER,
        startTime: at(13),
        attributes: { "messaging.system": "kafka", "messaging.destination.name": "scores", "server.address": "broker", "server.port": 9092 },
      },
      scoreCtx,
    )
    .end(atNanos(14, 0));
  tracer
    .startSpan(
      "Scorer/Explain",
      {
        kind: SpanKind.CLIENT,
        startTime: at(15),
        attributes: {
          "rpc.system": "grpc",
          "rpc.service": "Scorer",
          "rpc.method": "Explain",
          "rpc.grpc.status_code": 14,
          "server.address": "explainer.ml.svc",
        },
      },
      scoreCtx,
    )
    .end(atNanos(16, 0));

  // Logs inside the request: a warning and a logged exception.
  scoring.logger.emit({
    timestamp: at(7),
    severityNumber: SeverityNumber.WARN,
    severityText: "WARN",
    body: "drift above threshold",
    attributes: { "model.name": "churn", psi: 0.31 },
    context: scoreCtx,
  });
  scoring.logger.emit({
    timestamp: at(8),
    severityNumber: SeverityNumber.ERROR,
    severityText: "ERROR",
    body: "scoring failed",
    attributes: {
      "exception.type": "KeyError",
      "exception.message": "'customer_id'",
      "exception.stacktrace": "Traceback (most recent call last):\n  File \"app.py\", line 40, in score\nKeyError: 'customer_id'",
      "code.function": "score",
    },
    context: scoreCtx,
  });
  // A custom event.
  scoring.logger.emit({
    timestamp: at(8),
    severityNumber: SeverityNumber.INFO,
    body: "promoted",
    attributes: { "microsoft.custom_event.name": "model.promoted", "model.version": "7" },
    context: scoreCtx,
  });
  // Outside any span, no severity, structured body.
  scoring.logger.emit({ timestamp: at(9), body: { model: "churn", rows: 3 } });
  score.end(atNanos(20, 123_456));

  // Server span without url.full: the URL from scheme, host and path.
  const health = tracer.startSpan(
    "GET",
    {
      kind: SpanKind.SERVER,
      startTime: at(30),
      attributes: {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/health",
        "url.query": "verbose=1",
        "server.address": "10.0.0.5",
        "server.port": 8080,
        "client.address": "10.0.0.9",
        "http.response.status_code": 200,
      },
    },
    ROOT_CONTEXT,
  );
  health.end(atNanos(31, 5_000));

  // A signed-in user's request in a session, linked to the scoring request;
  // a root internal span (no parent).
  const explain = tracer.startSpan(
    "GET /explain",
    {
      kind: SpanKind.SERVER,
      startTime: at(32),
      attributes: {
        "http.request.method": "GET",
        "http.route": "/explain",
        "http.response.status_code": 404,
        "enduser.id": "alice",
        "enduser.pseudo.id": "anon-42",
        "session.id": "sess-9",
        "network.peer.address": "10.0.0.20",
      },
      links: [{ context: score.spanContext() }],
    },
    ROOT_CONTEXT,
  );
  explain.end(atNanos(33, 0));
  tracer.startSpan("warm cache", { kind: SpanKind.INTERNAL, startTime: at(34) }, ROOT_CONTEXT).end(atNanos(35, 0));

  // Custom-named handler with a route, failing with 500 and status ERROR.
  const predict = tracer.startSpan(
    "predict handler",
    {
      kind: SpanKind.SERVER,
      startTime: at(40),
      attributes: {
        "http.request.method": "POST",
        "url.full": "http://scoring.ml.svc:80/v1/models/churn:predict",
        "http.route": "/v1/models/{name}:predict",
        "http.response.status_code": 500,
        "error.type": "500",
        "client.address": "10.0.0.12",
      },
    },
    ROOT_CONTEXT,
  );
  predict.setStatus({ code: SpanStatusCode.ERROR, message: "model not loaded" });
  predict.end(atNanos(52, 0));

  // The same kind of request from a Kubernetes workload and from a batch host.
  const ready = kubernetes.tracer.startSpan(
    "GET /ready",
    { kind: SpanKind.SERVER, startTime: at(60), attributes: { "http.request.method": "GET", "http.route": "/ready", "http.response.status_code": 200 } },
    ROOT_CONTEXT,
  );
  ready.end(atNanos(61, 0));
  kubernetes.logger.emit({ timestamp: at(62), severityNumber: SeverityNumber.INFO, severityText: "INFO", body: "model loaded" });
  const run = batch.tracer.startSpan("score batch", { kind: SpanKind.SERVER, startTime: at(70) }, ROOT_CONTEXT);
  run.end(atNanos(95, 500));

  // Metrics: a counter exported twice (5, then 2 more), an up-down counter,
  // a histogram recorded before the first export only.
  const requests = scoring.meter.createCounter("scoring.requests", { description: "requests scored" });
  const inflight = scoring.meter.createUpDownCounter("scoring.inflight");
  const latency = scoring.meter.createHistogram("scoring.latency", { unit: "ms" });
  requests.add(5, { "model.name": "churn" });
  inflight.add(3);
  latency.record(12.5, { "model.name": "churn" });
  latency.record(40, { "model.name": "churn" });
  latency.record(7.25, { "model.name": "churn" });
  kubernetes.meter.createCounter("loads").add(1);
  for (const mp of meterProviders) await mp.forceFlush();
  requests.add(2, { "model.name": "churn" });
  for (const mp of meterProviders) await mp.forceFlush();

  for (const p of [...tracerProviders, ...loggerProviders, ...meterProviders]) await p.forceFlush();
  for (const p of [...tracerProviders, ...loggerProviders, ...meterProviders]) await p.shutdown();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
