package dicomping

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// ModalityWorklistFind is the SOP Class UID of the Modality Worklist
// Information Model – FIND (PS3.4 annex K): the query a modality sends to
// its RIS or broker for the day's scheduled patients.
const ModalityWorklistFind = "1.2.840.10008.5.1.4.31"

// Statuses of C-FIND responses (PS3.4 section C.4.1.1.4).
const (
	StatusSuccess            = 0x0000
	StatusPending            = 0xFF00
	StatusPendingOptionalKey = 0xFF01 // pending, some optional keys not supported
	StatusCancel             = 0xFE00
	StatusOutOfResources     = 0xA700
	StatusIdentifierMismatch = 0xA900
	StatusUnableToProcess    = 0xC000
)

// Bounds on what a peer may send us in answer to one query.
const (
	// maxIdentifierLen bounds one item's data set; a worklist item is
	// typically under 2 KiB.
	maxIdentifierLen = 1 << 20
	// MaxWorklistItems is how many items a query keeps; more are counted
	// (WorklistResult.Total) but not kept, so a broker answering with a
	// year of schedule cannot exhaust memory.
	MaxWorklistItems = 10000
)

// WorklistQuery selects scheduled procedure steps. Empty fields match
// everything.
type WorklistQuery struct {
	// Date is the scheduled procedure step start date: YYYYMMDD, or a
	// range YYYYMMDD-YYYYMMDD (either end may be left open).
	Date string
	// Modality, e.g. CT or MR.
	Modality string
	// StationAETitle is the scheduled station's AE title.
	StationAETitle string
}

// Validate checks the query's fields against their DICOM value
// representations (DA range, CS, AE).
func (q WorklistQuery) Validate() error {
	if q.Date != "" {
		from, to, isRange := strings.Cut(q.Date, "-")
		if !isRange {
			to = from
		}
		if from == "" && to == "" {
			return &OptionsError{Field: "worklist date", Reason: "a range needs at least one end"}
		}
		for _, d := range []string{from, to} {
			if d == "" {
				continue
			}
			if _, err := time.Parse("20060102", d); err != nil {
				return &OptionsError{Field: "worklist date", Reason: fmt.Sprintf("%q is not a YYYYMMDD date or range", q.Date)}
			}
		}
	}
	if len(q.Modality) > 16 || strings.ContainsFunc(q.Modality, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ' ' || r == '*' || r == '?')
	}) {
		return &OptionsError{Field: "worklist modality", Reason: fmt.Sprintf("%q is not a code string (up to 16 of A-Z, 0-9, _ and space)", q.Modality)}
	}
	if q.StationAETitle != "" {
		if err := ValidateAETitle(q.StationAETitle); err != nil {
			return &OptionsError{Field: "worklist station AE title", Reason: err.Error()}
		}
	}
	return nil
}

// WorklistItem is one scheduled procedure step as a worklist answers it.
// Values are as the peer sent them, without padding.
type WorklistItem struct {
	PatientName     string `json:"patient_name"`
	PatientID       string `json:"patient_id"`
	AccessionNumber string `json:"accession_number"`
	// ScheduledDate (YYYYMMDD) and ScheduledTime (HHMMSS, possibly with
	// fractions or shorter) are the step's start in the site's local time.
	ScheduledDate  string `json:"scheduled_date"`
	ScheduledTime  string `json:"scheduled_time"`
	Modality       string `json:"modality"`
	StationAETitle string `json:"station_ae"`
	StepID         string `json:"step_id,omitempty"`
	Description    string `json:"description,omitempty"`
}

// ScheduledStart returns the step's start in loc, when its date (and time,
// if given) parse.
func (it WorklistItem) ScheduledStart(loc *time.Location) (time.Time, bool) {
	d, err := time.ParseInLocation("20060102", it.ScheduledDate, loc)
	if err != nil {
		return time.Time{}, false
	}
	tm := strings.SplitN(it.ScheduledTime, ".", 2)[0]
	for _, layout := range []string{"150405", "1504", "15"} {
		if len(tm) == len(layout) {
			if t, err := time.Parse(layout, tm); err == nil {
				return d.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second), true
			}
		}
	}
	return d, true
}

