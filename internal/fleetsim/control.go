package fleetsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Handler is the control API, JSON in and out:
//
//	GET  /devices                      every device: id, site, state, port…
//	GET  /devices/{id}
//	POST /devices/{id}/down[?mode=blackhole]
//	POST /devices/{id}/up
//	POST /devices/{id}/flap?period=2s[&mode=blackhole]
//	GET  /sites/{id}
//	POST /sites/{id}/down[?mode=blackhole]   the whole site, gateway included
//	POST /sites/{id}/up
//
// It has no authentication: serve it on loopback only.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Devices())
	})
	mux.HandleFunc("GET /devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Device(r.PathValue("id"))
		reply(w, st, err)
	})
	mux.HandleFunc("POST /devices/{id}/down", func(w http.ResponseWriter, r *http.Request) {
		mode, err := ParseMode(r.URL.Query().Get("mode"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		s.deviceReply(w, r, s.Down(r.PathValue("id"), mode))
	})
	mux.HandleFunc("POST /devices/{id}/up", func(w http.ResponseWriter, r *http.Request) {
		s.deviceReply(w, r, s.Up(r.PathValue("id")))
	})
	mux.HandleFunc("POST /devices/{id}/flap", func(w http.ResponseWriter, r *http.Request) {
		mode, err := ParseMode(r.URL.Query().Get("mode"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		period := 2 * time.Second
		if p := r.URL.Query().Get("period"); p != "" {
			if period, err = time.ParseDuration(p); err != nil {
				writeError(w, http.StatusBadRequest, errors.New("period: want a duration such as 2s"))
				return
			}
		}
		if period < MinFlapPeriod {
			writeError(w, http.StatusBadRequest, errors.New("period: at least "+MinFlapPeriod.String()))
			return
		}
		s.deviceReply(w, r, s.Flap(r.PathValue("id"), period, mode))
	})
	mux.HandleFunc("GET /sites/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Site(r.PathValue("id"))
		reply(w, st, err)
	})
	mux.HandleFunc("POST /sites/{id}/down", func(w http.ResponseWriter, r *http.Request) {
		mode, err := ParseMode(r.URL.Query().Get("mode"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		s.siteReply(w, r, s.SiteDown(r.PathValue("id"), mode))
	})
	mux.HandleFunc("POST /sites/{id}/up", func(w http.ResponseWriter, r *http.Request) {
		s.siteReply(w, r, s.SiteUp(r.PathValue("id")))
	})
	return mux
}

// deviceReply answers a device operation with the device's new status.
func (s *Simulator) deviceReply(w http.ResponseWriter, r *http.Request, opErr error) {
	if opErr != nil {
		writeError(w, errorStatus(opErr), opErr)
		return
	}
	st, err := s.Device(r.PathValue("id"))
	reply(w, st, err)
}

func (s *Simulator) siteReply(w http.ResponseWriter, r *http.Request, opErr error) {
	if opErr != nil {
		writeError(w, errorStatus(opErr), opErr)
		return
	}
	st, err := s.Site(r.PathValue("id"))
	reply(w, st, err)
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, errorStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func errorStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrUnknownSite):
		return http.StatusNotFound
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	}
	// A port taken by someone else while the device was down.
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
