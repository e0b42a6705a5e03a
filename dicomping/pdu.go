package dicomping

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PDU types of the DICOM upper layer (PS3.8 section 9.3).
const (
	pduAssociateRQ = 0x01
	pduAssociateAC = 0x02
	pduAssociateRJ = 0x03
	pduPData       = 0x04
	pduReleaseRQ   = 0x05
	pduReleaseRP   = 0x06
	pduAbort       = 0x07
)

// Item types inside A-ASSOCIATE-RQ/AC PDUs (PS3.8 sections 9.3.2 to 9.3.3
// and annex D).
const (
	itemApplicationContext = 0x10
	itemPresentationRQ     = 0x20
	itemPresentationAC     = 0x21
	itemAbstractSyntax     = 0x30
	itemTransferSyntax     = 0x40
	itemUserInformation    = 0x50
	itemMaxLength          = 0x51
	itemImplClassUID       = 0x52
	itemImplVersionName    = 0x55
)

// UIDs this package speaks.
const (
	// VerificationSOPClass is the SOP Class UID of DICOM Verification (C-ECHO).
	VerificationSOPClass = "1.2.840.10008.1.1"
	// ImplicitVRLittleEndian is the default DICOM transfer syntax, which every
	// peer must support.
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	// ExplicitVRLittleEndian is the transfer syntax most peers prefer.
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	// applicationContextName is the only DICOM application context (PS3.7 annex A).
	applicationContextName = "1.2.840.10008.3.1.1.1"
)

const (
	pduHeaderLen = 6
	// associateFixedLen is the fixed part of A-ASSOCIATE-RQ/AC after the
	// PDU header: version, reserved, two AE titles and 32 reserved bytes.
	associateFixedLen = 68
	// maxAssociatePDU bounds A-ASSOCIATE-RQ/AC PDUs, which the negotiated
	// maximum length does not cover: 64 KiB holds a proposal of all 128
	// presentation contexts with several transfer syntaxes each.
	maxAssociatePDU = 64 << 10
	// minMaxPDULength is the smallest maximum length we advertise or accept
	// in options: below it a C-ECHO command could not fit sensibly.
	minMaxPDULength = 1024
)

// errTooLong and errMalformed are wrapped into ProtocolError by readers so
// tests and fuzzers can tell the two kinds of refusal apart.
var (
	errTooLong   = errors.New("PDU longer than allowed")
	errMalformed = errors.New("malformed PDU")
	// errUnrecognized is the malformed PDU whose type is unknown: often
	// another protocol (HTTP, TLS) talking to a DICOM port.
	errUnrecognized = fmt.Errorf("%w: unrecognized PDU type", errMalformed)
)

// pduReader reads whole PDUs with a buffered reader so that a PDU already
// in the socket buffer costs one read system call, not two.
type pduReader struct {
	r   *bufio.Reader
	buf []byte
	// maxPData is the largest P-DATA-TF length we accept: the maximum length
	// we advertised. Other PDUs have their own fixed bounds.
	maxPData uint32
}

// pduReadBufSize holds any PDU of a C-ECHO exchange (an A-ASSOCIATE-AC is
// typically 200 bytes, a C-ECHO-RSP under 100) so that each costs one
// read(2); larger PDUs are read through it in pieces.
const pduReadBufSize = 1024

func newPDUReader(r io.Reader, maxPData uint32) *pduReader {
	return &pduReader{r: bufio.NewReaderSize(r, pduReadBufSize), maxPData: maxPData}
}

// reset makes a pooled reader read from r, forgetting anything buffered.
func (p *pduReader) reset(r io.Reader, maxPData uint32) {
	p.r.Reset(r)
	p.maxPData = maxPData
}

// next reads one PDU and returns its type and body. The body aliases an
// internal buffer that the next call overwrites.
func (p *pduReader) next() (byte, []byte, error) {
	hdr, err := p.r.Peek(pduHeaderLen)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	typ := hdr[0]
	n := binary.BigEndian.Uint32(hdr[2:6])
	if err := checkLength(typ, n, p.maxPData); err != nil {
		return typ, nil, err
	}
	if _, err := p.r.Discard(pduHeaderLen); err != nil {
		return typ, nil, err
	}
	if uint32(cap(p.buf)) < n {
		p.buf = make([]byte, n)
	}
	body := p.buf[:n]
	if _, err := io.ReadFull(p.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return typ, nil, err
	}
	return typ, body, nil
}

