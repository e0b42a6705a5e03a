package dicomping

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/suyashkumar/dicom"
)

// answerFind answers a worklist C-FIND: one pending response with its
// identifier per matching item, then the final status.
func (c *serverConn) answerFind(contextID byte, rq *command, data []byte) error {
	explicit := slices.Contains(c.explicit, contextID)
	var items []WorklistItem
	status := uint16(StatusIdentifierMismatch)
	if keys, err := decodeWorklistItem(data, explicit); err == nil {
		items, status = c.s.Worklist(c.assoc, WorklistQuery{Date: keys.ScheduledDate, Modality: keys.Modality,
			StationAETitle: keys.StationAETitle})
	} else {
		c.s.debug("undecodable C-FIND identifier", "remote", c.assoc.RemoteAddr, "error", err)
	}
	var cmdBuf [160]byte
	if status == StatusSuccess {
		for _, it := range items {
			ident, err := encodeWorklistItem(it, explicit, true)
			if err != nil {
				status = StatusUnableToProcess
				c.s.debug("worklist item not encodable", "patient_id", it.PatientID, "error", err)
				break
			}
			rsp := command{affectedSOPClass: ModalityWorklistFind, commandField: commandCFindRSP, respondedTo: rq.messageID,
				dataSetType: 0x0000, status: StatusPending}
			c.buf = appendCommandPData(c.buf[:0], contextID, appendCommand(cmdBuf[:0], &rsp), c.peerMax)
			c.buf = appendDataSetPData(c.buf, contextID, ident, c.peerMax)
			if err := c.write(c.buf); err != nil {
				return err
			}
		}
	}
	rsp := command{affectedSOPClass: ModalityWorklistFind, commandField: commandCFindRSP, respondedTo: rq.messageID,
		dataSetType: noDataSet, status: status}
	c.buf = appendCommandPData(c.buf[:0], contextID, appendCommand(cmdBuf[:0], &rsp), c.peerMax)
	return c.write(c.buf)
}

// WorklistDir returns a Server.Worklist that answers from the worklist
// files in dir (DICOM files named *.wl, as dcmtk's wlmscpfs and Orthanc's
// worklist plugin read them, e.g. made by dump2dcm), read at each query so
// that a simulator can change its schedule while running. A missing
// folder or an unreadable file answers 0xC000 (unable to process): a
// broken worklist, as a real broker's would be.
func WorklistDir(dir string) func(Association, WorklistQuery) ([]WorklistItem, uint16) {
	return func(_ Association, q WorklistQuery) ([]WorklistItem, uint16) {
		files, err := filepath.Glob(filepath.Join(dir, "*.wl"))
		if err != nil {
			return nil, StatusUnableToProcess
		}
		if _, err := os.Stat(dir); err != nil {
			return nil, StatusUnableToProcess
		}
		slices.Sort(files)
		var out []WorklistItem
		for _, f := range files {
			it, err := ReadWorklistFile(f)
			if err != nil {
				return nil, StatusUnableToProcess
			}
			if q.Matches(it) {
				out = append(out, it)
			}
		}
		return out, StatusSuccess
	}
}

// ReadWorklistFile reads one worklist item from a DICOM file (with or
// without the Part 10 header).
func ReadWorklistFile(path string) (it WorklistItem, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("dicomping: worklist file %s: parser panic: %v", path, r)
		}
	}()
	ds, err := dicom.ParseFile(path, nil, dicom.SkipPixelData(), dicom.AllowUnknownSpecificCharacterSet())
	if err != nil {
		return it, fmt.Errorf("dicomping: worklist file %s: %w", path, err)
	}
	return itemFrom(ds.Elements), nil
}

// Matches reports whether an item answers the query: empty keys match
// everything, the modality and station AE title match exactly or with the
// wildcards * and ? (PS3.4 section C.2.2.2.4), the date exactly or within
// its range.
func (q WorklistQuery) Matches(it WorklistItem) bool {
	return wildcardMatch(q.Modality, it.Modality) && wildcardMatch(q.StationAETitle, it.StationAETitle) &&
		dateMatch(q.Date, it.ScheduledDate)
}

func wildcardMatch(pattern, value string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == value
	}
	// Path semantics are harmless here: neither field may hold a slash
	// and brackets are not DICOM wildcards, so they are escaped.
	pattern = strings.NewReplacer("[", `\[`, "]", `\]`, `\`, `\\`).Replace(pattern)
	ok, err := filepath.Match(pattern, value)
	return err == nil && ok
}

func dateMatch(query, date string) bool {
	if query == "" {
		return true
	}
	from, to, isRange := strings.Cut(query, "-")
	if !isRange {
		return query == date
	}
	// YYYYMMDD strings order as their dates.
	return (from == "" || date >= from) && (to == "" || date <= to)
}
