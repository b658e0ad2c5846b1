package transaction

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// MaxTxAttempts is how many times a transaction that failed on a deadlock or
// a serialization failure is run in all before the failure is returned.
const MaxTxAttempts = 3

// Retryable reports whether err is a Postgres serialization failure (40001)
// or a detected deadlock (40P01): the transaction was rolled back through no
// fault of its input, and running it again from the start may succeed.
func Retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40001" || pe.Code == "40P01"
}
