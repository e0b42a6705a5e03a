// Package server wires Vigía's HTTP surface: health and readiness probes,
// Prometheus metrics, and the authenticated /api/v1 routes the domain
// packages register.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// Routes is implemented by each domain package's API.
type Routes interface {
	Register(mux *http.ServeMux)
}

// Config is what the HTTP surface needs.
type Config struct {
	DB *sqlx.DB
	// Health, when set, is the handle /readyz pings: a connection of its
	// own, so that a pool busy with requests does not read as a database
	// that is down. Nil pings through DB.
	Health   *sqlx.DB
	Tokens   *auth.Tokens
	Registry *prometheus.Registry
	Log      *slog.Logger
	// API routes sit behind bearer-token authentication.
	API []Routes
	// Public routes (heartbeats with their own device tokens, the web
	// console with its own sessions) handle authentication themselves.
	Public []Routes
	// RequestTimeout bounds every request's context, hence every database
	// call made for it, including the wait for a pooled connection
	// (default DefaultRequestTimeout).
	RequestTimeout time.Duration
}

// DefaultRequestTimeout is a request's deadline unless configured.
const DefaultRequestTimeout = 30 * time.Second

// Handler returns the root handler.
func Handler(c Config) http.Handler {
	api := http.NewServeMux()
	for _, r := range c.API {
		r.Register(api)
	}
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpx.Fail(w, http.StatusNotFound, "not_found", "no such API endpoint: %s %s", r.Method, r.URL.Path)
	})

	root := http.NewServeMux()
	for _, r := range c.Public {
		r.Register(root)
	}
	root.Handle("/api/", c.Tokens.Middleware(api))
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	root.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		health := c.Health
		if health == nil {
			health = c.DB
		}
		if err := health.PingContext(ctx); err != nil {
			httpx.JSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "database": "unreachable"})
			return
		}
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "ready", "database": "ok"})
	})
	root.Handle("GET /metrics", promhttp.HandlerFor(c.Registry, promhttp.HandlerOpts{Registry: c.Registry,
		// Metrics read from the database at scrape time must not hide the
		// probe metrics when the database is down.
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: slog.NewLogLogger(c.Log.Handler(), slog.LevelWarn)}))
	// Paths and queries that cannot name anything stored are refused here,
	// for every route alike (the console's redirect targets are longer than
	// an API parameter, hence 2 KiB).
	timeout := c.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	return logRequests(c.Log, withDeadline(timeout, httpx.Guard(2048, root)))
}

// withDeadline gives each request's context a deadline: a request never
// waits for ever on the database, even for a pooled connection that a
// stuck transaction holds.
func withDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// logRequests logs method, path, status and duration — never headers,
// which carry tokens.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if r.URL.Path == "/metrics" || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			return
		}
		log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	})
}