// WorklistResult is the outcome of a worklist query. On error it holds
// what was measured and the items received before the failure.
type WorklistResult struct {
	Result
	// Find is the time from sending the C-FIND request to its final response.
	Find time.Duration
	// Items are the items answered, at most MaxWorklistItems of them.
	Items []WorklistItem
	// Total counts every item answered, kept or not.
	Total int
	// Cancelled reports that the deadline came before the final response:
	// a C-CANCEL was sent and Items holds what arrived until then.
	Cancelled bool
}

// finder is the state of the C-FIND exchange of a FindWorklist call.
type finder struct {
	query WorklistQuery
	res   *WorklistResult
}

// FindWorklist queries the modality worklist of the peer at addr: it opens
// an association proposing Modality Worklist Information Model – FIND,
// sends a C-FIND request for the scheduled procedure steps matching q,
// collects the pending responses until the final status, and releases the
// association.
//
// When the deadline (ctx's or opts.Timeout) is near and the peer has not
// finished, it sends a C-CANCEL, keeps what arrived, and fails with a
// timeout (Cancelled is set). Failures are typed as for Echo: a refused
// presentation context is a *ContextRejectedError, a failure status
// (A700 out of resources, A900 identifier mismatch, Cxxx unable to
// process) a *StatusError with Service "C-FIND".
func FindWorklist(ctx context.Context, addr string, q WorklistQuery, opts Options) (WorklistResult, error) {
	res := WorklistResult{Result: Result{Addr: addr}}
	if err := opts.normalize(); err != nil {
		return res, err
	}
	if err := q.Validate(); err != nil {
		return res, err
	}
	res.CallingAETitle, res.CalledAETitle = opts.CallingAETitle, opts.CalledAETitle
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	// The C-CANCEL deadline is set on the connection; the raw-socket path
	// is tuned for echoes, not for this.
	opts.netConnIO = true
	c := echoer{ctx: ctx, addr: addr, opts: &opts, res: &res.Result,
		bufs: &echoBufs{rd: pduReader{r: bufio.NewReaderSize(nil, pduReadBufSize)}}, find: &finder{query: q, res: &res}}
	err := c.run()
	if c.conn != nil {
		c.conn.Close()
	}
	return res, err
}

// cancelMargin is how long before the deadline a query still running is
// cancelled: enough for the peer to answer the C-CANCEL and for the
// release, a fifth of the time left, at most two seconds.
func cancelMargin(left time.Duration) time.Duration {
	return min(left/5, 2*time.Second)
}

