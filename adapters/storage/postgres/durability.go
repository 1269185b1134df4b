package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// setting is a server setting that decides whether a commit PostgreSQL
// acknowledges survives a crash, with the values that do not.
type setting struct {
	name   string
	unsafe []string
	why    string
}

var durabilitySettings = []setting{
	{"fsync", []string{"off"},
		"the server never forces its write-ahead log to disk, so a power loss or OS crash can undo acknowledged commits or corrupt the cluster"},
	{"synchronous_commit", []string{"off"},
		"the server acknowledges a commit before its write-ahead log record is flushed, so a crash can undo the last few hundred milliseconds of acknowledged commits"},
	{"full_page_writes", []string{"off"},
		"a page torn by a power loss cannot be repaired from the write-ahead log, so a crash can corrupt committed rows"},
}

// connQuerier is the part of a connection or pool that checkDurability
// needs.
type connQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// checkDurability reads the settings that decide whether acknowledged
// commits are durable, as the connection's session sees them (a role, a
// database or the connection string can override the server's
// synchronous_commit), and returns an error wrapping ErrUnsafeDurability
// naming each unsafe one.
func checkDurability(ctx context.Context, c connQuerier) error {
	var bad []string
	for _, s := range durabilitySettings {
		var v string
		if err := c.QueryRow(ctx, `SELECT current_setting($1)`, s.name).Scan(&v); err != nil {
			return fmt.Errorf("postgres: reading setting %s: %w", s.name, err)
		}
		for _, u := range s.unsafe {
			if strings.EqualFold(v, u) {
				bad = append(bad, fmt.Sprintf("%s = %s: %s", s.name, v, s.why))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s (set them to on, or set Config.AllowUnsafeDurability to accept the risk)",
			ErrUnsafeDurability, strings.Join(bad, "; "))
	}
	return nil
}
