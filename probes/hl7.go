package probes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// HL7 checks an HL7 v2 interface engine (the RIS/PACS link) over MLLP: it
// sends a health message with a unique control id and wants the engine's
// ACK. MSA-1 AA or CA is up; AE, AR, CE or CR means the engine answers but
// refuses our message (application names, message type): misconfigured,
// with its MSA-3/ERR text; no ACK before the deadline is down.
type HL7 struct{}

// Applies reports whether the device has an HL7 endpoint.
func (p *HL7) Applies(d assets.Device) bool { return d.HL7 != nil }

// Probe sends one health message.
func (p *HL7) Probe(ctx context.Context, d assets.Device) Result {
	e := d.HL7
	start := time.Now()
	ack, err := PingHL7(ctx, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)),
		HL7Message{SendingApp: e.SendingApp, ReceivingApp: e.ReceivingApp, MessageType: e.MessageType}, start)
	r := Result{Prober: "hl7", Duration: time.Since(start)}
	var refused *HL7RefusedError
	switch {
	case err == nil:
		r.Outcome, r.Detail = OK, fmt.Sprintf("HL7 ACK %s, rtt %s", ack.Code, ack.RTT.Round(time.Microsecond))
	case errors.As(err, &refused):
		r.Outcome, r.Detail = Misconfigured, err.Error()
	default:
		r.Outcome, r.Detail = Failed, err.Error()
	}
	return r
}

// HL7Message is the health message to send. Empty fields take the
// defaults of the inventory (VIGIA, NMD^N02).
type HL7Message struct {
	SendingApp, ReceivingApp, MessageType string
	// ControlID is MSH-10; empty makes a unique one.
	ControlID string
}

// HL7Ack is what the engine answered.
type HL7Ack struct {
	Code      string        `json:"code"`       // MSA-1
	ControlID string        `json:"control_id"` // MSA-2, our MSH-10
	Text      string        `json:"text,omitempty"`
	RTT       time.Duration `json:"rtt_ns"`
}

// HL7RefusedError is an ACK other than AA/CA: the engine is up and
// rejects the message.
type HL7RefusedError struct {
	Code string // AE, AR, CE, CR
	Text string // MSA-3 and the ERR segments' text
}

func (e *HL7RefusedError) Error() string {
	msg := "HL7 ACK " + e.Code
	switch e.Code {
	case "AE", "CE":
		msg += " (application error)"
	case "AR", "CR":
		msg += " (application reject)"
	}
	if e.Text != "" {
		msg += ": " + e.Text
	}
	return msg
}

// MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2).
const (
	mllpStart = 0x0B
	mllpEnd   = 0x1C
	mllpCR    = 0x0D
	// maxACK bounds what an engine may answer; an ACK is a few hundred
	// bytes.
	maxACK = 64 << 10
)

var controlSeq atomic.Uint32

// newControlID is unique per process and instant, within MSH-10's 20
// characters.
func newControlID(now time.Time) string {
	return fmt.Sprintf("VG%d%04d", now.UnixMilli(), controlSeq.Add(1)%10000)
}

// BuildHL7 writes the minimal HL7 v2.5 message: one MSH segment.
func BuildHL7(m HL7Message, now time.Time) (msg []byte, controlID string) {
	sending, msgType := m.SendingApp, m.MessageType
	if sending == "" {
		sending = assets.DefaultHL7SendingApp
	}
	if msgType == "" {
		msgType = assets.DefaultHL7MessageType
	}
	controlID = m.ControlID
	if controlID == "" {
		controlID = newControlID(now)
	}
	msh := strings.Join([]string{"MSH", `^~\&`, sending, sending, m.ReceivingApp, m.ReceivingApp,
		now.UTC().Format("20060102150405"), "", msgType, controlID, "P", "2.5"}, "|")
	return []byte(msh + "\r"), controlID
}

// PingHL7 sends m to the engine at addr in MLLP framing and reads its
// ACK, until ctx's deadline. A refusing ACK is an *HL7RefusedError.
func PingHL7(ctx context.Context, addr string, m HL7Message, now time.Time) (HL7Ack, error) {
	start := time.Now()
	var ack HL7Ack
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ack, fmt.Errorf("hl7 %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	msg, controlID := BuildHL7(m, now)
	frame := append(append([]byte{mllpStart}, msg...), mllpEnd, mllpCR)
	if _, err := conn.Write(frame); err != nil {
		return ack, fmt.Errorf("hl7 %s: send: %w", addr, err)
	}
	raw, err := readMLLP(bufio.NewReader(conn))
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The connection's deadline is ctx's, and may fire first.
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		return ack, fmt.Errorf("hl7 %s: no ACK: %w", addr, err)
	}
	ack, err = parseACK(raw)
	ack.RTT = time.Since(start)
	if err != nil {
		return ack, fmt.Errorf("hl7 %s: %w", addr, err)
	}
	if ack.ControlID != controlID {
		return ack, fmt.Errorf("hl7 %s: ACK for message %q, we sent %q", addr, ack.ControlID, controlID)
	}
	switch ack.Code {
	case "AA", "CA":
		return ack, nil
	default:
		return ack, fmt.Errorf("hl7 %s: %w", addr, &HL7RefusedError{Code: ack.Code, Text: ack.Text})
	}
}

// readMLLP reads one framed message, skipping anything before its start
// byte.
func readMLLP(r *bufio.Reader) ([]byte, error) {
	if _, err := r.ReadBytes(mllpStart); err != nil {
		return nil, err
	}
	var out []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == mllpEnd {
			// The trailing CR is part of the frame; a peer that omits it
			// is tolerated.
			return out, nil
		}
		if len(out) >= maxACK {
			return nil, fmt.Errorf("answer longer than %d bytes", maxACK)
		}
		out = append(out, b)
	}
}

// parseACK reads MSA-1, MSA-2, MSA-3 and the ERR segments of an ACK,
// with the field separator its MSH declares.
func parseACK(raw []byte) (HL7Ack, error) {
	var ack HL7Ack
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\r"))
	raw = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r"))
	if len(raw) < 8 || string(raw[:3]) != "MSH" {
		return ack, errors.New("answer is not an HL7 message (no MSH segment)")
	}
	sep := string(raw[3])
	comp := "^"
	if len(raw) > 4 {
		comp = string(raw[4])
	}
	var errText []string
	seenMSA := false
	for _, seg := range strings.Split(string(raw), "\r") {
		f := strings.Split(seg, sep)
		switch f[0] {
		case "MSA":
			seenMSA = true
			ack.Code = field(f, 1)
			ack.ControlID = field(f, 2)
			if t := field(f, 3); t != "" {
				errText = append(errText, t)
			}
		case "ERR":
			// v2.5 puts the user message in ERR-8 and the code in ERR-3;
			// v2.3 put everything in ERR-1.
			for _, i := range []int{8, 3, 1} {
				if t := strings.Trim(strings.ReplaceAll(field(f, i), comp, " "), " "); t != "" {
					errText = append(errText, t)
					break
				}
			}
		}
	}
	if !seenMSA || ack.Code == "" {
		return ack, errors.New("answer has no MSA segment with an acknowledgment code")
	}
	ack.Text = strings.ToValidUTF8(strings.Join(errText, "; "), "\uFFFD")
	if len(ack.Text) > 500 {
		ack.Text = ack.Text[:500]
	}
	return ack, nil
}

func field(f []string, i int) string {
	if i < len(f) {
		return strings.TrimSpace(f[i])
	}
	return ""
}
