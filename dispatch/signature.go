package dispatch

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// MaxSignatureBytes caps a drawn signature's PNG: a signature pad's
// drawing is a few kilobytes; anything larger is not a signature.
const MaxSignatureBytes = 64 << 10

const pngDataURL = "data:image/png;base64,"

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// checkSignature validates the customer's sign-off: a name, and either the
// name typed or a drawn PNG within MaxSignatureBytes.
func checkSignature(in SignatureInput) (SignatureInput, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		return in, invalid("signature.name (who signs for the customer) is required, at most 200 characters")
	}
	switch in.Kind {
	case "typed":
		in.Value = strings.TrimSpace(in.Value)
		if in.Value == "" || len(in.Value) > 200 {
			return in, invalid("signature.value: a typed signature carries the name as typed (at most 200 characters)")
		}
	case "drawn":
		raw, ok := strings.CutPrefix(in.Value, pngDataURL)
		if !ok {
			return in, invalid("signature.value: a drawn signature is a PNG data URL (%s…)", pngDataURL)
		}
		if base64.StdEncoding.DecodedLen(len(raw)) > MaxSignatureBytes+3 {
			return in, invalid("signature.value: the drawn signature is larger than %d bytes", MaxSignatureBytes)
		}
		img, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return in, invalid("signature.value: the drawn signature is not valid base64: %v", err)
		}
		if len(img) > MaxSignatureBytes {
			return in, invalid("signature.value: the drawn signature is larger than %d bytes", MaxSignatureBytes)
		}
		if !bytes.HasPrefix(img, pngMagic) {
			return in, invalid("signature.value: the drawn signature is not a PNG image")
		}
	default:
		return in, invalid("signature.kind must be drawn or typed")
	}
	return in, nil
}
