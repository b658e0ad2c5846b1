// Package observability owns what an operator sees of a running ispgraph: the structured
// logger, the Prometheus metrics and their registry, request ids, the access log, and the
// /healthz and /readyz endpoints.
package observability
