//go:build !linux

package main

import "errors"

// boundSupported tells whether the lower bound can be measured here: its
// system calls are written for Linux.
const boundSupported = false

func (c *boundClient) echo() error {
	return errors.New("the lower bound is only measured on Linux")
}
