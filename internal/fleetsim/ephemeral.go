package fleetsim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ephemeralRangeFile is where Linux keeps the range of ports it hands to
// outgoing connections.
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// EphemeralPorts returns the kernel's ephemeral port range (Linux), from
// which every outgoing connection on the machine takes its local port. A
// simulated device listening there may find its port taken by a probe's
// connection while it is down, and cannot come back up.
// errors.ErrUnsupported means the system does not say.
func EphemeralPorts() (lo, hi int, err error) {
	return readPortRange(ephemeralRangeFile)
}

func readPortRange(file string) (lo, hi int, err error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, errors.ErrUnsupported
	}
	if err != nil {
		return 0, 0, fmt.Errorf("fleetsim: ephemeral ports: %w", err)
	}
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo < 1 || hi < lo || hi > 65535 {
		return 0, 0, fmt.Errorf("fleetsim: ephemeral ports: %s says %q", file, b)
	}
	return lo, hi, nil
}
