package dicomping

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

var sampleItem = WorklistItem{PatientName: "Núñez^María", PatientID: "P042", AccessionNumber: "A-42", ScheduledDate: "20261206",
	ScheduledTime: "093000", Modality: "CT", StationAETitle: "CT01", StepID: "SPS42", Description: "TC de tórax"}

func TestWorklistItemRoundTrip(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		b, err := encodeWorklistItem(sampleItem, explicit, true)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeWorklistItem(b, explicit)
		if err != nil || got != sampleItem {
			t.Fatalf("explicit=%t: got %+v, %v; want %+v", explicit, got, err, sampleItem)
		}
	}
	start, ok := sampleItem.ScheduledStart(time.UTC)
	if !ok || !start.Equal(time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)) {
		t.Errorf("ScheduledStart = %v, %t", start, ok)
	}
}

func TestWorklistQueryValidate(t *testing.T) {
	tests := []struct {
		q       WorklistQuery
		wantErr string
	}{
		{WorklistQuery{}, ""},
		{WorklistQuery{Date: "20261206", Modality: "CT", StationAETitle: "CT01"}, ""},
		{WorklistQuery{Date: "20261206-20261207"}, ""},
		{WorklistQuery{Date: "-20261207"}, ""},
		{WorklistQuery{Date: "2026-12-06"}, "not a YYYYMMDD date or range"},
		{WorklistQuery{Date: "-"}, "a range needs at least one end"},
		{WorklistQuery{Modality: "ct"}, "not a code string"},
		{WorklistQuery{StationAETitle: "BACK\\SLASH"}, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.q.Date+"/"+tt.q.Modality+"/"+tt.q.StationAETitle, func(t *testing.T) {
			err := tt.q.Validate()
			if (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestFindWorklistAgainstServer(t *testing.T) {
	t.Parallel()
	items := []WorklistItem{sampleItem, {PatientName: "Otro^Paciente", PatientID: "P043", ScheduledDate: "20261207", Modality: "MR", StationAETitle: "MR01"}}
	serve := func(status uint16) func(Association, WorklistQuery) ([]WorklistItem, uint16) {
		return func(a Association, q WorklistQuery) ([]WorklistItem, uint16) {
			var out []WorklistItem
			for _, it := range items {
				if q.Matches(it) {
					out = append(out, it)
				}
			}
			return out, status
		}
	}
	tests := []struct {
		name      string
		srv       *Server
		q         WorklistQuery
		wantItems int
		wantClass Class
		wantErr   string
	}{
		{"items", &Server{AETitle: "WL", Worklist: serve(StatusSuccess)}, WorklistQuery{Modality: "CT"}, 1, ClassOK, ""},
		{"date range", &Server{AETitle: "WL", Worklist: serve(StatusSuccess)}, WorklistQuery{Date: "20261206-20261207"}, 2, ClassOK, ""},
		{"empty", &Server{AETitle: "WL", Worklist: serve(StatusSuccess)}, WorklistQuery{Modality: "US"}, 0, ClassOK, ""},
		{"out of resources", &Server{AETitle: "WL", Worklist: serve(StatusOutOfResources)}, WorklistQuery{}, 0, ClassStatus,
			"C-FIND status 0xA700: refused: out of resources"},
		{"identifier mismatch", &Server{AETitle: "WL", Worklist: serve(StatusIdentifierMismatch)}, WorklistQuery{}, 0, ClassStatus,
			"C-FIND status 0xA900: failed: identifier does not match SOP class"},
		{"unable to process", &Server{AETitle: "WL", Worklist: serve(0xC012)}, WorklistQuery{}, 0, ClassStatus,
			"C-FIND status 0xC012: failed: unable to process"},
		{"no worklist service", &Server{AETitle: "WL"}, WorklistQuery{}, 0, ClassMisconfigured,
			"Modality Worklist FIND presentation context not accepted: abstract syntax not supported"},
		{"wrong called AE", &Server{AETitle: "OTHER", Worklist: serve(StatusSuccess)}, WorklistQuery{}, 0, ClassMisconfigured,
			"called AE title not recognized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startServer(t, tt.srv)
			res, err := FindWorklist(context.Background(), addr, tt.q, Options{CalledAETitle: "WL", Timeout: 5 * time.Second})
			if got := Classify(err); got != tt.wantClass || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Classify(%v) = %v, want %v with %q", err, got, tt.wantClass, tt.wantErr)
			}
			if len(res.Items) != tt.wantItems || res.Total != tt.wantItems {
				t.Fatalf("%d items (total %d), want %d", len(res.Items), res.Total, tt.wantItems)
			}
			if tt.wantItems > 0 && tt.q.Modality == "CT" && res.Items[0] != sampleItem {
				t.Errorf("item %+v, want %+v", res.Items[0], sampleItem)
			}
			var se *StatusError
			if tt.wantClass == ClassStatus && (!errors.As(err, &se) || res.Release <= 0) {
				t.Errorf("status failure %v not a *StatusError, or association not released (%s)", err, res.Release)
			}
		})
	}
}

// readMessage reads one DIMSE message as a scripted peer.
func readMessage(t *testing.T, rd *pduReader) (*command, []byte) {
	m := messageReader{rd: rd, contextID: 1}
	cmd, data, err := m.next()
	if err != nil {
		t.Errorf("scripted peer: %v", err)
		return nil, nil
	}
	return cmd, data
}

func findRSP(respondedTo, status uint16, item *WorklistItem) []byte {
	typ := uint16(noDataSet)
	if item != nil {
		typ = 0
	}
	b := appendCommandPData(nil, 1, appendCommand(nil, &command{affectedSOPClass: ModalityWorklistFind, commandField: commandCFindRSP,
		respondedTo: respondedTo, dataSetType: typ, status: status}), 0)
	if item != nil {
		ident, _ := encodeWorklistItem(*item, false, false)
		b = appendDataSetPData(b, 1, ident, 0)
	}
	return b
}

func TestFindWorklistCancelsNearTheDeadline(t *testing.T) {
	t.Parallel()
	gotCancel := make(chan uint16, 1)
	addr := scriptedPeer(t, func(t *testing.T, c net.Conn, rd *pduReader) {
		if acceptAssociation(t, c, rd, 0) == nil {
			return
		}
		rq, data := readMessage(t, rd)
		if rq == nil || rq.commandField != commandCFindRQ || data == nil {
			t.Errorf("scripted peer: got %+v, want a C-FIND-RQ with its identifier", rq)
			return
		}
		// One item, then a broker too slow to finish before the deadline.
		c.Write(findRSP(rq.messageID, StatusPending, &sampleItem))
		cancel, _ := readMessage(t, rd)
		if cancel == nil || cancel.commandField != commandCCancelRQ {
			t.Errorf("scripted peer: got %+v, want C-CANCEL-RQ", cancel)
			return
		}
		gotCancel <- cancel.respondedTo
		c.Write(findRSP(rq.messageID, StatusCancel, nil))
		if typ, _, err := rd.next(); err == nil && typ == pduReleaseRQ {
			c.Write(appendRelease(nil, pduReleaseRP))
		}
		drain(c)
	})
	res, err := FindWorklist(context.Background(), addr, WorklistQuery{}, Options{MessageID: 7, Timeout: time.Second})
	var de *Error
	if !errors.As(err, &de) || !de.Timeout() || de.Phase != PhaseFind || Classify(err) != ClassDown {
		t.Fatalf("error %v, want a find-phase timeout classified down", err)
	}
	if !res.Cancelled || len(res.Items) != 1 || res.Items[0] != sampleItem || res.Release <= 0 {
		t.Fatalf("result %+v, want cancelled with the item received and the association released", res)
	}
	if id := <-gotCancel; id != 7 {
		t.Errorf("C-CANCEL-RQ for message %d, want 7", id)
	}
}

func TestFindWorklistAgainstBrokenPeers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  func(rq *command) []byte
		wantErr string
	}{
		{"pending without identifier", func(rq *command) []byte { return findRSP(rq.messageID, StatusPending, nil) },
			"pending C-FIND-RSP without an identifier"},
		{"garbage identifier", func(rq *command) []byte {
			b := appendCommandPData(nil, 1, appendCommand(nil, &command{affectedSOPClass: ModalityWorklistFind, commandField: commandCFindRSP,
				respondedTo: rq.messageID, status: StatusPending}), 0)
			return appendDataSetPData(b, 1, bytes.Repeat([]byte{0x10, 0x00, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0x7F}, 2), 0)
		}, "undecodable worklist item"},
		{"answer to another message", func(rq *command) []byte { return findRSP(rq.messageID+1, StatusSuccess, nil) },
			"C-FIND-RSP answers message 2, we sent 1"},
		{"echo response", func(rq *command) []byte { return echoRSP(rq.messageID, 0) }, "command field 0x8030 in answer to C-FIND-RQ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := scriptedPeer(t, func(t *testing.T, c net.Conn, rd *pduReader) {
				if acceptAssociation(t, c, rd, 0) == nil {
					return
				}
				if rq, _ := readMessage(t, rd); rq != nil {
					c.Write(tt.answer(rq))
				}
				drain(c)
			})
			_, err := FindWorklist(context.Background(), addr, WorklistQuery{}, Options{Timeout: 5 * time.Second})
			if Classify(err) != ClassProtocol || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v (%v), want a protocol error saying %q", err, Classify(err), tt.wantErr)
			}
		})
	}
}

