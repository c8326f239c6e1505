//go:build !unix

package h1

import "net"

// alive cannot peek without blocking here: a closed idle connection shows as an error on use,
// and idempotent requests are sent again (Transport.RoundTrip).
func alive(net.Conn) bool { return true }
