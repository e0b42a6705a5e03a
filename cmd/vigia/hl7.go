package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vigia-noc/vigia/probes"
)

func init() {
	register(command{name: "hl7", summary: "send an HL7 v2 health message over MLLP and check the ACK", run: runHL7})
}

// Exit codes of `vigia hl7`, in the manner of vigia echo.
const (
	hl7ExitDown    = 1
	hl7ExitRefused = 2
)

const hl7Description = `
Checks an HL7 v2 interface engine (the RIS/PACS link): connects, sends a
minimal HL7 v2.5 message (MSH only, a unique control id) in MLLP framing
and waits for its acknowledgment. Prints "OK HOST:PORT ack=AA rtt=…", or
REFUSED with MSA-1 and the engine's MSA-3/ERR text, or DOWN.

Exit status:
  0   ACK AA or CA
  1   down: connection refused, no ACK before the timeout, not HL7
  2   ACK AE, AR, CE or CR: the engine refuses the message (application
      names, message type): a configuration fault
  64  bad command line`

func runHL7(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hl7", "[flags] HOST:PORT", hl7Description, stdout, stderr)
	sending := fs.String("sending-app", "VIGIA", "MSH-3/4 sending `application`")
	receiving := fs.String("receiving-app", "", "MSH-5/6 receiving `application`")
	msgType := fs.String("message-type", "NMD^N02", "MSH-9 message `type`")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline for the ACK, from connect")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of text")
	addr, err := peerArg(fs, args, stdout, "hl7")
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usage("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ack, err := probes.PingHL7(ctx, addr, probes.HL7Message{SendingApp: *sending, ReceivingApp: *receiving, MessageType: *msgType}, time.Now())
	var refused *probes.HL7RefusedError
	code, label := 0, "OK"
	switch {
	case errors.As(err, &refused):
		code, label = hl7ExitRefused, "REFUSED"
	case err != nil:
		code, label = hl7ExitDown, "DOWN"
	}
	if *jsonOut {
		report := struct {
			Addr       string  `json:"addr"`
			OK         bool    `json:"ok"`
			Class      string  `json:"class"`
			Ack        string  `json:"ack,omitempty"`
			ControlID  string  `json:"control_id,omitempty"`
			Text       string  `json:"text,omitempty"`
			Error      string  `json:"error,omitempty"`
			RTTSeconds float64 `json:"rtt_seconds"`
		}{Addr: addr, OK: err == nil, Class: map[int]string{0: "ok", hl7ExitDown: "down", hl7ExitRefused: "misconfigured"}[code],
			Ack: ack.Code, ControlID: ack.ControlID, Text: ack.Text, RTTSeconds: ack.RTT.Seconds()}
		if err != nil {
			report.Error = err.Error()
		}
		if err := json.NewEncoder(stdout).Encode(report); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else if err == nil {
		fmt.Fprintf(stdout, "OK %s ack=%s rtt=%s\n", addr, ack.Code, ack.RTT.Round(time.Microsecond))
	} else {
		fmt.Fprintf(stdout, "%s %s\n", label, err)
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}
