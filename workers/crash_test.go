package workers_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/workers"
)

// TestHelperWorkerProcess is not a test: TestWorkerKilledMidPayment runs the
// test binary with it as a separate worker process, which it then kills.
func TestHelperWorkerProcess(t *testing.T) {
	if os.Getenv("ISPGRAPH_HELPER_WORKER") != "1" {
		t.Skip("helper process for TestWorkerKilledMidPayment")
	}
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, os.Getenv("HELPER_DB"), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := workers.NewRedisPool(os.Getenv("HELPER_REDIS"))
	w, err := workers.New(workers.Options{
		Client: db.Client, Dialect: db.Dialect, Redis: pool, Namespace: os.Getenv("HELPER_NS"),
		Gateways: testGateways(t, gateway.BaseURLs{Stripe: os.Getenv("HELPER_STRIPE")}), RelayInterval: 50 * time.Millisecond,
		Billing: &billing.Service{Client: db.Client}, Mikrotik: &mikrotik.Service{Client: db.Client, Pool: mikrotik.NewPool()},
		Mailer: &notify.Mailer{}, Auth: &auth.Service{Client: db.Client}, Webhooks: testWebhooks(t, db.Client),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	time.Sleep(time.Hour) // killed by the parent
}

// TestWorkerKilledMidPayment kills a worker process while its payment job
// waits on the provider, starts another worker, and checks that gocraft's
// dead-pool reaper hands the job over and the payment completes exactly once.
func TestWorkerKilledMidPayment(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for gocraft's dead-pool reaper (about 10 s)")
	}
	e := newEnv(t)
	prov := newProviders(t)
	inFlight := make(chan struct{}, 1)
	release := make(chan struct{})
	prov.block = func(id string) {
		if prov.count(id) == 1 { // the first attempt hangs until its process is killed
			inFlight <- struct{}{}
			<-release
		}
	}
	defer close(release)
	gw := e.gateway(paymentgateway.ProviderSTRIPE, map[string]any{"secret_key": "sk_test_123"})
	inv := e.invoice("10.00")
	p := e.payment(inv, gw, "pi_ok_crash")
	e.enqueuePayment(p)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ISPGRAPH_HELPER_WORKER=1", "HELPER_DB="+e.dbURL, "HELPER_REDIS="+e.redisURL,
		"HELPER_NS="+e.namespace, "HELPER_STRIPE="+prov.stripe.URL)
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the helper worker never reached the provider")
	}
	// Kill -9 in the middle of the job: no drain, no cleanup.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := e.client.Payment.GetX(e.ctx, p.ID); got.Status != payment.StatusPENDING {
		t.Fatalf("payment %s before the restart", got.Status)
	}

	// Restart: a new worker pool reaps the dead one's in-progress job.
	o := e.options()
	o.Gateways = prov.gateways(t)
	e.start(o)
	eventually(t, 60*time.Second, "the payment to complete after the restart", func() bool {
		return e.client.Payment.GetX(e.ctx, p.ID).Status == payment.StatusCOMPLETED
	})
	time.Sleep(2 * time.Second) // would a duplicate run apply the payment again?
	got := e.client.Invoice.GetX(e.ctx, inv.ID)
	if got.AmountPaid.String() != "10.00" || got.Status != invoice.StatusPAID {
		t.Fatalf("invoice after the restart: paid %s, %s", got.AmountPaid, got.Status)
	}
	if n := prov.count("pi_ok_crash"); n != 2 {
		t.Errorf("provider asked %d times, want 2 (the killed attempt and the rerun)", n)
	}
	t.Logf("provider asked %s times", strconv.Itoa(prov.count("pi_ok_crash")))
}