// FuzzDecodeWorklistResponse feeds C-FIND response streams (P-DATA-TF PDUs
// of commands and identifiers) to the message reader and the identifier
// decoder: no input may panic or make them keep more than their bounds.
func FuzzDecodeWorklistResponse(f *testing.F) {
	f.Add(append(findRSP(1, StatusPending, &sampleItem), findRSP(1, StatusSuccess, nil)...))
	f.Add(findRSP(1, StatusOutOfResources, nil))
	explicit, _ := encodeWorklistItem(sampleItem, true, true)
	f.Add(appendDataSetPData(appendCommandPData(nil, 1, appendCommand(nil, &command{affectedSOPClass: ModalityWorklistFind,
		commandField: commandCFindRSP, respondedTo: 1, status: StatusPending}), 0), 1, explicit, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		m := messageReader{rd: newPDUReader(bytes.NewReader(in), DefaultMaxPDULength), contextID: 1}
		for range 8 {
			cmd, data, err := m.next()
			if err != nil {
				return
			}
			if cmd == nil || len(data) > maxIdentifierLen {
				t.Fatalf("message %+v with %d data bytes", cmd, len(data))
			}
			for _, explicit := range []bool{false, true} {
				it, err := decodeWorklistItem(data, explicit)
				if err != nil {
					continue
				}
				if len(it.PatientName) > len(data) || len(it.Description) > len(data) {
					t.Fatalf("decoded values longer than the data set: %+v", it)
				}
			}
		}
	})
}

