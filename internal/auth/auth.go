// Package auth authenticates API callers by bearer token and console users
// by password and session, and tells handlers who is calling: NOC staff, a
// field engineer, or a hospital's user, whose reads are confined to their
// own customer. It keeps the accounts (tokens, console users, sessions,
// failed logins) and the portal seats they take.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// Roles.
const (
	RoleNOC      = "noc"      // sees and does everything
	RoleEngineer = "engineer" // sees devices and what is dispatched to them
	RoleCustomer = "customer" // sees only its own customer's sites, devices and tickets
)

// ErrInvalidToken means the token is unknown or revoked.
var ErrInvalidToken = errors.New("auth: invalid or revoked token")

// tokenPrefix makes Vigía tokens recognisable in a leaked config file.
const tokenPrefix = "vigia_"

// Principal is the authenticated caller.
type Principal struct {
	TokenID    int64
	Name       string
	Role       string
	CustomerID string // set for RoleCustomer
	EngineerID string // set for RoleEngineer when bound to an engineer
}

// CustomerScope is the customer the caller is confined to, or "" for all.
func (p Principal) CustomerScope() string {
	if p.Role == RoleCustomer {
		return p.CustomerID
	}
	return ""
}

type ctxKey struct{}

// FromContext returns the caller put there by Middleware.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// Tokens creates and checks API tokens, of which only the SHA-256 is stored:
// they carry 256 random bits, so a fast hash is safe and indexable.
type Tokens struct {
	db    *sqlx.DB
	now   func() time.Time
	seats SeatPlan // nil: no seat limit
}

// NewTokens returns a token store; now is the clock.
func NewTokens(db *sqlx.DB, now func() time.Time) *Tokens { return &Tokens{db: db, now: now} }

// WithSeats returns the token store limiting customer tokens to the
// portal seats of their plan (seed 004).
func (t *Tokens) WithSeats(plan SeatPlan) *Tokens {
	c := *t
	c.seats = plan
	return &c
}

// Create makes a token and returns it in clear, the only time it is seen.
func (t *Tokens) Create(ctx context.Context, name, role, customerID, engineerID string) (string, int64, error) {
	switch role {
	case RoleNOC, RoleEngineer:
		if customerID != "" {
			return "", 0, fmt.Errorf("auth: a %s token is not bound to a customer", role)
		}
	case RoleCustomer:
		if customerID == "" {
			return "", 0, errors.New("auth: a customer token needs the customer id")
		}
	default:
		return "", 0, fmt.Errorf("auth: unknown role %q (want noc, engineer or customer)", role)
	}
	if role != RoleEngineer && engineerID != "" {
		return "", 0, errors.New("auth: only engineer tokens name an engineer")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", 0, fmt.Errorf("auth: random: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	var id int64
	now := t.now()
	err := db.InTx(ctx, t.db, func(tx *sqlx.Tx) error {
		if err := ReserveSeatTx(ctx, tx, t.seats, role, customerID, now); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO api_tokens (name, role, customer_id, engineer_id, token_sha256, created_at)
			VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), $5, $6) RETURNING id`,
			name, role, customerID, engineerID, hash(token), now).Scan(&id)
	})
	if errors.Is(err, ErrNoSeats) {
		return "", 0, err
	}
	if err := SeatRefusal(err, customerID); errors.Is(err, ErrNoSeats) {
		return "", 0, err
	}
	if err != nil {
		if strings.Contains(err.Error(), "api_tokens_customer_id_fkey") {
			return "", 0, fmt.Errorf("auth: no customer %q", customerID)
		}
		return "", 0, fmt.Errorf("auth: create token: %w", err)
	}
	return token, id, nil
}

// Revoke disables a token by id.
func (t *Tokens) Revoke(ctx context.Context, id int64) error {
	res, err := t.db.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, t.now())
	if err != nil {
		return fmt.Errorf("auth: revoke token %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("auth: no active token %d", id)
	}
	return nil
}

// Authenticate returns the principal of a clear token.
func (t *Tokens) Authenticate(ctx context.Context, token string) (Principal, error) {
	var p Principal
	var customer, engineer sql.NullString
	err := t.db.QueryRowContext(ctx, `SELECT id, name, role, customer_id, engineer_id FROM api_tokens
		WHERE token_sha256 = $1 AND revoked_at IS NULL`, hash(token)).Scan(&p.TokenID, &p.Name, &p.Role, &customer, &engineer)
	if errors.Is(err, sql.ErrNoRows) {
		return p, ErrInvalidToken
	}
	if err != nil {
		return p, fmt.Errorf("auth: look up token: %w", err)
	}
	p.CustomerID, p.EngineerID = customer.String, engineer.String
	// Recording use once a minute at most keeps reads from becoming writes.
	t.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1
		AND (last_used_at IS NULL OR last_used_at < $2 - interval '1 minute')`, p.TokenID, t.now())
	return p, nil
}

func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Middleware authenticates every request by its bearer token: 401 without
// a valid one, 503 when the database cannot say.
func (t *Tokens) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigia"`)
			httpx.Fail(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer TOKEN (create one with `vigia token create`)")
			return
		}
		p, err := t.Authenticate(r.Context(), strings.TrimSpace(token))
		switch {
		case errors.Is(err, ErrInvalidToken):
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigia", error="invalid_token"`)
			httpx.Fail(w, http.StatusUnauthorized, "unauthorized", "invalid or revoked token")
			return
		case err != nil:
			httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "cannot check the token right now")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}
