package dicomping

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// DIMSE command field values (PS3.7 section E.1).
const (
	commandCEchoRQ   = 0x0030
	commandCEchoRSP  = 0x8030
	commandCFindRQ   = 0x0020
	commandCFindRSP  = 0x8020
	commandCCancelRQ = 0x0FFF
	// noDataSet is the Command Data Set Type meaning "no data set follows".
	noDataSet = 0x0101
)

// Tags of the command group (0000,eeee) this package reads or writes.
const (
	tagGroupLength      = 0x0000
	tagAffectedSOPClass = 0x0002
	tagCommandField     = 0x0100
	tagMessageID        = 0x0110
	tagRespondedTo      = 0x0120
	tagPriority         = 0x0700
	tagDataSetType      = 0x0800
	tagStatus           = 0x0900
)

// maxCommandLen bounds a reassembled DIMSE command set. A C-ECHO command is
// under 100 bytes; real commands of other services stay well under 4 KiB.
const maxCommandLen = 16 << 10

// command holds the command-set fields the C-ECHO and C-FIND exchanges use.
type command struct {
	affectedSOPClass string
	commandField     uint16
	messageID        uint16
	respondedTo      uint16
	dataSetType      uint16
	status           uint16
	hasStatus        bool
	hasCommandField  bool
}

// appendCommand encodes c as a command set in Implicit VR Little Endian,
// the encoding PS3.7 section 6.3.1 mandates for every command whatever the
// negotiated transfer syntax. Elements are written in tag order.
func appendCommand(b []byte, c *command) []byte {
	start := len(b)
	b = appendUL(b, tagGroupLength, 0) // patched below
	// C-CANCEL-RQ is the one command without an affected SOP class.
	if uid := c.affectedSOPClass; uid != "" {
		b = binary.LittleEndian.AppendUint16(b, 0)
		b = binary.LittleEndian.AppendUint16(b, tagAffectedSOPClass)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(uid)+len(uid)%2))
		b = append(b, uid...)
		if len(uid)%2 == 1 {
			b = append(b, 0) // UIDs are padded to even length with NUL
		}
	}
	b = appendUS(b, tagCommandField, c.commandField)
	switch {
	case c.commandField == commandCCancelRQ:
		b = appendUS(b, tagRespondedTo, c.respondedTo)
	case c.commandField&0x8000 == 0:
		b = appendUS(b, tagMessageID, c.messageID)
	default:
		b = appendUS(b, tagRespondedTo, c.respondedTo)
	}
	if c.commandField == commandCFindRQ {
		b = appendUS(b, tagPriority, 0) // medium
	}
	b = appendUS(b, tagDataSetType, c.dataSetType)
	if c.commandField&0x8000 != 0 {
		b = appendUS(b, tagStatus, c.status)
	}
	// The group length counts the bytes after the group length element.
	binary.LittleEndian.PutUint32(b[start+8:], uint32(len(b)-start-12))
	return b
}

func appendUS(b []byte, element uint16, v uint16) []byte {
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, element)
	b = binary.LittleEndian.AppendUint32(b, 2)
	return binary.LittleEndian.AppendUint16(b, v)
}

func appendUL(b []byte, element uint16, v uint32) []byte {
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, element)
	b = binary.LittleEndian.AppendUint32(b, 4)
	return binary.LittleEndian.AppendUint32(b, v)
}

// parseCommand decodes an Implicit VR Little Endian command set, keeping
// the fields of command and skipping the others (priority, move
// originator...). Every element must belong to group 0000 and fit.
func parseCommand(b []byte) (*command, error) {
	c := &command{}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: truncated command element header", errMalformed)
		}
		group := binary.LittleEndian.Uint16(b[0:2])
		element := binary.LittleEndian.Uint16(b[2:4])
		n := binary.LittleEndian.Uint32(b[4:8])
		if group != 0 {
			return nil, fmt.Errorf("%w: element (%04x,%04x) outside the command group", errMalformed, group, element)
		}
		if uint64(n) > uint64(len(b)-8) {
			return nil, fmt.Errorf("%w: command element (0000,%04x) length %d exceeds the %d bytes left", errMalformed, element, n, len(b)-8)
		}
		v := b[8 : 8+n]
		b = b[8+n:]
		switch element {
		case tagAffectedSOPClass:
			c.affectedSOPClass = strings.TrimRight(string(v), " \x00")
		case tagCommandField, tagMessageID, tagRespondedTo, tagDataSetType, tagStatus:
			if n != 2 {
				return nil, fmt.Errorf("%w: command element (0000,%04x) has length %d, want 2", errMalformed, element, n)
			}
			u := binary.LittleEndian.Uint16(v)
			switch element {
			case tagCommandField:
				c.commandField, c.hasCommandField = u, true
			case tagMessageID:
				c.messageID = u
			case tagRespondedTo:
				c.respondedTo = u
			case tagDataSetType:
				c.dataSetType = u
			case tagStatus:
				c.status, c.hasStatus = u, true
			}
		}
	}
	if !c.hasCommandField {
		return nil, fmt.Errorf("%w: command set without command field", errMalformed)
	}
	return c, nil
}
