package snmptest

import "syscall"

// sysProcAttr kills snmpd if the test binary dies without running its
// cleanups (a panic in another goroutine, a timeout), so no agent outlives
// the test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
