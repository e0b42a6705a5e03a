package fleetsim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// heartbeats posts d's heartbeats while it is up: at once on start and on
// coming back up, then every Heartbeat.Every. A failure to reach Vigía is
// logged once per streak and retried sooner, never fatal: the NOC may
// start after the simulator, or restart.
func (s *Simulator) heartbeats(d *device) {
	defer s.wg.Done()
	endpoint, err := url.JoinPath(s.opts.VigiaURL, "api/v1/heartbeats", url.PathEscape(d.ID))
	if err != nil {
		s.log.Error("heartbeat: bad Vigía URL; this device sends none", "device", d.ID, "url", s.opts.VigiaURL, "error", err)
		return
	}
	every := d.Heartbeat.Every
	timer := time.NewTimer(0)
	defer timer.Stop()
	var backoff time.Duration
	failing := false
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		case <-d.wake:
		}
		next := every
		if d.isUp() {
			if err := s.beat(endpoint, d); err != nil {
				if !failing {
					s.log.Warn("heartbeat failed; retrying", "device", d.ID, "error", err)
				}
				failing = true
				backoff = min(max(2*backoff, min(every, time.Second)), every)
				next = backoff
			} else {
				if failing {
					s.log.Info("heartbeat delivered again", "device", d.ID)
				}
				failing, backoff = false, 0
			}
		}
		timer.Reset(next)
	}
}

// beat posts one heartbeat with the device's bearer token and no body,
// after the time the device's network takes to carry it.
func (s *Simulator) beat(endpoint string, d *device) error {
	if delay, _ := d.Profile.delay(); delay > 0 {
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-time.After(delay):
		}
	}
	// Never less than 5 s: a loaded Vigía answering late has still got
	// the beat, and a retry would only add to its load.
	ctx, cancel := context.WithTimeout(s.ctx, max(d.Heartbeat.Every, 5*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.Heartbeat.Token.Reveal())
	req.Header.Set("User-Agent", "vigia-simulate-fleet")
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Draining lets the connection be reused for the next beat.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", endpoint, resp.Status)
	}
	return nil
}
