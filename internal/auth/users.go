package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/db"
)

// Errors of the user store. Their words are the ones `vigia user` and the
// console have always shown, so they still name the console.
var (
	ErrBadCredentials = errors.New("console: unknown user or wrong password")
	ErrNoSession      = errors.New("console: no such session or it has expired")
	ErrInvalidUser    = errors.New("console: invalid user")
	ErrUserExists     = errors.New("console: the username is taken")
)

// RateLimitError refuses a login after too many failures.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("console: too many failed logins; try again in %s", e.RetryAfter.Round(time.Second))
}

// Login limits: failures of one username from one address, and of one
// address over all usernames (password spraying), within LoginWindow; a
// session ends after SessionIdle without a request.
const (
	LoginWindow        = 15 * time.Minute
	MaxFailuresPerUser = 5
	maxFailuresPerAddr = 30
	SessionIdle        = 2 * time.Hour
)

const (
	sessionTouchEvery   = time.Minute
	sessionIDBytes      = 32
	csrfTokenBytes      = 32
	maxPasswordLength   = 1024
	defaultUserLanguage = "es"
)

// SessionLifetime is how long a session lasts however active it is (the
// console's session cookie lives as long).
const SessionLifetime = 12 * time.Hour

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{1,63}$`)

// User is a person who logs in to the console.
type User struct {
	ID         int64
	Username   string
	Role       string
	CustomerID string
	EngineerID string
	Language   string
	// TimeZone is the IANA zone the user reads times in; "" for the
	// default (their customer's zone, or the server's for staff).
	TimeZone  string
	CreatedAt time.Time
}

// Location is the user's time zone, or def when they chose none.
func (u User) Location(def *time.Location) *time.Location {
	if u.TimeZone != "" {
		if loc, err := time.LoadLocation(u.TimeZone); err == nil {
			return loc
		}
	}
	return def
}

// CheckTimeZone accepts "" (the default) or an IANA time zone name known
// to this machine; "Local" is refused, as it names no zone a reader knows.
func CheckTimeZone(tz string) error {
	if tz == "" {
		return nil
	}
	if len(tz) > 64 || tz == "Local" || strings.ContainsFunc(tz, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalidUser("unknown time zone %q: use an IANA name such as America/Bogota", tz)
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return invalidUser("unknown time zone %q: use an IANA name such as America/Bogota", tz)
	}
	return nil
}

// Principal is the user as the domain stores see a caller.
func (u User) Principal() Principal {
	return Principal{Name: u.Username, Role: u.Role, CustomerID: u.CustomerID, EngineerID: u.EngineerID}
}

// Session is a logged-in user with the session's CSRF token.
type Session struct {
	User User
	CSRF string
}

// UserInput creates a user.
type UserInput struct {
	Username   string
	Password   string
	Role       string
	CustomerID string
	EngineerID string
	Language   string // es (default) or en
	TimeZone   string // IANA name; "" for the default
}

// Customers tells whether a customer may have users: it exists and is not
// retired. The inventory (assets.Store) answers it; declared here because
// the inventory imports this package.
type Customers interface {
	CustomerActive(ctx context.Context, id string) (bool, error)
}

// Users keeps console users, their sessions and failed logins in
// PostgreSQL.
type Users struct {
	db        *sqlx.DB
	seats     SeatPlan
	customers Customers
}

// NewUsers returns the user store. seats (the portal seats of a customer's
// plan) and customers (who may have users) may be nil when only passwords,
// sessions and time zones are handled: then no seat limit is checked, and
// an unknown customer is refused by the database alone.
func NewUsers(db *sqlx.DB, seats SeatPlan, customers Customers) *Users {
	return &Users{db: db, seats: seats, customers: customers}
}

func invalidUser(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidUser, fmt.Sprintf(format, a...))
}

func (in *UserInput) check() error {
	in.Username = strings.ToLower(strings.TrimSpace(in.Username))
	if in.Language == "" {
		in.Language = defaultUserLanguage
	}
	switch {
	case !usernamePattern.MatchString(in.Username):
		return invalidUser("username must be 2 to 64 characters: lower-case letters, digits and . _ @ -, starting with a letter or digit")
	case len(in.Password) < MinPasswordLength:
		return invalidUser("the password must have at least %d characters", MinPasswordLength)
	case len(in.Password) > maxPasswordLength:
		return invalidUser("the password is longer than %d bytes", maxPasswordLength)
	case in.Language != "es" && in.Language != "en":
		return invalidUser("language must be es or en")
	}
	if err := CheckTimeZone(in.TimeZone); err != nil {
		return err
	}
	switch in.Role {
	case RoleNOC:
		if in.CustomerID != "" || in.EngineerID != "" {
			return invalidUser("a noc user names no customer and no engineer")
		}
	case RoleEngineer:
		if in.CustomerID != "" {
			return invalidUser("an engineer user names no customer")
		}
		if in.EngineerID == "" {
			return invalidUser("an engineer user needs --engineer: the engineer whose visits it sees")
		}
	case RoleCustomer:
		if in.CustomerID == "" {
			return invalidUser("a customer user needs --customer")
		}
		if in.EngineerID != "" {
			return invalidUser("a customer user names no engineer")
		}
	default:
		return invalidUser("role must be noc, engineer or customer")
	}
	return nil
}

// Create adds a user. A customer's users take the plan's portal seats
// (seed 004): the count includes its active API tokens, and creations for
// one customer are serialised so two cannot overshoot together.
func (u *Users) Create(ctx context.Context, in UserInput, now time.Time) (User, error) {
	if err := in.check(); err != nil {
		return User{}, err
	}
	hash, err := hashPassword(in.Password)
	if err != nil {
		return User{}, err
	}
	if in.Role == RoleCustomer && u.customers != nil {
		known, err := u.customers.CustomerActive(ctx, in.CustomerID)
		if err != nil {
			return User{}, fmt.Errorf("auth: create user %s: look up customer: %w", in.Username, err)
		}
		if !known {
			return User{}, invalidUser("no customer %q", in.CustomerID)
		}
	}
	var out User
	err = db.InTx(ctx, u.db, func(tx *sqlx.Tx) error {
		if err := ReserveSeatTx(ctx, tx, u.seats, in.Role, in.CustomerID, now); err != nil {
			return err
		}
		var customer, engineer sql.NullString
		err := tx.QueryRowContext(ctx, `INSERT INTO console_users (username, password_hash, role, customer_id, engineer_id, language, time_zone, created_at)
			VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8)
			RETURNING id, username, role, customer_id, engineer_id, language, time_zone, created_at`,
			in.Username, hash, in.Role, in.CustomerID, in.EngineerID, in.Language, in.TimeZone, now).Scan(
			&out.ID, &out.Username, &out.Role, &customer, &engineer, &out.Language, &out.TimeZone, &out.CreatedAt)
		var pqErr *pq.Error
		if errors.As(err, &pqErr) {
			switch pqErr.Constraint {
			case "console_users_username_key":
				return fmt.Errorf("%w: %s", ErrUserExists, in.Username)
			case "console_users_customer_id_fkey":
				return invalidUser("no customer %q", in.CustomerID)
			case "console_users_engineer_id_fkey":
				return invalidUser("no engineer %q", in.EngineerID)
			}
		}
		if err := SeatRefusal(err, in.CustomerID); errors.Is(err, ErrNoSeats) {
			return err
		}
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		out.CustomerID, out.EngineerID = customer.String, engineer.String
		return nil
	})
	if err != nil && !errors.Is(err, ErrInvalidUser) && !errors.Is(err, ErrUserExists) && !errors.Is(err, ErrNoSeats) {
		return User{}, fmt.Errorf("auth: create user %s: %w", in.Username, err)
	}
	return out, err
}

// SetPassword replaces a user's password and ends its sessions.
func (u *Users) SetPassword(ctx context.Context, username, password string) error {
	if len(password) < MinPasswordLength || len(password) > maxPasswordLength {
		return invalidUser("the password must have %d to %d characters", MinPasswordLength, maxPasswordLength)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return db.InTx(ctx, u.db, func(tx *sqlx.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `UPDATE console_users SET password_hash = $2 WHERE username = $1 RETURNING id`,
			strings.ToLower(username), hash).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no user %q", ErrInvalidUser, username)
		}
		if err != nil {
			return fmt.Errorf("auth: set password of %s: %w", username, err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE user_id = $1`, id)
		return err
	})
}

