package workers_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/money"
)

// TestProcessPaymentThroughput measures ProcessPayment jobs per second through
// the whole path (outbox relay → Redis → workers → Postgres). It runs only
// when ISPGRAPH_BENCH_PAYMENTS is set (the number of payments per variant):
//
//	ISPGRAPH_BENCH_PAYMENTS=2000 go test -count=1 -run TestProcessPaymentThroughput -v ./workers
//
// ISPGRAPH_BENCH_CONCURRENCY sets the general pool's concurrency (default 2).
func TestProcessPaymentThroughput(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ISPGRAPH_BENCH_PAYMENTS"))
	if n <= 0 {
		t.Skip("set ISPGRAPH_BENCH_PAYMENTS=N to measure")
	}
	for _, variant := range []string{"cash", "stripe"} {
		t.Run(variant, func(t *testing.T) {
			e := newEnv(t)
			prov := newProviders(t)
			var gw *ent.PaymentGateway
			if variant == "stripe" {
				gw = e.gateway(paymentgateway.ProviderSTRIPE, map[string]any{"secret_key": "sk_test_123"})
			}
			now := time.Now()
			invs := e.client.Invoice.MapCreateBulk(make([]int, n), func(c *ent.InvoiceCreate, i int) {
				c.SetNetworkUserID(e.userID).SetNumber(fmt.Sprintf("B-%06d", i)).
					SetAmount(money.MustParse("10.00")).SetTax(0).SetTotal(money.MustParse("10.00")).
					SetPeriodStart(now.AddDate(0, 0, -i)).SetPeriodEnd(now).SetIssuedAt(now).SetDueDate(now)
			}).SaveX(e.ctx)
			pays := e.client.Payment.MapCreateBulk(invs, func(c *ent.PaymentCreate, i int) {
				c.SetNetworkUserID(e.userID).SetInvoiceID(invs[i].ID).SetNumber(fmt.Sprintf("P-%06d", i)).
					SetAmount(money.MustParse("10.00")).SetIdempotencyKey(fmt.Sprintf("b-%d", i))
				if gw != nil {
					c.SetMethod(payment.MethodGATEWAY).SetPaymentGatewayID(gw.ID).SetTransactionID(fmt.Sprintf("pi_ok_%d", i))
				} else {
					c.SetMethod(payment.MethodCASH)
				}
			}).SaveX(e.ctx)
			e.client.OutboxJob.MapCreateBulk(pays, func(c *ent.OutboxJobCreate, i int) {
				m, _ := jobs.ToMap(jobs.ProcessPaymentArgs{TenantID: e.tenantID, PaymentID: pays[i].ID})
				c.SetJobName(jobs.ProcessPayment).SetArgs(m)
			}).ExecX(e.ctx)

			o := e.options()
			o.Logger = discardLogger()
			o.Gateways = prov.gateways(t)
			if c, _ := strconv.Atoi(os.Getenv("ISPGRAPH_BENCH_CONCURRENCY")); c > 0 {
				o.Concurrency = uint(c)
			}
			start := time.Now()
			e.start(o)
			eventually(t, 10*time.Minute, "all payments", func() bool {
				return e.client.Payment.Query().Where(payment.StatusEQ(payment.StatusCOMPLETED)).CountX(e.ctx) == n
			})
			d := time.Since(start)
			t.Logf("%s: %d ProcessPayment jobs in %s = %.0f jobs/s (workers: %d general + 1 payment)", variant, n, d.Round(time.Millisecond), float64(n)/d.Seconds(), max(o.Concurrency, 2))
		})
	}
}
