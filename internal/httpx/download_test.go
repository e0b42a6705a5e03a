package httpx

import (
	"net/http/httptest"
	"testing"
)

func TestContentDisposition(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"pantalla.png", "attachment; filename*=UTF-8''pantalla.png"},
		{"captura de pantalla.png", "attachment; filename*=UTF-8''captura%20de%20pantalla.png"},
		{"año-ñ.jpg", "attachment; filename*=UTF-8''a%C3%B1o-%C3%B1.jpg"},
		// What could end the value or add a parameter is encoded.
		{`a";b=c.png`, "attachment; filename*=UTF-8''a%22%3Bb%3Dc.png"},
		{"a\r\nX-Evil: 1.png", "attachment; filename*=UTF-8''a%0D%0AX-Evil%3A%201.png"},
		{"it's,(1)*.png", "attachment; filename*=UTF-8''it%27s%2C%281%29%2A.png"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ContentDisposition("attachment", c.name); got != c.want {
				t.Fatalf("ContentDisposition(%q) = %q, want %q", c.name, got, c.want)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteFile(rec, "image/png", "inline", "x y.png", []byte("\x89PNG"))
	h := rec.Header()
	for k, want := range map[string]string{"Content-Type": "image/png", "Content-Length": "4",
		"Content-Disposition": "inline; filename*=UTF-8''x%20y.png", "X-Content-Type-Options": "nosniff",
		"Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "private, max-age=300"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if rec.Code != 200 || rec.Body.String() != "\x89PNG" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
}
