package sqlstore

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/privicore/privicore"
)

// nanosPerDay is one UTC day in the Unix nanoseconds that times are kept in.
const nanosPerDay = int64(24 * time.Hour)

// CommandCounts implements privicore.DataTokenStore.
func (q queries) CommandCounts(ctx context.Context, profileID string, types []string, from, to time.Time) ([]privicore.CommandCount, error) {
	if len(types) == 0 {
		return []privicore.CommandCount{}, nil
	}
	lower, upper := nanos(from), nanos(to)
	if to.IsZero() {
		upper = math.MaxInt64
	}
	// The pruned counts of the days that start within [lower, upper).
	dayFrom, dayTo := ceilDiv(lower, nanosPerDay), ceilDiv(upper, nanosPerDay)
	in := "(?" + strings.Repeat(", ?", len(types)-1) + ")"
	args := []any{nanosPerDay, profileID, int(privicore.CommandSucceeded), lower, upper}
	for _, t := range types {
		args = append(args, t)
	}
	args = append(args, profileID, dayFrom, dayTo)
	for _, t := range types {
		args = append(args, t)
	}
	// Times are Unix nanoseconds (positive): integer division gives the
	// UTC day on both dialects.
	return collect(ctx, q, func(row interface{ Scan(...any) error }) (privicore.CommandCount, error) {
		var c privicore.CommandCount
		var day int64
		err := row.Scan(&c.Type, &day, &c.N)
		c.Day = time.Unix(0, day*nanosPerDay).UTC()
		return c, err
	}, `SELECT type, day, CAST(SUM(n) AS BIGINT) FROM (
			SELECT type, created_at / ? AS day, COUNT(*) AS n FROM commands
			WHERE profile_id = ? AND status = ? AND created_at >= ? AND created_at < ? AND type IN `+in+`
			GROUP BY type, day
			UNION ALL
			SELECT type, day, n FROM command_counts WHERE profile_id = ? AND day >= ? AND day < ? AND type IN `+in+`
		) AS c GROUP BY type, day ORDER BY day, type`, args...)
}

// ceilDiv is ⌈a/b⌉ for a ≥ 0, b > 0.
func ceilDiv(a, b int64) int64 {
	if a%b == 0 {
		return a / b
	}
	return a/b + 1
}
