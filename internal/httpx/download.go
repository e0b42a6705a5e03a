package httpx

import (
	"net/http"
	"strconv"
	"strings"
)

// ContentDisposition is a Content-Disposition value ("attachment" or
// "inline") naming the file in RFC 5987's filename* form: UTF-8, every byte
// outside attr-char percent-encoded, so no quote, semicolon, space or line
// break of a stored name can end the value or add a parameter.
func ContentDisposition(disposition, name string) string {
	var b strings.Builder
	b.WriteString(disposition)
	b.WriteString("; filename*=UTF-8''")
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String()
}

// isAttrChar reports RFC 5987's attr-char: ALPHA / DIGIT / "!" / "#" /
// "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~".
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// WriteFile answers a stored file a person uploaded: the type given (the
// caller vouches for it), the name as ContentDisposition writes it, no
// sniffing, no script or plug-in even when opened inline, cached privately.
func WriteFile(w http.ResponseWriter, contentType, disposition, name string, data []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Content-Disposition", ContentDisposition(disposition, name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=300")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}