// checkLength refuses, before anything is allocated, a PDU whose declared
// length is impossible for its type or larger than we accept.
func checkLength(typ byte, n, maxPData uint32) error {
	switch typ {
	case pduAssociateRQ, pduAssociateAC:
		if n < associateFixedLen {
			return fmt.Errorf("%w: A-ASSOCIATE length %d is shorter than its fixed fields", errMalformed, n)
		}
		if n > maxAssociatePDU {
			return fmt.Errorf("%w: A-ASSOCIATE length %d exceeds %d", errTooLong, n, maxAssociatePDU)
		}
	case pduAssociateRJ, pduReleaseRQ, pduReleaseRP, pduAbort:
		if n != 4 {
			return fmt.Errorf("%w: %s length %d, want 4", errMalformed, pduName(typ), n)
		}
	case pduPData:
		if n < 6 {
			return fmt.Errorf("%w: P-DATA-TF length %d cannot hold a PDV", errMalformed, n)
		}
		if n > maxPData {
			return fmt.Errorf("%w: P-DATA-TF length %d exceeds our maximum %d", errTooLong, n, maxPData)
		}
	default:
		return fmt.Errorf("%w 0x%02x", errUnrecognized, typ)
	}
	return nil
}

func pduName(typ byte) string {
	switch typ {
	case pduAssociateRQ:
		return "A-ASSOCIATE-RQ"
	case pduAssociateAC:
		return "A-ASSOCIATE-AC"
	case pduAssociateRJ:
		return "A-ASSOCIATE-RJ"
	case pduPData:
		return "P-DATA-TF"
	case pduReleaseRQ:
		return "A-RELEASE-RQ"
	case pduReleaseRP:
		return "A-RELEASE-RP"
	case pduAbort:
		return "A-ABORT"
	}
	return fmt.Sprintf("PDU type 0x%02x", typ)
}

// presentationContext is one item of an A-ASSOCIATE-RQ (abstract syntax and
// proposed transfer syntaxes) or of an A-ASSOCIATE-AC (result and the one
// accepted transfer syntax).
type presentationContext struct {
	id               byte
	result           byte // AC only
	abstractSyntax   string
	transferSyntaxes []string
}

// associate is the content of an A-ASSOCIATE-RQ or -AC PDU.
type associate struct {
	protocolVersion  uint16
	calledAE         string
	callingAE        string
	appContext       string
	contexts         []presentationContext
	maxPDULength     uint32
	implClassUID     string
	implVersionName  string
	hasMaxPDULength  bool
	hasImplClassUID  bool
	hasUserInfoItems bool
}

// appendAssociate encodes an A-ASSOCIATE-RQ (typ pduAssociateRQ) or -AC.
func appendAssociate(b []byte, typ byte, a *associate) []byte {
	start := len(b)
	b = append(b, typ, 0, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, a.protocolVersion)
	b = append(b, 0, 0)
	b = appendAETitle(b, a.calledAE)
	b = appendAETitle(b, a.callingAE)
	b = append(b, make([]byte, 32)...)
	b = appendItem(b, itemApplicationContext, a.appContext)
	for _, pc := range a.contexts {
		itemStart := len(b)
		if typ == pduAssociateRQ {
			b = append(b, itemPresentationRQ, 0, 0, 0, pc.id, 0, 0, 0)
			b = appendItem(b, itemAbstractSyntax, pc.abstractSyntax)
		} else {
			b = append(b, itemPresentationAC, 0, 0, 0, pc.id, 0, pc.result, 0)
		}
		for _, ts := range pc.transferSyntaxes {
			b = appendItem(b, itemTransferSyntax, ts)
		}
		binary.BigEndian.PutUint16(b[itemStart+2:], uint16(len(b)-itemStart-4))
	}
	uiStart := len(b)
	b = append(b, itemUserInformation, 0, 0, 0)
	b = append(b, itemMaxLength, 0, 0, 4)
	b = binary.BigEndian.AppendUint32(b, a.maxPDULength)
	b = appendItem(b, itemImplClassUID, a.implClassUID)
	if a.implVersionName != "" {
		b = appendItem(b, itemImplVersionName, a.implVersionName)
	}
	binary.BigEndian.PutUint16(b[uiStart+2:], uint16(len(b)-uiStart-4))
	binary.BigEndian.PutUint32(b[start+2:], uint32(len(b)-start-pduHeaderLen))
	return b
}

// appendAETitle writes a 16-byte space-padded AE title field.
func appendAETitle(b []byte, ae string) []byte {
	b = append(b, ae...)
	for i := len(ae); i < 16; i++ {
		b = append(b, ' ')
	}
	return b
}