// Login checks a password and opens a session, returning its id (the
// cookie value, never stored in clear). Failures are counted per username
// and address; past the limit the answer is a *RateLimitError, whatever
// the password.
func (u *Users) Login(ctx context.Context, username, password, remote string, now time.Time) (string, Session, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	if len(username) > 64 {
		username = username[:64]
	}
	if len(password) > maxPasswordLength {
		password = password[:maxPasswordLength]
	}
	if err := u.checkRate(ctx, username, remote, now); err != nil {
		return "", Session{}, err
	}
	var user User
	var hash string
	var customer, engineer sql.NullString
	err := u.db.QueryRowContext(ctx, `SELECT id, username, role, customer_id, engineer_id, language, time_zone, created_at, password_hash
		FROM console_users WHERE username = $1 AND disabled_at IS NULL`, username).Scan(
		&user.ID, &user.Username, &user.Role, &customer, &engineer, &user.Language, &user.TimeZone, &user.CreatedAt, &hash)
	known := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", Session{}, fmt.Errorf("auth: look up user: %w", err)
	}
	if !known {
		hash = dummyHash
	}
	ok, err := checkPassword(hash, password)
	if err != nil {
		return "", Session{}, fmt.Errorf("auth: user %s: %w", username, err)
	}
	if !known || !ok {
		if _, err := u.db.ExecContext(ctx, `INSERT INTO console_login_failures (username, remote, at) VALUES ($1, $2, $3)`,
			username, remote, now); err != nil {
			return "", Session{}, fmt.Errorf("auth: record failed login: %w", err)
		}
		return "", Session{}, ErrBadCredentials
	}
	user.CustomerID, user.EngineerID = customer.String, engineer.String
	id, err := randomToken(sessionIDBytes)
	if err != nil {
		return "", Session{}, err
	}
	csrf, err := randomToken(csrfTokenBytes)
	if err != nil {
		return "", Session{}, err
	}
	err = db.InTx(ctx, u.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_login_failures WHERE username = $1 AND remote = $2`, username, remote); err != nil {
			return err
		}
		// Expired sessions are swept at each login: cheap, and no job needed.
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at < $1 OR last_seen_at < $2`,
			now, now.Add(-SessionIdle)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (id_sha256, user_id, csrf_token, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $4, $5)`, sessionHash(id), user.ID, csrf, now, now.Add(SessionLifetime))
		return err
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("auth: open session for %s: %w", username, err)
	}
	return id, Session{User: user, CSRF: csrf}, nil
}

func (u *Users) checkRate(ctx context.Context, username, remote string, now time.Time) error {
	var perUser, perAddr int
	var oldestUser, oldestAddr sql.NullTime
	err := u.db.QueryRowContext(ctx, `SELECT
		count(*) FILTER (WHERE username = $1), min(at) FILTER (WHERE username = $1), count(*), min(at)
		FROM console_login_failures WHERE remote = $2 AND at > $3`, username, remote, now.Add(-LoginWindow)).Scan(
		&perUser, &oldestUser, &perAddr, &oldestAddr)
	if err != nil {
		return fmt.Errorf("auth: count failed logins: %w", err)
	}
	// The oldest failure counted leaves the window first and frees a try.
	switch {
	case perUser >= MaxFailuresPerUser:
		return &RateLimitError{RetryAfter: max(oldestUser.Time.Add(LoginWindow).Sub(now), time.Second)}
	case perAddr >= maxFailuresPerAddr:
		return &RateLimitError{RetryAfter: max(oldestAddr.Time.Add(LoginWindow).Sub(now), time.Second)}
	}
	return nil
}

// Session returns the live session with cookie value id.
func (u *Users) Session(ctx context.Context, id string, now time.Time) (Session, error) {
	if id == "" || len(id) > 100 {
		return Session{}, ErrNoSession
	}
	var s Session
	var customer, engineer sql.NullString
	var lastSeen time.Time
	err := u.db.QueryRowContext(ctx, `SELECT u.id, u.username, u.role, u.customer_id, u.engineer_id, u.language, u.time_zone, u.created_at,
		s.csrf_token, s.last_seen_at
		FROM console_sessions s JOIN console_users u ON u.id = s.user_id
		WHERE s.id_sha256 = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND u.disabled_at IS NULL`,
		sessionHash(id), now, now.Add(-SessionIdle)).Scan(&s.User.ID, &s.User.Username, &s.User.Role, &customer, &engineer,
		&s.User.Language, &s.User.TimeZone, &s.User.CreatedAt, &s.CSRF, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("auth: look up session: %w", err)
	}
	s.User.CustomerID, s.User.EngineerID = customer.String, engineer.String
	// Touching once a minute at most keeps page views from all being writes.
	if now.Sub(lastSeen) > sessionTouchEvery {
		if _, err := u.db.ExecContext(ctx, `UPDATE console_sessions SET last_seen_at = $2 WHERE id_sha256 = $1`, sessionHash(id), now); err != nil {
			return Session{}, fmt.Errorf("auth: touch session: %w", err)
		}
	}
	return s, nil
}

// Logout ends the session with cookie value id.
func (u *Users) Logout(ctx context.Context, id string) error {
	if _, err := u.db.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_sha256 = $1`, sessionHash(id)); err != nil {
		return fmt.Errorf("auth: logout: %w", err)
	}
	return nil
}

