package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/events"
)

// subscriptions is the graphql-ws transport on /graphql (the
// graphql-transport-ws protocol; the legacy graphql-ws one is accepted too).
// The credential is checked once, at connection_init; without one, or with a
// bad one, the connection is closed (4403). A browser may open it only from
// the server's own origin (the websocket library's origin check). Each
// connection holds at most MaxSubscriptions subscriptions at a time.
func subscriptions(o Options) transport.Websocket {
	limit := o.MaxSubscriptions
	if limit <= 0 {
		limit = DefaultMaxSubscriptions
	}
	return transport.Websocket{
		KeepAlivePingInterval: 20 * time.Second,
		InitTimeout:           10 * time.Second,
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			ctx, err := o.Auth.AuthenticateConnection(ctx, p.Authorization(), p.GetString(auth.OperatorTenantHeader))
			if err != nil {
				// The message goes to the client: the code and the message
				// only, never a cause.
				msg := "INTERNAL: internal error"
				var ae *apperr.Error
				if errors.As(err, &ae) {
					msg = fmt.Sprintf("%s: %s", ae.Code, ae.Message)
				}
				// graphql-transport-ws closes an unauthorised socket with
				// 4403; a close reason holds at most 123 bytes.
				reason := msg
				if len(reason) > 120 {
					reason = reason[:120]
				}
				ctx = transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, 4403), reason)
				return ctx, nil, errors.New(msg)
			}
			return events.WithConnectionLimit(ctx, limit), nil, nil
		},
	}
}
