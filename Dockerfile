# Multi-stage: build the collector with ocb (as `make build` does), run it as non-root from a minimal base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build && mkdir -p /out/data && cp _build/otelcol-modeldata /out/

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/otelcol-modeldata /otelcol-modeldata
COPY --from=build --chown=65532:65532 /out/data /var/lib/otelcol-modeldata
COPY examples/otel-config.yaml /etc/otelcol-modeldata/config.yaml
ENV OTELCOL_LISTEN_HOST=0.0.0.0 \
    OTELCOL_DATA_DIR=/var/lib/otelcol-modeldata
USER 65532:65532
WORKDIR /var/lib/otelcol-modeldata
# 4320 collect API, 4317/4318 OTLP, 13133 health_check
EXPOSE 4320 4317 4318 13133
ENTRYPOINT ["/otelcol-modeldata"]
CMD ["--config", "/etc/otelcol-modeldata/config.yaml"]
