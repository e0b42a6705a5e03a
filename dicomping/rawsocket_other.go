//go:build !linux

package dicomping

import (
	"io"
	"net"
)

// rawSocket is only used on Linux (see rawsocket_linux.go for why);
// elsewhere Echo reads and writes through net.Conn.
type rawSocket struct{}

func (*rawSocket) use(net.Conn) io.ReadWriter { return nil }
func (*rawSocket) release()                   {}
