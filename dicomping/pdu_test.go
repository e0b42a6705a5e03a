package dicomping

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func sampleAssociateRQ() *associate {
	return &associate{
		protocolVersion: 1,
		calledAE:        "PACS",
		callingAE:       "VIGIA",
		appContext:      applicationContextName,
		contexts: []presentationContext{
			{id: 1, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{ImplicitVRLittleEndian, ExplicitVRLittleEndian}},
			{id: 3, abstractSyntax: "1.2.840.10008.5.1.4.1.1.2", transferSyntaxes: []string{ExplicitVRLittleEndian}},
		},
		maxPDULength:     16384,
		implClassUID:     ImplementationClassUID,
		implVersionName:  ImplementationVersionName,
		hasMaxPDULength:  true,
		hasImplClassUID:  true,
		hasUserInfoItems: true,
	}
}

func TestAssociateRoundTrip(t *testing.T) {
	for _, typ := range []byte{pduAssociateRQ, pduAssociateAC} {
		want := sampleAssociateRQ()
		if typ == pduAssociateAC {
			for i := range want.contexts {
				want.contexts[i].abstractSyntax = ""
				want.contexts[i].transferSyntaxes = want.contexts[i].transferSyntaxes[:1]
				want.contexts[i].result = byte(i * 3)
			}
		}
		b := appendAssociate(nil, typ, want)
		rd := newPDUReader(bytes.NewReader(b), DefaultMaxPDULength)
		gotType, body, err := rd.next()
		if err != nil || gotType != typ {
			t.Fatalf("read back %s: type %d, err %v", pduName(typ), gotType, err)
		}
		got, err := parseAssociate(gotType, body)
		if err != nil {
			t.Fatalf("parse %s: %v", pduName(typ), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", pduName(typ), got, want)
		}
	}
}

// TestAssociateWireFormat pins the bytes of the fixed part against PS3.8
// table 9-11, so that a symmetric encoder/decoder bug cannot hide.
func TestAssociateWireFormat(t *testing.T) {
	b := appendAssociate(nil, pduAssociateRQ, sampleAssociateRQ())
	if b[0] != 0x01 || b[1] != 0 {
		t.Errorf("PDU type bytes % x", b[:2])
	}
	if got := binary.BigEndian.Uint32(b[2:6]); int(got) != len(b)-6 {
		t.Errorf("PDU length %d, body is %d bytes", got, len(b)-6)
	}
	if got := string(b[10:26]); got != "PACS            " {
		t.Errorf("called AE field %q", got)
	}
	if got := string(b[26:42]); got != "VIGIA           " {
		t.Errorf("calling AE field %q", got)
	}
	if !bytes.Equal(b[42:74], make([]byte, 32)) {
		t.Errorf("reserved bytes not zero")
	}
	wantAppCtx := append([]byte{0x10, 0, 0, 21}, applicationContextName...)
	if !bytes.HasPrefix(b[74:], wantAppCtx) {
		t.Errorf("application context item % x", b[74:74+len(wantAppCtx)])
	}
}

func TestReadPDURefusals(t *testing.T) {
	header := func(typ byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{typ, 0}, n)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"4 GB P-DATA", header(pduPData, 0xFFFFFFFF), errTooLong},
		{"P-DATA one byte over our max", header(pduPData, DefaultMaxPDULength+1), errTooLong},
		{"huge A-ASSOCIATE-AC", header(pduAssociateAC, 1<<20), errTooLong},
		{"A-ASSOCIATE-AC shorter than fixed part", header(pduAssociateAC, 10), errMalformed},
		{"A-ABORT of 5 bytes", header(pduAbort, 5), errMalformed},
		{"A-ASSOCIATE-RJ of 0 bytes", header(pduAssociateRJ, 0), errMalformed},
		{"unknown PDU type (HTTP)", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), errMalformed},
		{"P-DATA too short for a PDV", header(pduPData, 3), errMalformed},
		{"truncated header", []byte{0x02, 0, 0}, io.ErrUnexpectedEOF},
		{"truncated body", append(header(pduReleaseRP, 4), 0, 0), io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := newPDUReader(bytes.NewReader(tt.in), DefaultMaxPDULength).next()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseAssociateRefusals(t *testing.T) {
	good := appendAssociate(nil, pduAssociateRQ, sampleAssociateRQ())[pduHeaderLen:]
	mutate := func(f func(b []byte) []byte) []byte {
		return f(bytes.Clone(good))
	}
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"item length past the end", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[associateFixedLen+2:], 0xFFFF)
			return b
		}), "exceeds"},
		{"truncated item header", append(bytes.Clone(good), 0x50, 0), "truncated item header"},
		{"no application context", good[:associateFixedLen], "without application context"},
		{"AC item inside RQ", append(bytes.Clone(good), itemPresentationAC, 0, 0, 4, 1, 0, 0, 0), "presentation context item 0x21"},
		{"max length item of 2 bytes", append(bytes.Clone(good), itemUserInformation, 0, 0, 6, itemMaxLength, 0, 0, 2, 1, 2), "maximum length item"},
		{"presentation context without abstract syntax", append(bytes.Clone(good), itemPresentationRQ, 0, 0, 4, 5, 0, 0, 0), "without abstract syntax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAssociate(pduAssociateRQ, tt.body)
			if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want malformed error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestParsePData(t *testing.T) {
	cmd := appendCommand(nil, &command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRQ, messageID: 7, dataSetType: noDataSet})
	tests := []struct {
		name     string
		peerMax  uint32
		wantPDUs int
	}{
		{"unlimited peer", 0, 1},
		{"roomy peer", 16384, 1},
		{"tiny peer forces fragments", 26, (len(cmd) + 19) / 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendCommandPData(nil, 1, cmd, tt.peerMax)
			rd := newPDUReader(bytes.NewReader(b), DefaultMaxPDULength)
			var got []byte
			pdus := 0
			for {
				typ, body, err := rd.next()
				if err == io.EOF {
					break
				}
				if err != nil || typ != pduPData {
					t.Fatalf("PDU %d: type %d err %v", pdus, typ, err)
				}
				if tt.peerMax != 0 && uint32(len(body)) > tt.peerMax {
					t.Errorf("PDU of %d bytes exceeds peer max %d", len(body), tt.peerMax)
				}
				pdus++
				pdvs, err := parsePData(body, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range pdvs {
					if !v.command || v.contextID != 1 {
						t.Errorf("PDV %+v", v)
					}
					got = append(got, v.data...)
					if v.last != (len(got) == len(cmd)) {
						t.Errorf("last flag %v after %d of %d bytes", v.last, len(got), len(cmd))
					}
				}
			}
			if pdus != tt.wantPDUs || !bytes.Equal(got, cmd) {
				t.Errorf("%d PDUs (want %d), reassembled equal: %v", pdus, tt.wantPDUs, bytes.Equal(got, cmd))
			}
		})
	}
	bad := []struct {
		name string
		body []byte
	}{
		{"PDV length past the end", []byte{0, 0, 0, 9, 1, 3, 0}},
		{"PDV length below 2", []byte{0, 0, 0, 1, 1, 3}},
		{"reserved control bits", []byte{0, 0, 0, 2, 1, 0x83}},
		{"trailing bytes", []byte{0, 0, 0, 2, 1, 3, 0, 0}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parsePData(tt.body, nil); !errors.Is(err, errMalformed) {
				t.Fatalf("err = %v, want malformed", err)
			}
		})
	}
}

