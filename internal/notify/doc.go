// Package notify owns talking to the outside world about invoices and
// messages: sending e-mail over SMTP (HTML and text bodies from templates) and
// SMS through a tenant's HTTP SMS provider. It does not decide what to send or
// record deliveries; the job handlers in workers/ do.
package notify
