package tcp

import (
	"net"
	"testing"
)

func TestAdvertisedWildcardTakesTheRemoteIP(t *testing.T) {
	remote := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 55555}
	for announced, want := range map[string]string{
		"[::]:7000":      "10.1.2.3:7000",
		"0.0.0.0:7000":   "10.1.2.3:7000",
		":7000":          "10.1.2.3:7000",
		"10.9.9.9:7000":  "10.9.9.9:7000",
		"node-a:7000":    "node-a:7000",
		"not an address": "",
	} {
		if got := advertised(announced, remote); got != want {
			t.Errorf("advertised(%q) = %q, want %q", announced, got, want)
		}
	}
}