// FuzzDecodePDU feeds arbitrary bytes to everything that decodes peer
// input. It must never panic nor allocate beyond the limits, and whatever
// decodes must re-encode to something that decodes to the same value.
func FuzzDecodePDU(f *testing.F) {
	f.Add(appendAssociate(nil, pduAssociateRQ, sampleAssociateRQ()))
	f.Add(appendReject(nil, reject{1, 1, 7}))
	f.Add(appendAbort(nil, 2, 6))
	f.Add(appendRelease(nil, pduReleaseRP))
	f.Add(appendCommandPData(nil, 1, appendCommand(nil, &command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRSP, respondedTo: 1, dataSetType: noDataSet}), 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := newPDUReader(bytes.NewReader(in), DefaultMaxPDULength)
		for range 4 {
			typ, body, err := rd.next()
			if err != nil {
				return
			}
			if len(body) > maxAssociatePDU {
				t.Fatalf("accepted a %d-byte body", len(body))
			}
			switch typ {
			case pduAssociateRQ, pduAssociateAC:
				a, err := parseAssociate(typ, body)
				if err != nil {
					continue
				}
				again, err := parseAssociate(typ, appendAssociate(nil, typ, a)[pduHeaderLen:])
				if err != nil {
					// Re-encoding drops unknown items, and always writes
					// the user information items: both decode.
					t.Fatalf("re-encoded %s does not decode: %v", pduName(typ), err)
				}
				if again.calledAE != a.calledAE || again.appContext != a.appContext || len(again.contexts) != len(a.contexts) {
					t.Fatalf("round trip changed %+v into %+v", a, again)
				}
			case pduPData:
				pdvs, err := parsePData(body, nil)
				if err != nil {
					continue
				}
				for _, v := range pdvs {
					parseCommand(v.data)
				}
			}
		}
	})
}
