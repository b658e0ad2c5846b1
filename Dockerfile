# syntax=docker/dockerfile:1
# ispgraph container image: a static binary on a distroless base, run as a
# non-root user. Build: docker build -t ispgraph:local .
# See docs/deploy.md.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary (pure-Go SQLite and DNS resolver), no libc needed.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/ispgraph ./cmd/ispgraph \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ispgraph /usr/local/bin/ispgraph
# The embedded default keeps its SQLite file here; Postgres deployments leave it empty.
COPY --from=build --chown=65532:65532 /out/data /var/lib/ispgraph
ENV ISPGRAPH_ADDR=:8080 \
    ISPGRAPH_DATA_DIR=/var/lib/ispgraph \
    ISPGRAPH_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
# No shell or curl in the image: the binary asks its own /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/ispgraph", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ispgraph"]
CMD ["serve"]
