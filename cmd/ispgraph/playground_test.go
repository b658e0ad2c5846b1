package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ispgraph/ispgraph/internal/testenv"
)

// TestPlaygroundInBrowser drives Debian's Chromium, headless, through the
// playground of the embedded default: the page loads with nothing from the
// network, the staff user signs in, runs the partner query and sees its
// answer; no request leaves 127.0.0.1 and nothing lands in browser storage.
// It skips only where Chromium is missing and CI is not set (.ci/run
// installs it).
func TestPlaygroundInBrowser(t *testing.T) {
	chromium := testenv.Tool(t, "chromium", "/usr/bin", "/usr/lib/chromium")
	_, base := startServer(t, map[string]string{"ISPGRAPH_DATA_DIR": t.TempDir(), "ISPGRAPH_DEMO_PASSWORD": "demo-secret-1"})
	origin, _ := url.Parse(base)

	// What the API itself says the page should show.
	token := login(t, base, "demo", "admin@demo.example", "demo-secret-1")
	want := partnerPage(t, base, token, 5, "")

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		// Belt and braces: even a request the page made to another host
		// would not be resolved (it is still recorded and fails the test).
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()

	var mu sync.Mutex
	var requests, problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if strings.HasPrefix(u, "data:") && len(u) > 40 {
				u = u[:40] + "…"
			}
			requests = append(requests, ev.Request.Method+" "+u)
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text+" "+exceptionText(ev.ExceptionDetails))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console.error: "+strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			// Content-Security-Policy refusals and failed loads land here.
			if ev.Entry.Level == cdplog.EntryLevelError {
				problems = append(problems, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	// Only after the browser has started: a deadline on the context of the
	// first call would bound the browser's whole life.
	tctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTimeout()
	fail := func(step string, err error) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s: %v\nrequests:\n  %s\nproblems:\n  %s", step, err, strings.Join(requests, "\n  "), strings.Join(problems, "\n  "))
	}

	err = chromedp.Do(tctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-container .graphiql-execute-button")),
		chromedp.SendKeys(chromedp.ID("tenant"), "demo"),
		chromedp.SendKeys(chromedp.ID("email"), "admin@demo.example"),
		chromedp.SendKeys(chromedp.ID("password"), "demo-secret-1"),
		chromedp.Click(chromedp.ID("signin-button")),
		chromedp.WaitVisible(chromedp.ID("signout-button")),
	)
	if err != nil {
		fail("signing in", err)
	}
	status, err := chromedp.Run(tctx, chromedp.Text(chromedp.ID("signin-status")))
	if err != nil {
		fail("reading the sign-in status", err)
	}
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(".graphiql-execute-button"))); err != nil {
		fail("running the query", err)
	}
	text, err := chromedp.Run(tctx, chromedp.Poll[string](`(() => {
			const cm = document.querySelector('.graphiql-response .CodeMirror');
			const v = cm && cm.CodeMirror ? cm.CodeMirror.getValue() : '';
			return v.includes('"totalCount"') || v.includes('"errors"') ? v : false;
		})()`, chromedp.WithPollingTimeout(time.Minute)))
	if err != nil {
		fail("waiting for the answer", err)
	}
	stored, err := chromedp.Run(tctx, chromedp.Evaluate[string](
		`JSON.stringify({local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage), cookie: document.cookie})`))
	if err != nil {
		fail("reading browser storage", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(status, "Signed in as admin@demo.example") {
		t.Errorf("sign-in status %q", status)
	}

	var got struct {
		Data   billingPage
		Errors []any
	}
	if err := json.Unmarshal([]byte(text), &got); err != nil {
		t.Fatalf("the response pane holds no JSON (%v): %s", err, text)
	}
	if len(got.Errors) > 0 || got.Data.NetworkUsers.TotalCount != want.NetworkUsers.TotalCount ||
		len(got.Data.NetworkUsers.Edges) != len(want.NetworkUsers.Edges) ||
		got.Data.NetworkUsers.Edges[0].Node.Username != want.NetworkUsers.Edges[0].Node.Username {
		t.Errorf("the playground shows\n%s\nwant totalCount %d and first subscriber %s",
			text, want.NetworkUsers.TotalCount, want.NetworkUsers.Edges[0].Node.Username)
	}

	if stored != `{"local":{},"session":{},"cookie":""}` {
		t.Errorf("the page wrote to browser storage: %s", stored)
	}
	var posts int
	for _, r := range requests {
		method, raw, _ := strings.Cut(r, " ")
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "data" {
			continue
		}
		if u.Host != origin.Host {
			t.Errorf("the page requested %s (only %s is allowed)", r, origin.Host)
		}
		if method == "POST" && u.Path == "/graphql" {
			posts++
		}
	}
	// Sign-in, the query, and the schema fetched before and after signing in.
	if posts < 3 {
		t.Errorf("%d POSTs to /graphql seen, want at least 3 (sign-in, schema, query):\n  %s", posts, strings.Join(requests, "\n  "))
	}
	if len(problems) > 0 {
		t.Errorf("the page reported errors:\n  %s", strings.Join(problems, "\n  "))
	}
	t.Logf("%d requests seen (host %s); %d POSTs to /graphql", len(requests), origin.Host, posts)
	if t.Failed() {
		t.Logf("requests:\n  %s", strings.Join(requests, "\n  "))
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return fmt.Sprintf("at %s:%d", d.URL, d.LineNumber)
}
