package playground

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestPageLoadsOnlyEmbeddedAssets fetches the page and every script and
// style it names: each is served from the binary, and nothing points at
// another host.
func TestPageLoadsOnlyEmbeddedAssets(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	page := get(t, srv.URL+"/", "text/html")
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 6 {
		t.Fatalf("page names %d assets, want the 4 scripts and 2 styles: %s", len(refs), page)
	}
	want := map[string]string{".js": "javascript", ".css": "text/css"}
	for _, m := range refs {
		ref := m[1]
		if ref == "data:," {
			continue
		}
		if !strings.HasPrefix(ref, AssetPrefix) {
			t.Errorf("page loads %q, not from %s", ref, AssetPrefix)
			continue
		}
		for ext, ctype := range want {
			if strings.HasSuffix(ref, ext) {
				if body := get(t, srv.URL+ref, ctype); len(body) == 0 {
					t.Errorf("%s is empty", ref)
				}
			}
		}
	}
	for _, p := range []string{AssetPrefix, AssetPrefix + "vendor/", AssetPrefix + "nothing.js"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func get(t *testing.T, url, ctype string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); !strings.Contains(got, ctype) {
		t.Errorf("GET %s: Content-Type %q, want %s", url, got, ctype)
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET %s: no Content-Security-Policy", url)
	}
	return string(body)
}
