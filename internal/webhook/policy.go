package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ispgraph/ispgraph/internal/apperr"
)

// Policy decides which endpoint URLs and addresses webhooks may reach. The
// default (AllowPrivate false) is HTTPS to public addresses only, so a tenant
// cannot make the server call into its own network (SSRF); AllowPrivate
// (ISPGRAPH_WEBHOOK_ALLOW_PRIVATE) also allows plain HTTP and loopback,
// private, shared (100.64/10) and link-local addresses, for tests, the soak
// and on-premises installations.
type Policy struct {
	AllowPrivate bool
	// Resolver looks host names up at registration (nil: net.DefaultResolver).
	Resolver *net.Resolver
}

// errAddressNotAllowed is the dial-time refusal of an address.
var errAddressNotAllowed = errors.New("address not allowed for webhooks")

// sharedSpace is the carrier-grade NAT range (RFC 6598), private in practice
// and common on ISP networks.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// AddrAllowed reports whether a webhook may connect to ip.
func (p Policy) AddrAllowed(ip netip.Addr) bool {
	if p.AllowPrivate {
		return true
	}
	ip = ip.Unmap()
	return ip.IsValid() && ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() &&
		!ip.IsLinkLocalUnicast() && !sharedSpace.Contains(ip)
}

// CheckURL validates an endpoint URL at registration: absolute, HTTPS (or
// HTTP when allowed), a host and no credentials, and every address the host
// resolves to allowed. It returns the URL normalised, or a BAD_USER_INPUT
// error that says what to change.
func (p Policy) CheckURL(ctx context.Context, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", apperr.E(apperr.BadUserInput, "url must be an absolute URL such as https://partner.example/ispgraph/webhooks")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowPrivate:
	case u.Scheme == "http":
		return "", apperr.E(apperr.BadUserInput, "url must use https: webhooks are not sent over plain http")
	default:
		return "", apperr.E(apperr.BadUserInput, "url must use https (got %q)", u.Scheme)
	}
	if u.User != nil {
		return "", apperr.E(apperr.BadUserInput, "url must not carry a user name or password: the signature authenticates each request")
	}
	u.Fragment = ""
	if p.AllowPrivate {
		return u.String(), nil
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "", apperr.E(apperr.BadUserInput, "url must not point at this server (%s)", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !p.AddrAllowed(ip) {
			return "", apperr.E(apperr.BadUserInput, "url points at %s, a private, loopback or link-local address: webhooks go to public addresses only", ip)
		}
		return u.String(), nil
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(lctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return "", apperr.E(apperr.BadUserInput, "the host %q of url does not resolve: check the name", host)
	}
	for _, a := range addrs {
		if !p.AddrAllowed(a) {
			return "", apperr.E(apperr.BadUserInput, "the host %q of url resolves to %s, a private, loopback or link-local address: webhooks go to public addresses only", host, a.Unmap())
		}
	}
	return u.String(), nil
}

// HTTPClient returns the client deliveries are posted with: the whole
// request and answer within timeout, redirects not followed (a 3xx is a
// failed attempt), no proxy from the environment, and every connection's
// resolved address checked against the policy as it is dialled, so a name
// that resolves to a private address after registration is still refused.
func (p Policy) HTTPClient(timeout time.Duration) *http.Client {
	d := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", errAddressNotAllowed, address)
			}
			if !p.AddrAllowed(ap.Addr()) {
				return fmt.Errorf("%w: %s is private, loopback or link-local", errAddressNotAllowed, ap.Addr().Unmap())
			}
			return nil
		},
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
