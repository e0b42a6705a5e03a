//go:build !linux

package snmptest

import "syscall"

// sysProcAttr: only Linux can tie snmpd's life to the test binary's.
func sysProcAttr() *syscall.SysProcAttr { return nil }