// TestServerWorklistAgainstBrokenQueries: what a broken or hostile
// worklist client gets from the Server.
func TestServerWorklistAgainstBrokenQueries(t *testing.T) {
	t.Parallel()
	addr := startServer(t, &Server{AETitle: "SIM", Worklist: func(Association, WorklistQuery) ([]WorklistItem, uint16) {
		return []WorklistItem{sampleItem}, StatusSuccess
	}})
	mwl := presentationContext{id: 1, abstractSyntax: ModalityWorklistFind, transferSyntaxes: []string{ImplicitVRLittleEndian}}
	findRQ := appendCommandPData(nil, 1, appendCommand(nil, &command{affectedSOPClass: ModalityWorklistFind, commandField: commandCFindRQ,
		messageID: 3}), 0)
	tests := []struct {
		name string
		send []byte
		// wantAbort is the A-ABORT reason expected, or -1 for a C-FIND-RSP
		// with wantStatus.
		wantAbort  int
		wantStatus uint16
	}{
		{"identifier without a command", appendDataSetPData(nil, 1, []byte{8, 0, 0x50, 0, 0, 0, 0, 0}, 0), 5, 0},
		{"command instead of the identifier", append(slices.Clone(findRQ), findRQ...), 5, 0},
		{"identifier over 1 MiB", appendDataSetPData(slices.Clone(findRQ), 1, make([]byte, maxIdentifierLen+2), DefaultMaxPDULength), 0, 0},
		{"undecodable identifier", appendDataSetPData(slices.Clone(findRQ), 1, []byte{0x10, 0, 0x10, 0, 0xFF, 0xFF, 0xFF, 0x7F}, 0), -1,
			StatusIdentifierMismatch},
		{"empty identifier matches all", appendDataSetPData(slices.Clone(findRQ), 1, nil, 0), -1, StatusPending},
		{"C-ECHO on the worklist context", appendCommandPData(nil, 1, appendCommand(nil, &command{affectedSOPClass: VerificationSOPClass,
			commandField: commandCEchoRQ, messageID: 1, dataSetType: noDataSet}), 0), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rd, ac := rawAssociate(t, addr, verificationRQ(mwl))
			if ac == nil || ac.contexts[0].result != 0 {
				t.Fatalf("worklist context not accepted: %+v", ac)
			}
			go c.Write(tt.send) // a large write would wait for the server's reads
			if tt.wantAbort >= 0 {
				typ, body, err := rd.next()
				if err != nil || typ != pduAbort || body[2] != 2 || int(body[3]) != tt.wantAbort {
					t.Fatalf("got %s % x (%v), want A-ABORT from provider with reason %d", pduName(typ), body, err, tt.wantAbort)
				}
				return
			}
			rsp, _ := readMessage(t, rd)
			if rsp == nil || rsp.commandField != commandCFindRSP || rsp.respondedTo != 3 || rsp.status != tt.wantStatus {
				t.Fatalf("got %+v, want C-FIND-RSP to message 3 with status 0x%04X", rsp, tt.wantStatus)
			}
		})
	}
}
