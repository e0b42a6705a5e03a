package maintenance

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// FailHTTP answers err of the ticket stage (this package's sentinels) for
// the APIs of its subpackages (intake's Alertmanager receiver, sweeps'
// preventive plans), with the same codes and words as the ticket API; api
// names the API in the log.
func FailHTTP(w http.ResponseWriter, log *slog.Logger, api string, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "%s", userText(err, ErrInvalid))
	case errors.Is(err, ErrForbidden):
		httpx.Fail(w, http.StatusForbidden, "forbidden", "%s", userText(err, ErrForbidden))
	case errors.Is(err, ErrRefused):
		httpx.Fail(w, http.StatusUnprocessableEntity, "refused", "%s", userText(err, ErrRefused))
	case errors.Is(err, ErrConflict):
		httpx.Fail(w, http.StatusConflict, "conflict", "%s", userText(err, ErrConflict))
	case db.Busy(err):
		log.Warn(api+": database busy", "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the database did not answer in time; try again")
	default:
		log.Error(api, "err", err)
		httpx.Fail(w, http.StatusInternalServerError, "internal", "could not process the ticket")
	}
}

// userText is what err says from its sentinel on, without the package
// prefix ("invalid request: version must be ...").
func userText(err, sentinel error) string {
	msg, word := err.Error(), sentinel.Error()
	if i := strings.Index(msg, word); i >= 0 {
		return strings.TrimPrefix(msg[i:], "maintenance: ")
	}
	return strings.TrimPrefix(word, "maintenance: ")
}
