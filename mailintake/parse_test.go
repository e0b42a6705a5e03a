package mailintake

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, raw             string
		from, subject, text   string
		noise                 string
		refs                  int
		unparseable, isReport bool
	}{
		{name: "plain", raw: "From: Ana <ANA@x.example>\nSubject: Hola\nMessage-ID: <a@x>\n\nTexto.\n",
			from: "ana@x.example", subject: "Hola", text: "Texto."},
		{name: "latin-1 subject and body", raw: "From: a@x.example\nSubject: =?iso-8859-1?q?Tom=F3grafo?=\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nNo env=EDa im=E1genes.\n",
			from: "a@x.example", subject: "Tomógrafo", text: "No envía imágenes."},
		{name: "html only", raw: "From: a@x.example\nSubject: h\nContent-Type: text/html\n\n<html><head><style>p{}</style></head><body><p>Uno &amp; dos</p><p>tres<br>cuatro</p></body></html>\n",
			from: "a@x.example", subject: "h", text: "Uno & dos\ntres\ncuatro"},
		{name: "control characters are dropped", raw: "From: a@x.example\nSubject: a\x00b\n\nc\x00d\x07e\n",
			from: "a@x.example", subject: "ab", text: "cde"},
		{name: "references", raw: "From: a@x.example\nSubject: Re\nIn-Reply-To: <1@v>\nReferences: <0@x> <1@v>\n\nok\n",
			from: "a@x.example", subject: "Re", text: "ok", refs: 3},
		{name: "auto-replied", raw: "From: a@x.example\nSubject: Out\nAuto-Submitted: auto-replied\n\nx\n", from: "a@x.example", subject: "Out", text: "x",
			noise: "Auto-Submitted: auto-replied"},
		{name: "auto-submitted no is a person", raw: "From: a@x.example\nSubject: s\nAuto-Submitted: no\n\nx\n", from: "a@x.example", subject: "s", text: "x"},
		{name: "bulk", raw: "From: a@x.example\nSubject: s\nPrecedence: bulk\n\nx\n", from: "a@x.example", subject: "s", text: "x", noise: "Precedence: bulk"},
		{name: "mailer-daemon", raw: "From: MAILER-DAEMON@mx.example\nSubject: s\n\nx\n", from: "mailer-daemon@mx.example", subject: "s", text: "x",
			noise: "from the mailer-daemon"},
		{name: "no From", raw: "Subject: s\n\nx\n", unparseable: true},
		{name: "not a message", raw: "garbage without headers", unparseable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(strings.ReplaceAll(tc.raw, "\n", "\r\n")))
			if tc.unparseable {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.From != tc.from || m.Subject != tc.subject || m.Text != tc.text || m.Noise() != tc.noise || len(m.References) != tc.refs {
				t.Fatalf("got from %q subject %q text %q noise %q refs %v", m.From, m.Subject, m.Text, m.Noise(), m.References)
			}
		})
	}
}
