package assets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The reads below are what the ticket, intake and notify stages need of
// the inventory to word a ticket and its messages. They take the caller's
// transaction (or pool): a ticket opened in an outage storm reads its
// customer, site and devices inside the transaction that opens it, and a
// second pooled connection per ticket would exhaust the pool.

// Addressee is how a customer is written to: its name, language and time
// zone, and its notification addresses (a comma-separated list, empty for
// none).
type Addressee struct {
	CustomerID, Name, Language, TimeZone, NotifyEmail string
}

// AddresseeTx reads how customer id is written to; ErrNotFound when there
// is no such customer.
func AddresseeTx(ctx context.Context, q sqlx.QueryerContext, id string) (Addressee, error) {
	a := Addressee{CustomerID: id}
	err := q.QueryRowxContext(ctx, `SELECT name, language, time_zone, notify_email FROM customers WHERE id = $1`, id).
		Scan(&a.Name, &a.Language, &a.TimeZone, &a.NotifyEmail)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("assets: customer %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("assets: customer %s: %w", id, err)
	}
	return a, nil
}

// SiteAndLanguageTx reads a site's name and its customer's language, what
// a title about the site is written with; ErrNotFound when there is no
// such site.
func SiteAndLanguageTx(ctx context.Context, q sqlx.QueryerContext, siteID string) (name, language string, err error) {
	err = q.QueryRowxContext(ctx, `SELECT s.name, c.language FROM sites s JOIN customers c ON c.id = s.customer_id WHERE s.id = $1`,
		siteID).Scan(&name, &language)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("assets: site %s: %w", siteID, ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("assets: site %s: %w", siteID, err)
	}
	return name, language, nil
}

// SiteNamesTx returns the names of the sites of ids that exist, sorted by
// name, in one query.
func SiteNamesTx(ctx context.Context, q sqlx.QueryerContext, ids []string) ([]string, error) {
	var names []string
	if len(ids) == 0 {
		return names, nil
	}
	if err := sqlx.SelectContext(ctx, q, &names, `SELECT name FROM sites WHERE id = ANY ($1) ORDER BY name`, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("assets: site names: %w", err)
	}
	return names, nil
}

// DeviceNamesTx returns the names of the devices of ids that exist, in the
// order of ids, in one query.
func DeviceNamesTx(ctx context.Context, q sqlx.QueryerContext, ids []string) ([]string, error) {
	var names pq.StringArray
	if len(ids) == 0 {
		return []string{}, nil
	}
	if err := q.QueryRowxContext(ctx, `SELECT COALESCE(array_agg(name ORDER BY array_position($1, id)), '{}') FROM devices WHERE id = ANY ($1)`,
		pq.StringArray(ids)).Scan(&names); err != nil {
		return nil, fmt.Errorf("assets: device names: %w", err)
	}
	return names, nil
}

// LanguageTx is the language customer id reads its tickets in ("es",
// "en"): the words Vigía writes on its timelines follow it.
func LanguageTx(ctx context.Context, q sqlx.QueryerContext, id string) (string, error) {
	a, err := AddresseeTx(ctx, q, id)
	if err != nil {
		return "", err
	}
	return a.Language, nil
}
