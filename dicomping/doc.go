// Package dicomping checks that a DICOM application entity answers, the
// way ping checks a host: it performs DICOM Verification (SOP Class
// 1.2.840.10008.1.1), a C-ECHO (PS3.7 section 9.1.5) over the DICOM upper
// layer protocol for TCP/IP (PS3.8), optionally over TLS.
//
// The client side is one function. Echo connects, negotiates an
// association, sends a C-ECHO request, releases the association, and
// reports how long each phase took and what the peer said about itself:
//
//	res, err := dicomping.Echo(ctx, "pacs.example.org:104", dicomping.Options{
//		CallingAETitle: "VIGIA",
//		CalledAETitle:  "PACS",
//		Timeout:        5 * time.Second,
//	})
//	switch dicomping.Classify(err) {
//	case dicomping.ClassOK:            // up: res.RTT, res.PeerImplementationVersionName...
//	case dicomping.ClassDown:          // refused, unreachable or silent: an outage
//	case dicomping.ClassMisconfigured: // rejected: AE titles, allow list, certificates
//	case dicomping.ClassProtocol:      // aborted or broken answer
//	case dicomping.ClassStatus:        // C-ECHO answered with a failure status
//	}
//
// Errors are typed so that a program can tell an outage from a
// configuration fault: *RejectedError carries the A-ASSOCIATE-RJ result,
// source and reason and words for them ("rejected-permanent by
// service-user: called AE title not recognized"); *AbortError,
// *ContextRejectedError, *StatusError and *ProtocolError cover the other
// answers. All of them arrive wrapped in an *Error naming the peer and the
// phase.
//
// FindWorklist goes one step further for a RIS or broker: it queries the
// modality worklist (C-FIND, Modality Worklist Information Model – FIND)
// for the scheduled procedure steps of a date, modality and station, as a
// modality does, collects the pending responses until the final status,
// and cancels (C-CANCEL) a query still running near the deadline.
//
// The server side, Server, is a Verification SCP for tests and device
// simulators: it checks the called and calling AE titles, answers C-ECHO,
// handles release and abort, and shuts down gracefully; with Worklist set
// (WorklistDir serves a folder of worklist files) it answers worklist
// queries too.
//
// The package decodes untrusted input defensively: every length is checked
// before use, P-DATA-TF PDUs longer than the advertised maximum and
// association PDUs over 64 KiB are refused, and no peer input can make it
// panic. C-ECHO needs only the standard library; C-FIND identifiers are
// built and read with github.com/suyashkumar/dicom, whose parser gets a
// data set only after its lengths were checked.
package dicomping