func appendItem(b []byte, typ byte, value string) []byte {
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

// parseAssociate decodes the body of an A-ASSOCIATE-RQ or -AC PDU. It
// checks that every length adds up; unknown items are skipped, as PS3.8
// asks of an acceptor, so that newer peers' extensions do not break us.
func parseAssociate(typ byte, body []byte) (*associate, error) {
	if len(body) < associateFixedLen {
		return nil, fmt.Errorf("%w: %s body of %d bytes", errMalformed, pduName(typ), len(body))
	}
	a := &associate{
		protocolVersion: binary.BigEndian.Uint16(body[0:2]),
		calledAE:        trimAE(body[4:20]),
		callingAE:       trimAE(body[20:36]),
	}
	rest := body[associateFixedLen:]
	for len(rest) > 0 {
		itemType, value, next, err := splitItem(rest)
		if err != nil {
			return nil, err
		}
		rest = next
		switch itemType {
		case itemApplicationContext:
			a.appContext = trimUID(value)
		case itemPresentationRQ, itemPresentationAC:
			if (itemType == itemPresentationRQ) != (typ == pduAssociateRQ) {
				return nil, fmt.Errorf("%w: presentation context item 0x%02x in %s", errMalformed, itemType, pduName(typ))
			}
			pc, err := parsePresentationContext(itemType, value)
			if err != nil {
				return nil, err
			}
			if len(a.contexts) >= 256 {
				return nil, fmt.Errorf("%w: more than 256 presentation contexts", errMalformed)
			}
			a.contexts = append(a.contexts, pc)
		case itemUserInformation:
			if err := parseUserInformation(a, value); err != nil {
				return nil, err
			}
		}
	}
	if a.appContext == "" {
		return nil, fmt.Errorf("%w: %s without application context item", errMalformed, pduName(typ))
	}
	return a, nil
}

// splitItem cuts one item (type, reserved, 2-byte length, value) off b.
func splitItem(b []byte) (typ byte, value, rest []byte, err error) {
	if len(b) < 4 {
		return 0, nil, nil, fmt.Errorf("%w: truncated item header", errMalformed)
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if len(b)-4 < n {
		return 0, nil, nil, fmt.Errorf("%w: item 0x%02x length %d exceeds the %d bytes left", errMalformed, b[0], n, len(b)-4)
	}
	return b[0], b[4 : 4+n], b[4+n:], nil
}

func parsePresentationContext(itemType byte, v []byte) (presentationContext, error) {
	if len(v) < 4 {
		return presentationContext{}, fmt.Errorf("%w: presentation context item of %d bytes", errMalformed, len(v))
	}
	pc := presentationContext{id: v[0]}
	if itemType == itemPresentationAC {
		pc.result = v[2]
	}
	rest := v[4:]
	for len(rest) > 0 {
		sub, value, next, err := splitItem(rest)
		if err != nil {
			return pc, err
		}
		rest = next
		switch sub {
		case itemAbstractSyntax:
			pc.abstractSyntax = trimUID(value)
		case itemTransferSyntax:
			if len(pc.transferSyntaxes) >= 64 {
				return pc, fmt.Errorf("%w: more than 64 transfer syntaxes in context %d", errMalformed, pc.id)
			}
			pc.transferSyntaxes = append(pc.transferSyntaxes, trimUID(value))
		default:
			return pc, fmt.Errorf("%w: unexpected sub-item 0x%02x in presentation context %d", errMalformed, sub, pc.id)
		}
	}
	if itemType == itemPresentationRQ && pc.abstractSyntax == "" {
		return pc, fmt.Errorf("%w: presentation context %d without abstract syntax", errMalformed, pc.id)
	}
	return pc, nil
}

func parseUserInformation(a *associate, v []byte) error {
	a.hasUserInfoItems = true
	for len(v) > 0 {
		sub, value, next, err := splitItem(v)
		if err != nil {
			return err
		}
		v = next
		switch sub {
		case itemMaxLength:
			if len(value) != 4 {
				return fmt.Errorf("%w: maximum length item of %d bytes", errMalformed, len(value))
			}
			a.maxPDULength = binary.BigEndian.Uint32(value)
			a.hasMaxPDULength = true
		case itemImplClassUID:
			a.implClassUID = trimUID(value)
			a.hasImplClassUID = true
		case itemImplVersionName:
			a.implVersionName = strings.TrimRight(string(value), " \x00")
		}
	}
	return nil
}

// trimAE returns an AE title without its padding: leading and trailing
// spaces are not significant (PS3.5 table 6.2-1, AE).
func trimAE(b []byte) string {
	return strings.Trim(string(b), " \x00")
}

// trimUID drops the NUL or space padding some peers add to UIDs.
func trimUID(b []byte) string {
	return strings.TrimRight(string(b), " \x00")
}

// reject is the content of an A-ASSOCIATE-RJ PDU.
type reject struct{ result, source, reason byte }

func appendReject(b []byte, r reject) []byte {
	return append(b, pduAssociateRJ, 0, 0, 0, 0, 4, 0, r.result, r.source, r.reason)
}

func appendAbort(b []byte, source, reason byte) []byte {
	return append(b, pduAbort, 0, 0, 0, 0, 4, 0, 0, source, reason)
}

func appendRelease(b []byte, typ byte) []byte {
	return append(b, typ, 0, 0, 0, 0, 4, 0, 0, 0, 0)
}

// appendBounded appends src to dst unless the result would exceed limit
// bytes: a command or data set reassembled from PDVs has a bound, whatever
// the peer sends.
func appendBounded(dst, src []byte, limit int, what string) ([]byte, error) {
	if len(dst)+len(src) > limit {
		return dst, fmt.Errorf("%s longer than %d bytes", what, limit)
	}
	return append(dst, src...), nil
}

// pdataBody checks that a PDU read while awaiting a DIMSE message is a
// P-DATA-TF: an A-ABORT becomes an *AbortError, anything else a
// *ProtocolError naming what was awaited.
func pdataBody(typ byte, body []byte, awaiting string) error {
	switch typ {
	case pduPData:
		return nil
	case pduAbort:
		return &AbortError{Source: body[2], Reason: body[3]}
	}
	return &ProtocolError{Reason: "unexpected " + pduName(typ) + " while awaiting " + awaiting}
}

// pdv is one presentation data value of a P-DATA-TF PDU.
type pdv struct {
	contextID byte
	command   bool
	last      bool
	data      []byte
}

// parsePData splits a P-DATA-TF body into its PDVs. Data alias body.
func parsePData(body []byte, dst []pdv) ([]pdv, error) {
	dst = dst[:0]
	for len(body) > 0 {
		if len(body) < 4 {
			return nil, fmt.Errorf("%w: truncated PDV length", errMalformed)
		}
		n := binary.BigEndian.Uint32(body[0:4])
		if n < 2 || uint64(n) > uint64(len(body)-4) {
			return nil, fmt.Errorf("%w: PDV length %d does not fit the %d bytes left", errMalformed, n, len(body)-4)
		}
		mch := body[5]
		if mch&^0x03 != 0 {
			return nil, fmt.Errorf("%w: PDV message control header 0x%02x", errMalformed, mch)
		}
		dst = append(dst, pdv{
			contextID: body[4],
			command:   mch&0x01 != 0,
			last:      mch&0x02 != 0,
			data:      body[6 : 4+n],
		})
		body = body[4+n:]
	}
	if len(dst) == 0 {
		return nil, fmt.Errorf("%w: P-DATA-TF without PDV", errMalformed)
	}
	return dst, nil
}

// appendCommandPData encodes a DIMSE command as P-DATA-TF PDUs, fragmenting
// it so that no PDU exceeds the peer's maximum length (0 means unlimited).
func appendCommandPData(b []byte, contextID byte, command []byte, peerMax uint32) []byte {
	return appendPData(b, contextID, 0x01, command, peerMax)
}

// appendDataSetPData encodes a DIMSE data set (a C-FIND identifier) as
// P-DATA-TF PDUs, fragmented as appendCommandPData does.
func appendDataSetPData(b []byte, contextID byte, data []byte, peerMax uint32) []byte {
	return appendPData(b, contextID, 0x00, data, peerMax)
}

// appendPData writes value as PDVs of kind (message control header bit 0:
// command or data set), one per PDU, the last one flagged.
func appendPData(b []byte, contextID, kind byte, value []byte, peerMax uint32) []byte {
	// Each PDU carries one PDV whose header takes 6 bytes of the PDU body.
	chunk := len(value)
	if peerMax != 0 && peerMax > 6 && int(peerMax)-6 < chunk {
		chunk = int(peerMax) - 6
	}
	for {
		n := min(chunk, len(value))
		mch := kind
		if n == len(value) {
			mch |= 0x02 // last fragment
		}
		b = append(b, pduPData, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(n+6))
		b = binary.BigEndian.AppendUint32(b, uint32(n+2))
		b = append(b, contextID, mch)
		b = append(b, value[:n]...)
		value = value[n:]
		if len(value) == 0 {
			return b
		}
	}
}
