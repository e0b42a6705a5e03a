package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// A ticket's attachment is served by the API to the NOC and to its own
// customer, as a download that no browser renders in place; another
// customer, a caller without a token and ids that name nothing get the
// same answers as for tickets.
func TestTicketAttachmentAPI(t *testing.T) {
	f := newAPIFixture(t)
	get := func(path, token string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		return rec
	}
	var number string
	if code, body := f.do("GET", "/api/v1/tickets/"+f.ticket, f.noc, ""); code == http.StatusOK {
		_, rest, _ := strings.Cut(body, `"number": "`)
		number, _, _ = strings.Cut(rest, `"`)
	}
	if number == "" {
		t.Fatal("the fixture's ticket has no number")
	}
	path := "/api/v1/tickets/" + f.ticket + "/attachments/" + f.attachment
	missing := get("/api/v1/tickets/"+f.ticket+"/attachments/999999", f.noc)

	t.Run("served", func(t *testing.T) {
		for _, c := range []struct{ who, path, token string }{
			{"NOC", path, f.noc},
			{"its own customer", path, f.hsr},
			{"by the ticket's number", "/api/v1/tickets/" + number + "/attachments/" + f.attachment, f.hsr},
		} {
			t.Run(c.who, func(t *testing.T) {
				rec := get(c.path, c.token)
				if rec.Code != http.StatusOK || rec.Body.String() != string(f.attachmentPNG) {
					t.Fatalf("%d, %d bytes (want the %d stored)", rec.Code, rec.Body.Len(), len(f.attachmentPNG))
				}
				for k, want := range map[string]string{
					"Content-Type":           "image/png",
					"Content-Disposition":    "attachment; filename*=UTF-8''pantalla%20San%20Rafael.png",
					"X-Content-Type-Options": "nosniff",
				} {
					if got := rec.Header().Get(k); got != want {
						t.Errorf("%s: %q, want %q", k, got, want)
					}
				}
			})
		}
	})

	// The listing names each attachment by the id that downloads it, to
	// whoever may see the ticket, and to nobody else.
	t.Run("listed", func(t *testing.T) {
		list := "/api/v1/tickets/" + f.ticket + "/attachments"
		for _, c := range []struct {
			who, path, token string
			code             int
		}{
			{"NOC", list, f.noc, http.StatusOK},
			{"its own customer, by number", "/api/v1/tickets/" + number + "/attachments", f.hsr, http.StatusOK},
			{"another customer", list, f.cmf, http.StatusNotFound},
			{"no token", list, "", http.StatusUnauthorized},
			{"an unknown parameter", list + "?limit=1", f.noc, http.StatusBadRequest},
		} {
			t.Run(c.who, func(t *testing.T) {
				rec := get(c.path, c.token)
				if rec.Code != c.code {
					t.Fatalf("%d, want %d (%s)", rec.Code, c.code, rec.Body.String())
				}
				body := rec.Body.String()
				if c.code != http.StatusOK {
					if strings.Contains(body, "pantalla") {
						t.Fatalf("the refusal names the file: %s", body)
					}
					return
				}
				var got struct {
					Attachments []struct {
						ID       int64  `json:"id"`
						Filename string `json:"filename"`
						Size     int    `json:"size"`
					} `json:"attachments"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Attachments) != 1 || strconv.FormatInt(got.Attachments[0].ID, 10) != f.attachment ||
					got.Attachments[0].Filename != "pantalla San Rafael.png" || got.Attachments[0].Size != len(f.attachmentPNG) {
					t.Fatalf("listing %+v, want the one stored attachment %s", got.Attachments, f.attachment)
				}
				if strings.Contains(body, `"data"`) {
					t.Fatal("the listing carries the files' data")
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			name, path, token string
			code              int
		}{
			{"another customer", path, f.cmf, http.StatusNotFound},
			{"another customer, by number", "/api/v1/tickets/" + number + "/attachments/" + f.attachment, f.cmf, http.StatusNotFound},
			{"no token", path, "", http.StatusUnauthorized},
			{"a forged token", path, "vigia_forged", http.StatusUnauthorized},
			{"an attachment of another ticket", "/api/v1/tickets/" + f.ticket + "0/attachments/" + f.attachment, f.noc, http.StatusNotFound},
			{"a missing attachment", "/api/v1/tickets/" + f.ticket + "/attachments/999999", f.noc, http.StatusNotFound},
			{"a text attachment id", "/api/v1/tickets/" + f.ticket + "/attachments/abc", f.noc, http.StatusNotFound},
			{"attachment id zero", "/api/v1/tickets/" + f.ticket + "/attachments/0", f.noc, http.StatusNotFound},
			{"a negative attachment id", "/api/v1/tickets/" + f.ticket + "/attachments/-1", f.noc, http.StatusNotFound},
			{"an attachment id past int64", "/api/v1/tickets/" + f.ticket + "/attachments/9223372036854775808", f.noc, http.StatusNotFound},
			{"a NUL in the ticket id", "/api/v1/tickets/a%00b/attachments/" + f.attachment, f.noc, http.StatusBadRequest},
			{"invalid UTF-8 in the attachment id", "/api/v1/tickets/" + f.ticket + "/attachments/%ff", f.noc, http.StatusBadRequest},
		} {
			t.Run(c.name, func(t *testing.T) {
				rec := get(c.path, c.token)
				if rec.Code != c.code {
					t.Fatalf("%d, want %d (%s)", rec.Code, c.code, rec.Body.String())
				}
				body := rec.Body.String()
				if strings.Contains(body, "San Rafael") || strings.Contains(body, "PNG") || dbInternals.MatchString(body) {
					t.Fatalf("the refusal tells too much: %s", body)
				}
			})
		}
		// Another customer cannot tell an existing attachment from a
		// missing one.
		other := get(path, f.cmf)
		if other.Body.String() != strings.Replace(missing.Body.String(), "999999", f.attachment, 1) {
			t.Errorf("another customer's answer %q differs from a missing attachment's %q", other.Body.String(), missing.Body.String())
		}
	})
}
