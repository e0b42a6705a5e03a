// Command portal is an open-loop HTTP load generator: it sends GET -url at
// exactly -rate requests per second for -duration, each request at its
// scheduled instant whatever the previous ones are doing (no coordinated
// omission: a slow answer does not delay the next request), and reports
// latency percentiles measured from the scheduled instant. bench/portal.sh
// runs it against the hospital portal's ticket list beside wrk.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "", "`URL` to GET")
	token := flag.String("token", "", "bearer token")
	rate := flag.Float64("rate", 200, "requests per second")
	duration := flag.Duration("duration", 60*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 5*time.Second, "requests sent during this first part are not counted")
	want := flag.Int("want", 50, "tickets each answer must hold (0: any)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}}
	var mu sync.Mutex
	var lat, service []time.Duration
	var bad, sent int
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now().Add(100 * time.Millisecond)
	step := time.Duration(float64(time.Second) / *rate)
	n := int((*warmup + *duration).Seconds() * *rate)
	for i := range n {
		at := start.Add(time.Duration(i) * step)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		counted := at.Sub(start) >= *warmup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			err := get(ctx, client, *url, *token, *want)
			done := time.Now()
			if !counted {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			sent++
			if err != nil {
				bad++
				if firstErr == "" {
					firstErr = err.Error()
				}
				return
			}
			lat = append(lat, done.Sub(at))
			service = append(service, done.Sub(t0))
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		fmt.Fprintf(os.Stderr, "bench portal: no successful request (%d failed: %s)\n", bad, firstErr)
		os.Exit(1)
	}
	q := func(d []time.Duration, p float64) string {
		s := slices.Clone(d)
		slices.Sort(s)
		return fmt.Sprintf("%.1f ms", float64(s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)])/1e6)
	}
	fmt.Printf("| open-loop Go client, %.0f req/s scheduled | %d | %d | %.1f | %s | %s | %s | %s | %s |\n",
		*rate, sent, bad, float64(sent)/duration.Seconds(), q(lat, .5), q(lat, .9), q(lat, .99), q(lat, .999), q(lat, 1))
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "bench portal: %d failed, first: %s\n", bad, firstErr)
	}
}

func get(ctx context.Context, c *http.Client, url, token string, want int) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %.200s", resp.Status, b)
	}
	if want > 0 {
		var body struct {
			Tickets []json.RawMessage `json:"tickets"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return err
		}
		if len(body.Tickets) != want {
			return fmt.Errorf("%d tickets in the answer, want %d", len(body.Tickets), want)
		}
	}
	return nil
}
