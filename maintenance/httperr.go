package maintenance

import (
	"log/slog"
	"net/http"

	"github.com/vigia-noc/vigia/internal/httpx"
)

// FailHTTP answers err of the ticket stage for the APIs of its subpackages
// (intake's Alertmanager receiver, sweeps' preventive plans) through the
// one typed-error mapping, with the same codes and words as the ticket API;
// api names the API in the log.
func FailHTTP(w http.ResponseWriter, log *slog.Logger, api string, err error) {
	httpx.Errors{Log: log, API: api, Internal: "could not process the ticket"}.Fail(w, err, "ticket", "")
}
