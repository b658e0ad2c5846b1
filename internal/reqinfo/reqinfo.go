// Package reqinfo owns the facts about an HTTP request that code below the
// transport needs (the Host header for tenant resolution, the client address
// for audit and rate limits), carried in the context.
package reqinfo

import (
	"context"
	"net"
	"net/http"
)

// Info describes the request that started the work in a context.
type Info struct {
	Host    string // Host header, without port
	Address string // client IP address
}

type ctxKey struct{}

// NewContext returns ctx carrying info.
func NewContext(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// From returns the request info in ctx (zero when there is none).
func From(ctx context.Context) Info {
	info, _ := ctx.Value(ctxKey{}).(Info)
	return info
}

// Middleware records the request's host and client address in its context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		addr := r.RemoteAddr
		if h, _, err := net.SplitHostPort(addr); err == nil {
			addr = h
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), Info{Host: host, Address: addr})))
	})
}
