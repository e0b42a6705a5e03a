package dicomping

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// TestCommandAgainstIndependentDecoder decodes our command sets with
// suyashkumar/dicom, an implementation that shares no code with ours, so a
// mistake made symmetrically in appendCommand and parseCommand shows.
func TestCommandAgainstIndependentDecoder(t *testing.T) {
	tests := []struct {
		name string
		cmd  command
		want map[tag.Tag]string
	}{
		{"C-ECHO-RQ", command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRQ, messageID: 42, dataSetType: noDataSet},
			map[tag.Tag]string{
				{Group: 0, Element: tagAffectedSOPClass}: VerificationSOPClass + "\x00",
				{Group: 0, Element: tagCommandField}:     "\x30\x00",
				{Group: 0, Element: tagMessageID}:        "\x2a\x00",
				{Group: 0, Element: tagDataSetType}:      "\x01\x01",
			}},
		{"C-ECHO-RSP", command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRSP, respondedTo: 42, dataSetType: noDataSet, status: 0x0122},
			map[tag.Tag]string{
				{Group: 0, Element: tagAffectedSOPClass}: VerificationSOPClass + "\x00",
				{Group: 0, Element: tagCommandField}:     "\x30\x80",
				{Group: 0, Element: tagRespondedTo}:      "\x2a\x00",
				{Group: 0, Element: tagDataSetType}:      "\x01\x01",
				{Group: 0, Element: tagStatus}:           "\x22\x01",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendCommand(nil, &tt.cmd)
			// The decoder refuses input under 100 bytes: pad with an
			// Affected SOP Instance UID (0000,1000), ignored below.
			padded := append(bytes.Clone(b), 0, 0, 0x00, 0x10, 64, 0, 0, 0)
			padded = append(padded, strings.Repeat("1", 64)...)
			p, err := dicom.NewParser(bytes.NewReader(padded), int64(len(padded)), nil, dicom.SkipMetadataReadOnNewParserInit())
			if err != nil {
				t.Fatal(err)
			}
			got := map[tag.Tag]string{}
			var groupLength int
			var afterGroupLength int
			for {
				e, err := p.Next()
				if errors.Is(err, io.EOF) || errors.Is(err, dicom.ErrorEndOfDICOM) {
					break
				}
				if err != nil {
					t.Fatalf("independent decoder: %v", err)
				}
				if e.Tag.Element == 0x1000 {
					continue
				}
				if e.Tag.Element == tagGroupLength {
					groupLength = dicom.MustGetInts(e.Value)[0]
					afterGroupLength = len(b) - 12
					continue
				}
				// Its dictionary lacks most command elements, so it hands
				// their values over as raw bytes: compare those.
				raw, ok := e.Value.GetValue().([]byte)
				if !ok {
					t.Fatalf("element %v decoded as %T, want raw bytes", e.Tag, e.Value.GetValue())
				}
				got[e.Tag] = string(raw)
			}
			if groupLength != afterGroupLength {
				t.Errorf("group length %d, the group has %d bytes after it", groupLength, afterGroupLength)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %v, want %v", got, tt.want)
			}
			back, err := parseCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			tt.cmd.hasCommandField = true
			tt.cmd.hasStatus = tt.cmd.commandField&0x8000 != 0
			if *back != tt.cmd {
				t.Errorf("parseCommand = %+v, want %+v", *back, tt.cmd)
			}
		})
	}
}

func TestParseCommandRefusals(t *testing.T) {
	good := appendCommand(nil, &command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRSP, respondedTo: 1, dataSetType: noDataSet})
	tests := []struct {
		name string
		in   []byte
	}{
		{"truncated element header", good[:len(good)-11]},
		{"value past the end", good[:len(good)-1]},
		{"element outside group 0000", append(bytes.Clone(good), 0x08, 0, 0x18, 0, 0, 0, 0, 0)},
		{"US of 4 bytes", []byte{0, 0, 0x00, 0x01, 4, 0, 0, 0, 0x30, 0, 0, 0}},
		{"no command field", good[:12]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseCommand(tt.in); !errors.Is(err, errMalformed) {
				t.Fatalf("err = %v, want malformed", err)
			}
		})
	}
}