// SetLanguage records a user's language.
func (u *Users) SetLanguage(ctx context.Context, userID int64, lang string) error {
	if lang != "es" && lang != "en" {
		return invalidUser("language must be es or en")
	}
	if _, err := u.db.ExecContext(ctx, `UPDATE console_users SET language = $2 WHERE id = $1`, userID, lang); err != nil {
		return fmt.Errorf("auth: set language: %w", err)
	}
	return nil
}

// SetTimeZone records the time zone a user reads times in ("" for the
// default).
func (u *Users) SetTimeZone(ctx context.Context, username, tz string) error {
	if err := CheckTimeZone(tz); err != nil {
		return err
	}
	res, err := u.db.ExecContext(ctx, `UPDATE console_users SET time_zone = $2 WHERE username = $1`, strings.ToLower(username), tz)
	if err != nil {
		return fmt.Errorf("auth: set time zone of %s: %w", username, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no user %q", ErrInvalidUser, username)
	}
	return nil
}

// Exists reports whether a username is taken.
func (u *Users) Exists(ctx context.Context, username string) (bool, error) {
	var ok bool
	err := u.db.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM console_users WHERE username = $1)`, strings.ToLower(username))
	if err != nil {
		return false, fmt.Errorf("auth: look up user %s: %w", username, err)
	}
	return ok, nil
}

func sessionHash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// NewFormToken is a random token for a double-submit CSRF cookie, for the
// forms shown before a session exists (login, language).
func NewFormToken() (string, error) { return randomToken(csrfTokenBytes) }

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
