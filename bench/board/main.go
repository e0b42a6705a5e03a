// Command board measures how long `vigia serve` takes to answer the NOC
// board (/console/noc): it logs in as a NOC user through the console's
// form, then for each board URL sends -requests GETs one after another (so
// that each measures one render, not a queue) after -warmup unmeasured
// ones, checks every answer, and prints one Markdown table row per URL:
// p50, p95, p99, max and the page's size. bench/board.sh runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// target is one board URL and what its answer must contain.
type target struct {
	label, path string
	live        bool   // the live fragment, as the page reloads it
	want        string // a substring every answer must hold
}

func main() {
	base := flag.String("url", "", "vigia's base `URL`, e.g. http://127.0.0.1:8080")
	user := flag.String("user", "", "NOC username")
	requests := flag.Int("requests", 200, "measured requests per board URL")
	warmup := flag.Int("warmup", 10, "unmeasured requests per board URL first")
	serial := flag.String("serial", "", "a serial number the search must find")
	flag.Parse()
	password := os.Getenv("BENCH_PASSWORD")
	if *base == "" || *user == "" || password == "" || *serial == "" {
		fmt.Fprintln(os.Stderr, "bench board: -url, -user, -serial and BENCH_PASSWORD are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	if err := login(ctx, client, *base, *user, password); err != nil {
		fmt.Fprintln(os.Stderr, "bench board:", err)
		os.Exit(1)
	}
	targets := []target{
		{"whole board (full page)", "/console/noc", false, `data-device="`},
		{"whole board, live reload (fragment)", "/console/noc", true, `data-device="`},
		{"problems only (live)", "/console/noc?state=problems", true, `data-device="`},
		{"search by serial (live)", "/console/noc?q=" + url.QueryEscape(*serial), true, `data-serial>` + *serial + `<`},
		{"page 50 of the devices (live)", "/console/noc?page=50", true, `data-device="`},
	}
	for _, tg := range targets {
		row, err := measure(ctx, client, *base, tg, *warmup, *requests)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench board: %s: %v\n", tg.label, err)
			os.Exit(1)
		}
		fmt.Println(row)
	}
}

// login reads the login form (its CSRF token and cookie) and posts it.
func login(ctx context.Context, client *http.Client, base, user, password string) error {
	page, _, err := get(ctx, client, base+"/console/login", false)
	if err != nil {
		return fmt.Errorf("login form: %w", err)
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		return errors.New("login form: no CSRF token")
	}
	form := url.Values{"username": {user}, "password": {password}, "csrf": {m[1]}, "next": {"/console/noc"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/console/login", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/console/noc" || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login as %s: landed on %s (%d)", user, resp.Request.URL.Path, resp.StatusCode)
	}
	return nil
}

func get(ctx context.Context, client *http.Client, u string, live bool) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	if live {
		req.Header.Set("X-Vigia-Live", "1")
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return string(b), len(b), nil
}

func measure(ctx context.Context, client *http.Client, base string, tg target, warmup, n int) (string, error) {
	var lat []time.Duration
	size := 0
	for i := range warmup + n {
		t0 := time.Now()
		body, bytes, err := get(ctx, client, base+tg.path, tg.live)
		took := time.Since(t0)
		if err != nil {
			return "", err
		}
		if !strings.Contains(body, tg.want) {
			return "", fmt.Errorf("the answer does not hold %q", tg.want)
		}
		if tg.live && strings.Contains(body, "<html") {
			return "", errors.New("a live reload got the whole page")
		}
		if i >= warmup {
			lat = append(lat, took)
			size = bytes
		}
	}
	slices.Sort(lat)
	q := func(p float64) string {
		return fmt.Sprintf("%.1f ms", float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())/1000)
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %d kB |", tg.label, len(lat), q(0.50), q(0.95), q(0.99), q(1), size/1024), nil
}
