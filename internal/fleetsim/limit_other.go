//go:build !(linux || darwin)

package fleetsim

import "errors"

// RaiseFileLimit is not supported here; callers go on without it.
func RaiseFileLimit() (soft, hard uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}
