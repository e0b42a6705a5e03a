package dicomping_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vigia-noc/vigia/dicomping"
)

// Echo a Verification SCP, here one of this package's own servers, first
// with the right called AE title, then with a wrong one.
func Example() {
	srv := &dicomping.Server{AETitle: "PACS"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	res, err := dicomping.Echo(ctx, l.Addr().String(), dicomping.Options{
		CallingAETitle: "VIGIA",
		CalledAETitle:  "PACS",
		Timeout:        5 * time.Second,
	})
	fmt.Println(dicomping.Classify(err), res.PeerImplementationVersionName, res.RTT > 0)

	_, err = dicomping.Echo(ctx, l.Addr().String(), dicomping.Options{CalledAETitle: "ARCHIVE"})
	var rejected *dicomping.RejectedError
	if errors.As(err, &rejected) {
		fmt.Println(dicomping.Classify(err), rejected.Description())
	}
	// Output:
	// ok VIGIA_DICOMPING true
	// misconfigured rejected-permanent by service-user: called AE title not recognized
}

// Query a modality worklist, here this package's own server answering
// from a list, for today's CT steps.
func ExampleFindWorklist() {
	today := "20261206"
	srv := &dicomping.Server{AETitle: "RIS", Worklist: func(_ dicomping.Association, q dicomping.WorklistQuery) ([]dicomping.WorklistItem, uint16) {
		var out []dicomping.WorklistItem
		for _, it := range []dicomping.WorklistItem{
			{PatientName: "Pérez^Ana", PatientID: "P1", ScheduledDate: today, ScheduledTime: "0800", Modality: "CT", StationAETitle: "CT01"},
			{PatientName: "Ruiz^Eva", PatientID: "P2", ScheduledDate: today, ScheduledTime: "0900", Modality: "MR", StationAETitle: "MR01"},
		} {
			if q.Matches(it) {
				out = append(out, it)
			}
		}
		return out, dicomping.StatusSuccess
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	res, err := dicomping.FindWorklist(context.Background(), l.Addr().String(),
		dicomping.WorklistQuery{Date: today, Modality: "CT"},
		dicomping.Options{CalledAETitle: "RIS", Timeout: 5 * time.Second})
	for _, it := range res.Items {
		start, _ := it.ScheduledStart(time.UTC)
		fmt.Println(it.PatientID, it.PatientName, it.StationAETitle, start.Format("15:04"))
	}
	fmt.Println(dicomping.Classify(err), res.Total)
	// Output:
	// P1 Pérez^Ana CT01 08:00
	// ok 1
}
