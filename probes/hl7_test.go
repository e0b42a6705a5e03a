package probes

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/hl7test"
)

func TestHL7AgainstMLLPServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode        string
		want        Outcome
		wantDetail  string
		wantTimeout bool
	}{
		{"AA", OK, "HL7 ACK AA, rtt", false},
		{"AE", Misconfigured, "HL7 ACK AE (application error): Unknown receiving application; Unknown receiving application", false},
		{"silent", Failed, "no ACK: context deadline exceeded", true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			port := hl7test.Start(t, tt.mode)
			d := assets.Device{ID: "engine", HL7: &assets.HL7Endpoint{Host: "127.0.0.1", Port: port, SendingApp: "VIGIA",
				ReceivingApp: "RIS", MessageType: "NMD^N02"}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p := &HL7{}
			if !p.Applies(d) {
				t.Fatal("HL7 does not apply to a device with an hl7 endpoint")
			}
			r := p.Probe(ctx, d)
			if r.Outcome != tt.want || !strings.Contains(r.Detail, tt.wantDetail) {
				t.Fatalf("outcome %s %q, want %s with %q", r.Outcome, r.Detail, tt.want, tt.wantDetail)
			}
			if tt.wantTimeout && r.Duration < 1900*time.Millisecond {
				t.Errorf("gave up after %s, before the deadline", r.Duration)
			}
		})
	}
}

func TestBuildHL7(t *testing.T) {
	now := time.Date(2026, 12, 6, 18, 15, 0, 0, time.UTC)
	msg, id := BuildHL7(HL7Message{ReceivingApp: "RIS", ControlID: "C1"}, now)
	if want := "MSH|^~\\&|VIGIA|VIGIA|RIS|RIS|20261206181500||NMD^N02|C1|P|2.5\r"; string(msg) != want || id != "C1" {
		t.Fatalf("got %q (%s), want %q", msg, id, want)
	}
	_, a := BuildHL7(HL7Message{}, now)
	_, b := BuildHL7(HL7Message{}, now)
	if a == b || len(a) > 20 {
		t.Errorf("control ids %q and %q: want unique, at most 20 characters", a, b)
	}
}

func TestParseACK(t *testing.T) {
	tests := []struct {
		name, raw string
		want      HL7Ack
		wantErr   string
	}{
		{"AA", "MSH|^~\\&|RIS||VIGIA||20261206||ACK|9|P|2.5\rMSA|AA|C1", HL7Ack{Code: "AA", ControlID: "C1"}, ""},
		{"AR with ERR-8", "MSH|^~\\&|RIS||VIGIA||20261206||ACK|9|P|2.5\rMSA|AR|C1|Unsupported message type\rERR|||200^Unsupported message type^HL70357|E||||NMD not handled",
			HL7Ack{Code: "AR", ControlID: "C1", Text: "Unsupported message type; NMD not handled"}, ""},
		{"v2.3 ERR-1, LF separators", "MSH|^~\\&|RIS||VIGIA||20261206||ACK|9|P|2.3\nMSA|AE|C1\nERR|^^^207&Application error",
			HL7Ack{Code: "AE", ControlID: "C1", Text: "207&Application error"}, ""},
		{"other separator", "MSH#^~\\&#RIS\rMSA#CA#C1", HL7Ack{Code: "CA", ControlID: "C1"}, ""},
		{"not HL7", "HTTP/1.1 400 Bad Request", HL7Ack{}, "not an HL7 message"},
		{"no MSA", "MSH|^~\\&|RIS||VIGIA||20261206||ACK|9|P|2.5", HL7Ack{}, "no MSA segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseACK([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
