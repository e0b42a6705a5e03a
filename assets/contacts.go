package assets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Contact is a person who writes for a customer.
type Contact struct {
	CustomerID string `json:"customer_id"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	Phone      string `json:"phone,omitempty"`
	Role       string `json:"role,omitempty"`
	Language   string `json:"language"`
}

// Sender is whose an e-mail address is: a known contact, or someone of a
// customer's e-mail domain (Contact then holds only the address and the
// customer's language).
type Sender struct {
	CustomerID string
	Contact    Contact
	Known      bool // a listed contact, not only a domain
}

// MatchSender finds the customer an address writes for: a contact of an
// active customer first, else a customer's e-mail domain. ErrNotFound when
// neither matches.
func (s *Store) MatchSender(ctx context.Context, address string) (Sender, error) {
	addr := strings.ToLower(strings.TrimSpace(address))
	var k Contact
	err := s.db.QueryRowContext(ctx, `SELECT k.customer_id, k.name, k.email, k.phone, k.role, k.language
		FROM customer_contacts k JOIN customers c ON c.id = k.customer_id
		WHERE k.email = $1 AND c.retired_at IS NULL`, addr).Scan(&k.CustomerID, &k.Name, &k.Email, &k.Phone, &k.Role, &k.Language)
	if err == nil {
		return Sender{CustomerID: k.CustomerID, Contact: k, Known: true}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Sender{}, fmt.Errorf("assets: match sender: %w", err)
	}
	_, domain, ok := strings.Cut(addr, "@")
	if !ok || domain == "" {
		return Sender{}, ErrNotFound
	}
	var id, lang string
	err = s.db.QueryRowContext(ctx, `SELECT id, language FROM customers WHERE $1 = ANY (email_domains) AND retired_at IS NULL`, domain).
		Scan(&id, &lang)
	if errors.Is(err, sql.ErrNoRows) {
		return Sender{}, ErrNotFound
	}
	if err != nil {
		return Sender{}, fmt.Errorf("assets: match sender domain: %w", err)
	}
	return Sender{CustomerID: id, Contact: Contact{CustomerID: id, Email: addr, Language: lang}}, nil
}