// findItems sends the C-FIND request and collects the responses. A final
// status other than Success (or a cancelled query) is returned apart so
// that the association is still released.
func (c *echoer) findItems(ac *associate) (error, error) {
	f := c.find
	explicit := c.res.TransferSyntax == ExplicitVRLittleEndian
	ident, err := encodeWorklistItem(WorklistItem{ScheduledDate: f.query.Date, Modality: f.query.Modality,
		StationAETitle: f.query.StationAETitle}, explicit, false)
	if err != nil {
		return nil, fmt.Errorf("encode the query identifier: %w", err)
	}
	rq := command{affectedSOPClass: ModalityWorklistFind, commandField: commandCFindRQ, messageID: c.opts.MessageID,
		dataSetType: 0x0000}
	c.buf = appendCommandPData(c.buf[:0], verificationContextID, appendCommand(nil, &rq), ac.maxPDULength)
	c.buf = appendDataSetPData(c.buf, verificationContextID, ident, ac.maxPDULength)
	if err := c.write(c.buf); err != nil {
		return nil, err
	}
	deadline, hasDeadline := c.ctx.Deadline()
	if hasDeadline {
		c.setDeadline(deadline.Add(-cancelMargin(time.Until(deadline))))
	}
	mr := messageReader{rd: c.rd, contextID: verificationContextID}
	for {
		rsp, data, err := mr.next()
		if err != nil {
			if hasDeadline && !f.res.Cancelled && c.ctx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded) {
				// The deadline is near: ask the peer to stop, and wait
				// for its final answer until the real deadline.
				f.res.Cancelled = true
				c.setDeadline(deadline)
				cancel := command{commandField: commandCCancelRQ, respondedTo: c.opts.MessageID, dataSetType: noDataSet}
				c.buf = appendCommandPData(c.buf[:0], verificationContextID, appendCommand(nil, &cancel), ac.maxPDULength)
				if err := c.write(c.buf); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		if err := c.checkResponse(rsp, commandCFindRSP, "C-FIND"); err != nil {
			return nil, err
		}
		c.res.Status = rsp.status
		if rsp.status == StatusPending || rsp.status == StatusPendingOptionalKey {
			if data == nil {
				return nil, &ProtocolError{Reason: "pending C-FIND-RSP without an identifier"}
			}
			item, err := decodeWorklistItem(data, explicit)
			if err != nil {
				return nil, &ProtocolError{Reason: "undecodable worklist item", Err: err}
			}
			f.res.Total++
			if len(f.res.Items) < MaxWorklistItems {
				f.res.Items = append(f.res.Items, item)
			}
			continue
		}
		// The final status: what is left of the time is the release's.
		if hasDeadline {
			c.setDeadline(deadline)
		}
		switch {
		case f.res.Cancelled:
			return fmt.Errorf("%w: C-CANCEL sent near the deadline after %d items (final status 0x%04X)",
				context.DeadlineExceeded, f.res.Total, rsp.status), nil
		case rsp.status != StatusSuccess:
			return &StatusError{Status: rsp.status, Service: "C-FIND"}, nil
		}
		return nil, nil
	}
}

// setDeadline moves the connection's deadline, without undoing a
// cancellation: the context's AfterFunc sets a past deadline when it is
// cancelled, and a cancellation just before this call is caught after it.
func (c *echoer) setDeadline(t time.Time) {
	c.conn.SetDeadline(t)
	if c.ctx.Err() != nil {
		c.conn.SetDeadline(longAgo)
	}
}

// messageReader reassembles DIMSE messages, a command set and the data set
// it announces, from the PDVs of one presentation context. PDVs read past
// the end of a message are kept for the next one.
type messageReader struct {
	rd        *pduReader
	contextID byte
	pending   []pdv // PDVs read but not consumed, data copied
	pdvs      []pdv
}

func (m *messageReader) next() (*command, []byte, error) {
	var cmdBytes, data []byte
	var cmd *command
	for {
		for len(m.pending) > 0 {
			v := m.pending[0]
			m.pending = m.pending[1:]
			if v.contextID != m.contextID {
				return nil, nil, &ProtocolError{Reason: fmt.Sprintf("PDV on presentation context %d, we only proposed %d", v.contextID, m.contextID)}
			}
			switch {
			case cmd == nil && !v.command:
				return nil, nil, &ProtocolError{Reason: "data set PDV before its command"}
			case cmd == nil:
				var err error
				if cmdBytes, err = appendBounded(cmdBytes, v.data, maxCommandLen, "command set"); err != nil {
					return nil, nil, &ProtocolError{Reason: err.Error()}
				}
				if !v.last {
					continue
				}
				c, err := parseCommand(cmdBytes)
				if err != nil {
					return nil, nil, err
				}
				if c.dataSetType == noDataSet {
					return c, nil, nil
				}
				cmd = c
			case v.command:
				return nil, nil, &ProtocolError{Reason: "command PDV where a data set was expected"}
			default:
				var err error
				if data, err = appendBounded(data, v.data, maxIdentifierLen, "data set"); err != nil {
					return nil, nil, &ProtocolError{Reason: err.Error()}
				}
				if v.last {
					if data == nil {
						data = []byte{}
					}
					return cmd, data, nil
				}
			}
		}
		typ, body, err := m.rd.next()
		if err != nil {
			return nil, nil, err
		}
		if err := pdataBody(typ, body, "C-FIND-RSP"); err != nil {
			return nil, nil, err
		}
		if m.pdvs, err = parsePData(body, m.pdvs); err != nil {
			return nil, nil, err
		}
		for _, v := range m.pdvs {
			// The reader's buffer is reused by the next PDU.
			v.data = bytes.Clone(v.data)
			m.pending = append(m.pending, v)
		}
	}
}

// Worklist attributes this package asks for and reads (PS3.4 table K.6-1).
var (
	tagSPSSequence       = tag.ScheduledProcedureStepSequence
	tagStationAE         = tag.ScheduledStationAETitle
	tagSPSStartDate      = tag.ScheduledProcedureStepStartDate
	tagSPSStartTime      = tag.ScheduledProcedureStepStartTime
	tagSPSDescription    = tag.ScheduledProcedureStepDescription
	tagSPSID             = tag.ScheduledProcedureStepID
	utf8CharacterSetTerm = "ISO_IR 192"
)

// encodeWorklistItem writes it as a data set in Implicit or Explicit VR
// Little Endian: a query identifier (empty fields are return keys) or a
// response. With utf8 it declares its character set as UTF-8.
func encodeWorklistItem(it WorklistItem, explicit, utf8 bool) ([]byte, error) {
	var buf bytes.Buffer
	w, err := dicom.NewWriter(&buf)
	if err != nil {
		return nil, err
	}
	w.SetTransferSyntax(binary.LittleEndian, !explicit)
	str := func(t tag.Tag, v string) *dicom.Element {
		e, err := dicom.NewElement(t, []string{v})
		if err != nil {
			panic(err) // the tags are constants of this file
		}
		return e
	}
	sps, err := dicom.NewElement(tagSPSSequence, [][]*dicom.Element{{
		// Items are in tag order, as PS3.5 section 7.1 requires.
		str(tag.Modality, it.Modality),
		str(tagStationAE, it.StationAETitle),
		str(tagSPSStartDate, it.ScheduledDate),
		str(tagSPSStartTime, it.ScheduledTime),
		str(tagSPSDescription, it.Description),
		str(tagSPSID, it.StepID),
	}})
	if err != nil {
		return nil, err
	}
	sps.ValueLength = tag.VLUndefinedLength
	var elements []*dicom.Element
	if utf8 {
		elements = append(elements, str(tag.SpecificCharacterSet, utf8CharacterSetTerm))
	}
	elements = append(elements, str(tag.AccessionNumber, it.AccessionNumber), str(tag.PatientName, it.PatientName),
		str(tag.PatientID, it.PatientID), sps)
	for _, e := range elements {
		if err := w.WriteElement(e); err != nil {
			return nil, fmt.Errorf("element %v: %w", e.Tag, err)
		}
	}
	return buf.Bytes(), nil
}

// trailingPadding is appended to a data set before it is parsed: the
// parser insists on peeking 100 bytes, which a small item lacks. A
// (FFFC,FFFC) Data Set Trailing Padding element carries no meaning
// (PS3.10 section 7.2) and ends the parse.
func trailingPadding(explicit bool) []byte {
	b := []byte{0xFC, 0xFF, 0xFC, 0xFF}
	if explicit {
		b = append(b, 'O', 'B', 0, 0)
	}
	b = binary.LittleEndian.AppendUint32(b, 100)
	return append(b, make([]byte, 100)...)
}

// decodeWorklistItem reads a C-FIND identifier (or a worklist file's data
// set) in the given little-endian transfer syntax. It never panics: the
// DICOM parser is third-party code fed by peers, so a panic is recovered
// into an error.
func decodeWorklistItem(data []byte, explicit bool) (it WorklistItem, err error) {
	defer func() {
		if r := recover(); r != nil {
			it, err = WorklistItem{}, fmt.Errorf("%w: data set: parser panic: %v", errMalformed, r)
		}
	}()
	if err := checkLengths(data, explicit); err != nil {
		return it, err
	}
	in := append(data[:len(data):len(data)], trailingPadding(explicit)...)
	p, _ := dicom.NewParser(bytes.NewReader(in), int64(len(in)), nil, dicom.SkipMetadataReadOnNewParserInit(),
		dicom.SkipPixelData(), dicom.AllowUnknownSpecificCharacterSet())
	if p == nil {
		return it, fmt.Errorf("%w: data set of %d bytes", errMalformed, len(data))
	}
	// The parser guessed a transfer syntax from the first bytes; the
	// association's is the truth.
	p.SetTransferSyntax(binary.LittleEndian, !explicit)
	var elements []*dicom.Element
	for {
		e, err := p.Next()
		if errors.Is(err, dicom.ErrorEndOfDICOM) {
			break
		}
		if err != nil {
			return it, fmt.Errorf("%w: data set: %v", errMalformed, err)
		}
		if e.Tag == tag.DataSetTrailingPadding {
			break
		}
		elements = append(elements, e)
	}
	return itemFrom(elements), nil
}

// checkLengths walks a data set's element headers, descending into
// sequences and items, and refuses any value length larger than the bytes
// left: the parser allocates a value's declared length before reading it,
// so one forged length would otherwise ask for 4 GiB. Undefined lengths
// are accepted only for sequences and items, the only ones a worklist
// item has.
func checkLengths(data []byte, explicit bool) error {
	for len(data) > 0 {
		if len(data) < 8 {
			return fmt.Errorf("%w: truncated element header", errMalformed)
		}
		t := tag.Tag{Group: binary.LittleEndian.Uint16(data[0:2]), Element: binary.LittleEndian.Uint16(data[2:4])}
		var n uint32
		var vr string
		switch {
		case t.Group == 0xFFFE: // item and delimiters: no VR in either syntax
			n, data = binary.LittleEndian.Uint32(data[4:8]), data[8:]
		case explicit:
			vr = string(data[4:6])
			switch vr {
			case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
				if len(data) < 12 {
					return fmt.Errorf("%w: truncated element header", errMalformed)
				}
				n, data = binary.LittleEndian.Uint32(data[8:12]), data[12:]
			default:
				n, data = uint32(binary.LittleEndian.Uint16(data[6:8])), data[8:]
			}
		default:
			n, data = binary.LittleEndian.Uint32(data[4:8]), data[8:]
			if info, err := tag.Find(t); err == nil && len(info.VRs) > 0 {
				vr = info.VRs[0]
			}
		}
		container := t.Group == 0xFFFE || vr == "SQ"
		switch {
		case container:
			// Its content is elements: walk into it.
			if n != tag.VLUndefinedLength && int64(n) > int64(len(data)) {
				return fmt.Errorf("%w: %v length %d exceeds the %d bytes left", errMalformed, t, n, len(data))
			}
		case n == tag.VLUndefinedLength || int64(n) > int64(len(data)):
			return fmt.Errorf("%w: %v length %d exceeds the %d bytes left", errMalformed, t, n, len(data))
		default:
			data = data[n:]
		}
	}
	return nil
}

// itemFrom picks the worklist attributes out of a data set's elements.
func itemFrom(elements []*dicom.Element) WorklistItem {
	var it WorklistItem
	for _, e := range elements {
		switch e.Tag {
		case tag.PatientName:
			it.PatientName = firstString(e)
		case tag.PatientID:
			it.PatientID = firstString(e)
		case tag.AccessionNumber:
			it.AccessionNumber = firstString(e)
		case tagSPSSequence:
			items, _ := e.Value.GetValue().([]*dicom.SequenceItemValue)
			if len(items) == 0 {
				continue
			}
			sub, _ := items[0].GetValue().([]*dicom.Element)
			for _, s := range sub {
				switch s.Tag {
				case tag.Modality:
					it.Modality = firstString(s)
				case tagStationAE:
					it.StationAETitle = firstString(s)
				case tagSPSStartDate:
					it.ScheduledDate = firstString(s)
				case tagSPSStartTime:
					it.ScheduledTime = firstString(s)
				case tagSPSDescription:
					it.Description = firstString(s)
				case tagSPSID:
					it.StepID = firstString(s)
				}
			}
		}
	}
	return it
}

// firstString is an element's first string value without padding; for a
// person name, the components' separators are kept (Doe^John).
func firstString(e *dicom.Element) string {
	if e == nil || e.Value == nil {
		return ""
	}
	v, ok := e.Value.GetValue().([]string)
	if !ok || len(v) == 0 {
		return ""
	}
	return strings.TrimRight(strings.TrimLeft(v[0], " "), " \x00")
}
