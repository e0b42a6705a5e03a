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
