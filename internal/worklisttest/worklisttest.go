// Package worklisttest makes modality worklist files with dcmtk's dump2dcm
// and runs dcmtk's worklist SCP (wlmscpfs) on them, for integration tests
// of worklist queries against real peers.
package worklisttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// Item is one scheduled procedure step to write as a worklist file.
type Item struct {
	PatientName, PatientID, Accession string
	Date, Time                        string // YYYYMMDD, HHMMSS
	Modality, StationAE               string
	StepID, Description               string
}

// Write makes one worklist file per item in dir (item-N.wl), with
// dump2dcm from a text dump, as a site's RIS export would be.
func Write(t testing.TB, dir string, items ...Item) {
	t.Helper()
	dump2dcm := testpeer.Command(t, "dump2dcm", "dcmtk")
	for i, it := range items {
		// wlmscpfs ignores an item whose step has no ID or description.
		if it.StepID == "" {
			it.StepID = "SPS" + strconv.Itoa(i+1)
		}
		if it.Description == "" {
			it.Description = "Estudio " + it.Modality
		}
		dump := fmt.Sprintf(`(0008,0005) CS [ISO_IR 192]
(0008,0050) SH [%s]
(0010,0010) PN [%s]
(0010,0020) LO [%s]
(0010,0030) DA [19700101]
(0010,0040) CS [O]
(0020,000d) UI [1.2.826.0.1.3680043.2.1125.%d]
(0032,1032) PN [Vigía^Test]
(0032,1060) LO [%s]
(0040,0100) SQ (Sequence with undefined length)
(fffe,e000) na (Item with undefined length)
(0008,0060) CS [%s]
(0040,0001) AE [%s]
(0040,0002) DA [%s]
(0040,0003) TM [%s]
(0040,0006) PN [Vigía^Test]
(0040,0007) LO [%s]
(0040,0009) SH [%s]
(0040,0010) SH [%s]
(0040,0011) SH [ROOM1]
(fffe,e00d) na (ItemDelimitationItem)
(fffe,e0dd) na (SequenceDelimitationItem)
(0040,1001) SH [RP%d]
(0040,1003) SH [MEDIUM]
`, it.Accession, it.PatientName, it.PatientID, i+1, it.Description, it.Modality, it.StationAE, it.Date, it.Time,
			it.Description, it.StepID, it.StationAE, i+1)
		txt := filepath.Join(t.TempDir(), "item.dump")
		if err := os.WriteFile(txt, []byte(dump), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "item-"+strconv.Itoa(i+1)+".wl")
		if b, err := exec.Command(dump2dcm, "+te", txt, out).CombinedOutput(); err != nil {
			t.Fatalf("dump2dcm: %v\n%s", err, b)
		}
	}
}

// Wlmscpfs runs dcmtk's worklist SCP answering to aet from a fresh folder,
// on a free loopback port; the test writes items with Write(t, w.Dir, …).
type Wlmscpfs struct {
	Addr string
	Port int
	Dir  string // the folder of aet's worklist files
}

// StartWlmscpfs starts wlmscpfs; it is killed when the test ends. An
// association to another called AE title is rejected, as wlmscpfs does for
// AE titles without a folder.
func StartWlmscpfs(t testing.TB, aet string) Wlmscpfs {
	t.Helper()
	bin := testpeer.Command(t, "wlmscpfs", "dcmtk")
	root := t.TempDir()
	dir := filepath.Join(root, aet)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// wlmscpfs refuses a worklist folder without its lock file, and ignores
	// files without the attributes Write puts in (its "complete" check).
	if err := os.WriteFile(filepath.Join(dir, "lockfile"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port := testpeer.FreePort(t)
	addr := testpeer.Start(t, port, bin, "-dfp", root, strconv.Itoa(port))
	return Wlmscpfs{Addr: addr, Port: port, Dir: dir}
}
