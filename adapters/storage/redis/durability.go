package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// setting is a server setting that decides whether a write Redis
// acknowledged survives a crash, with the value it must have.
type setting struct {
	name, want, why string
}

var durabilitySettings = []setting{
	{"appendonly", "yes",
		"without the append-only file Redis keeps only periodic RDB snapshots (or nothing), so a restart loses every write since the last one"},
	{"appendfsync", "always",
		"the append-only file is fsynced only about once a second (everysec) or when the OS decides (no), so a crash of the machine loses up to that much acknowledged writing"},
	{"no-appendfsync-on-rewrite", "no",
		"Redis skips the fsync of every write while it rewrites the append-only file or saves an RDB snapshot, so appendfsync always then protects nothing"},
	{"maxmemory-policy", "noeviction",
		"once maxmemory is reached Redis may evict keys, and an evicted log or hard state is a node that forgot what it acknowledged"},
}

// checkDurability reads the settings of every primary the client reaches
// and returns an error wrapping ErrUnsafeDurability naming each unsafe one.
func checkDurability(ctx context.Context, c goredis.UniversalClient) error {
	check := func(ctx context.Context, c goredis.Cmdable) error {
		var bad []string
		for _, s := range durabilitySettings {
			m, err := c.ConfigGet(ctx, s.name).Result()
			if err != nil {
				return fmt.Errorf("%w: cannot read setting %s to verify durability (%v); verify the settings yourself and set Config.AllowUnsafeDurability",
					ErrUnsafeDurability, s.name, err)
			}
			if v := m[s.name]; !strings.EqualFold(v, s.want) {
				bad = append(bad, fmt.Sprintf("%s = %q (need %s): %s", s.name, v, s.want, s.why))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%w: %s (or set Config.AllowUnsafeDurability to accept the risk)",
				ErrUnsafeDurability, strings.Join(bad, "; "))
		}
		return nil
	}
	if cc, ok := c.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error { return check(ctx, m) })
	}
	return check(ctx, c)
}
