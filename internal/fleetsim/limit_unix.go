//go:build linux || darwin

package fleetsim

import "syscall"

// RaiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit, since
// every endpoint holds a descriptor, and returns the soft and hard limits
// in force afterwards.
func RaiseFileLimit() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, err
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = want.Max
		// macOS refuses an infinite hard limit as the soft one; what we
		// had is then what we keep.
		setErr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, 0, err
		}
		if setErr != nil && rl.Cur < rl.Max {
			return rl.Cur, rl.Max, setErr
		}
	}
	return rl.Cur, rl.Max, nil
}
