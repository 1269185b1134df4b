package main

import (
	"testing"
	"time"
)

// TestHarnesses starts every library in every configuration it supports
// and drives a few writes through it.
func TestHarnesses(t *testing.T) {
	for _, name := range []string{"raftkit", "hashicorp", "etcd"} {
		lib := libraries[name]
		for _, cfg := range lib.configs {
			t.Run(name+"/"+cfg, func(t *testing.T) {
				c, err := lib.start(cfg, t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				res, err := drive(c, 4, 50*time.Millisecond, 200*time.Millisecond)
				if stopErr := c.stop(); stopErr != nil {
					t.Errorf("stop: %v", stopErr)
				}
				if err != nil {
					t.Fatal(err)
				}
				if res.ops == 0 || res.applied < res.acked {
					t.Fatalf("implausible result %+v", res)
				}
			})
		}
	}
}
