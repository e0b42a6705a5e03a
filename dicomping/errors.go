package dicomping

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// Phase names the step of an echo in which an error happened.
type Phase string

// The phases of an echo, in order.
const (
	PhaseConnect   Phase = "connect"   // TCP connection
	PhaseTLS       Phase = "tls"       // TLS handshake
	PhaseAssociate Phase = "associate" // A-ASSOCIATE request and answer
	PhaseEcho      Phase = "echo"      // C-ECHO request and response
	PhaseFind      Phase = "find"      // C-FIND request and responses (worklist)
	PhaseRelease   Phase = "release"   // A-RELEASE request and reply
)

// Error is the error Echo returns: it says which peer, in which phase, and
// wraps the cause (one of the typed errors of this package, a network
// error, or a context error). Use errors.As to reach the cause and Classify
// to decide what to do about it.
type Error struct {
	Addr  string
	Phase Phase
	Err   error
}

// Error says which peer, phase and cause.
func (e *Error) Error() string {
	return fmt.Sprintf("dicomping: %s: %s: %v", e.Addr, e.Phase, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the echo failed because its deadline passed.
func (e *Error) Timeout() bool {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// RejectedError is an A-ASSOCIATE-RJ from the peer: the peer is up but
// refuses us, which is a configuration fault (AE titles, allow lists), not
// an outage. The fields hold the raw codes of PS3.8 section 9.3.4.
type RejectedError struct {
	Result byte // 1 rejected-permanent, 2 rejected-transient
	Source byte // 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation)
	Reason byte // meaning depends on Source
}

// Reject reasons and sources, for building or matching a RejectedError.
const (
	RejectPermanent = 1
	RejectTransient = 2

	RejectSourceUser         = 1
	RejectSourceProviderACSE = 2
	RejectSourceProviderPres = 3

	// Reasons when Source is RejectSourceUser.
	RejectReasonNoReason                    = 1
	RejectReasonApplicationContext          = 2
	RejectReasonCallingAETitleNotRecognized = 3
	RejectReasonCalledAETitleNotRecognized  = 7
	// Reason when Source is RejectSourceProviderACSE.
	RejectReasonProtocolVersion = 2
	// Reasons when Source is RejectSourceProviderPres.
	RejectReasonTemporaryCongestion = 1
	RejectReasonLocalLimitExceeded  = 2
)

// Error decodes the rejection into words.
func (e *RejectedError) Error() string {
	return "association rejected: " + e.Description()
}

// Description decodes the result, source and reason into words, e.g.
// "rejected-permanent by service-user: called AE title not recognized".
func (e *RejectedError) Description() string {
	result := fmt.Sprintf("rejected (result %d)", e.Result)
	switch e.Result {
	case RejectPermanent:
		result = "rejected-permanent"
	case RejectTransient:
		result = "rejected-transient"
	}
	source := fmt.Sprintf("source %d", e.Source)
	reason := fmt.Sprintf("reason %d", e.Reason)
	switch e.Source {
	case RejectSourceUser:
		source = "service-user"
		switch e.Reason {
		case RejectReasonNoReason:
			reason = "no reason given"
		case RejectReasonApplicationContext:
			reason = "application context name not supported"
		case RejectReasonCallingAETitleNotRecognized:
			reason = "calling AE title not recognized"
		case RejectReasonCalledAETitleNotRecognized:
			reason = "called AE title not recognized"
		}
	case RejectSourceProviderACSE:
		source = "service-provider (ACSE)"
		switch e.Reason {
		case 1:
			reason = "no reason given"
		case RejectReasonProtocolVersion:
			reason = "protocol version not supported"
		}
	case RejectSourceProviderPres:
		source = "service-provider (presentation)"
		switch e.Reason {
		case RejectReasonTemporaryCongestion:
			reason = "temporary congestion"
		case RejectReasonLocalLimitExceeded:
			reason = "local limit exceeded"
		}
	}
	return result + " by " + source + ": " + reason
}

// Transient reports whether the peer said trying again later may succeed.
func (e *RejectedError) Transient() bool { return e.Result == RejectTransient }

// AbortError is an A-ABORT from the peer (PS3.8 section 9.3.8).
type AbortError struct {
	Source byte // 0 service-user, 2 service-provider
	Reason byte // meaningful when Source is 2
}

// Error decodes the abort source and reason into words.
func (e *AbortError) Error() string {
	switch e.Source {
	case 0:
		return "association aborted by service-user"
	case 2:
		reason := fmt.Sprintf("reason %d", e.Reason)
		switch e.Reason {
		case 0:
			reason = "reason not specified"
		case 1:
			reason = "unrecognized PDU"
		case 2:
			reason = "unexpected PDU"
		case 4:
			reason = "unrecognized PDU parameter"
		case 5:
			reason = "unexpected PDU parameter"
		case 6:
			reason = "invalid PDU parameter value"
		}
		return "association aborted by service-provider: " + reason
	}
	return fmt.Sprintf("association aborted (source %d, reason %d)", e.Source, e.Reason)
}

// ContextRejectedError means the peer accepted the association but not the
// Verification presentation context: it does not offer C-ECHO to us with
// either little-endian transfer syntax.
type ContextRejectedError struct {
	Result byte // PS3.8 section 9.3.3.2: 1 user rejection, 2 no reason, 3 abstract syntax, 4 transfer syntaxes
	// AbstractSyntax is the SOP class proposed; empty means Verification.
	AbstractSyntax string
}

// Error decodes the presentation context result into words.
func (e *ContextRejectedError) Error() string {
	reason := fmt.Sprintf("result %d", e.Result)
	switch e.Result {
	case 1:
		reason = "user rejection"
	case 2:
		reason = "no reason (provider rejection)"
	case 3:
		reason = "abstract syntax not supported (provider rejection)"
	case 4:
		reason = "transfer syntaxes not supported (provider rejection)"
	case 0:
		reason = "no presentation context returned for " + sopName(e.AbstractSyntax)
	}
	name := "verification" // the wording older callers match
	if e.AbstractSyntax == ModalityWorklistFind {
		name = sopName(e.AbstractSyntax)
	}
	return name + " presentation context not accepted: " + reason
}

// sopName names the SOP classes this package proposes.
func sopName(uid string) string {
	if uid == ModalityWorklistFind {
		return "Modality Worklist FIND"
	}
	return "Verification"
}

// StatusError is a C-ECHO response whose DIMSE status is not Success.
type StatusError struct {
	Status uint16
	// Service is the DIMSE service answered, "C-FIND"; empty means C-ECHO.
	Service string
}

// Error gives the status in hex and in words.
func (e *StatusError) Error() string {
	service := e.Service
	if service == "" {
		service = "C-ECHO"
	}
	return fmt.Sprintf("%s status 0x%04X: %s", service, e.Status, StatusText(e.Status))
}

// StatusText names the C-ECHO statuses of PS3.7 section 9.1.5.1.4, the
// C-FIND statuses of PS3.4 section C.4.1.1.4 and the general status
// classes of PS3.7 annex C.
func StatusText(status uint16) string {
	switch {
	case status == 0x0000:
		return "success"
	case status == 0x0122:
		return "refused: SOP class not supported"
	case status == 0x0210:
		return "failed: duplicate invocation"
	case status == 0x0211:
		return "failed: unrecognized operation"
	case status == 0x0212:
		return "failed: mistyped argument"
	case status == 0xFE00:
		return "cancel"
	case status == 0xA700:
		return "refused: out of resources"
	case status == 0xA900:
		return "failed: identifier does not match SOP class"
	case status == 0xFF00 || status == 0xFF01:
		return "pending"
	case status&0xF000 == 0xA000:
		return "failure"
	case status&0xF000 == 0xC000:
		return "failed: unable to process"
	case status == 0x0001 || status&0xF000 == 0xB000:
		return "warning"
	case status&0xFF00 == 0xFF00:
		return "pending"
	}
	return "failure"
}

// ProtocolError means the peer broke the DICOM upper layer or DIMSE
// protocol: a malformed or oversized PDU, an unexpected PDU, a response that
// does not match the request, or a connection closed mid-exchange.
type ProtocolError struct {
	Reason string
	Err    error // the underlying cause, if any
}

// Error says what the peer did wrong.
func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return "protocol error: " + e.Reason + ": " + e.Err.Error()
	}
	return "protocol error: " + e.Reason
}

// Unwrap returns the underlying cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Class tells what kind of failure an error is, so that a consumer can act
// on it without inspecting every error type.
type Class int

// Classes, from Classify.
const (
	// ClassOK is the class of a nil error.
	ClassOK Class = iota
	// ClassDown: no answer. Connection refused, host unreachable, name not
	// resolved, or a deadline passed: the device or its service is down or
	// hung.
	ClassDown
	// ClassMisconfigured: the peer answers but refuses us. Association
	// rejected, Verification not accepted, TLS certificate not trusted: fix
	// the configuration (AE titles, allow lists, certificates).
	ClassMisconfigured
	// ClassProtocol: the peer answers but breaks the protocol: A-ABORT,
	// malformed PDU, connection closed mid-association, non-DICOM service.
	ClassProtocol
	// ClassStatus: the C-ECHO or C-FIND round trip worked but the status is
	// not Success.
	ClassStatus
	// ClassLocal: our side. Invalid options, or the caller cancelled.
	ClassLocal
)

var classNames = [...]string{"ok", "down", "misconfigured", "protocol", "status", "local"}

// String returns the class in one lowercase word, e.g. "misconfigured".
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Classify returns the class of an error returned by Echo (or any error
// wrapping one).
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	var (
		rejected   *RejectedError
		ctxRej     *ContextRejectedError
		status     *StatusError
		abort      *AbortError
		protocol   *ProtocolError
		optErr     *OptionsError
		verifyErr  *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		alert      tls.AlertError
		recordErr  tls.RecordHeaderError
		opErr      *net.OpError
		dicomError *Error
	)
	switch {
	case errors.As(err, &rejected), errors.As(err, &ctxRej):
		return ClassMisconfigured
	case errors.As(err, &status):
		return ClassStatus
	case errors.As(err, &abort), errors.As(err, &protocol):
		return ClassProtocol
	case errors.As(err, &optErr), errors.Is(err, context.Canceled):
		return ClassLocal
	case errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &alert):
		return ClassMisconfigured
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports a TLS alert from the peer (certificate
		// required, bad certificate, unknown CA) this way.
		return ClassMisconfigured
	case errors.As(err, &recordErr):
		// A non-TLS service on the port: it answers, but not our protocol.
		return ClassProtocol
	}
	if errors.As(err, &dicomError) && dicomError.Timeout() {
		return ClassDown
	}
	if errors.As(err, &dicomError) && dicomError.Phase != PhaseConnect {
		// Connected, then the peer reset or closed without a word.
		return ClassProtocol
	}
	return ClassDown
}

// OptionsError reports invalid Options or Server settings: a bug or a
// configuration mistake on our side, not the peer's.
type OptionsError struct {
	Field  string
	Reason string
}

// Error names the invalid field.
func (e *OptionsError) Error() string {
	return "dicomping: invalid " + e.Field + ": " + e.Reason
}
