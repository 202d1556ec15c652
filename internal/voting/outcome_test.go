package voting

import (
	"fmt"
	"testing"

	"github.com/privicore/privicore"
)

// pool builds a pool of n eligible voters with the given answers ('y'/'n').
func pool(strategy string, pct, quorum, n int, answers string) *privicore.Pool {
	p := &privicore.Pool{Strategy: strategy, Percentage: pct, QuorumSize: quorum}
	for i := range n {
		p.Eligible = append(p.Eligible, fmt.Sprint("d", i))
	}
	for i, a := range answers {
		p.Answers = append(p.Answers, privicore.PoolAnswer{DeviceID: fmt.Sprint("d", i), Yes: a == 'y'})
	}
	return p
}

func TestOutcomeIsFinalOnlyWhenNoAnswerCanChangeIt(t *testing.T) {
	for _, tc := range []struct {
		strategy      string
		pct, quorum   int
		n             int
		answers       string
		final         bool
		state         string // when final
		deadlineState string // the outcome with the answers so far
	}{
		{"unanimous", 100, 1, 2, "", false, "", "expired"},
		{"unanimous", 100, 1, 2, "y", false, "", "approved"},
		{"unanimous", 100, 1, 2, "n", true, "rejected", "rejected"},
		{"unanimous", 100, 1, 2, "yy", true, "approved", "approved"},
		{"consensus", 51, 1, 3, "yn", false, "", "rejected"},
		{"consensus", 51, 1, 3, "yy", true, "approved", "approved"},
		{"consensus", 51, 1, 3, "nn", true, "rejected", "rejected"},
		{"affirmative", 1, 1, 3, "y", true, "approved", "approved"},
		{"affirmative", 1, 1, 3, "nn", false, "", "rejected"},
		{"minimum_percentage", 50, 1, 2, "yn", true, "approved", "approved"},
		{"minimum_percentage", 60, 1, 2, "yn", true, "rejected", "rejected"},
		{"minimum_percentage", 60, 1, 3, "yn", false, "", "rejected"},
		{"affirmative", 1, 2, 2, "y", false, "", "quorum_not_met"},
		{"affirmative", 1, 2, 2, "yn", true, "approved", "approved"},
		{"unanimous", 100, 1, 0, "", true, "quorum_not_met", "quorum_not_met"}, // nobody to ask
	} {
		p := pool(tc.strategy, tc.pct, tc.quorum, tc.n, tc.answers)
		state, final := outcome(p)
		if final != tc.final || (final && state != tc.state) {
			t.Errorf("%+v: outcome %q final=%v", tc, state, final)
		}
		if got := atDeadline(p); got != tc.deadlineState {
			t.Errorf("%+v: at the deadline %q", tc, got)
		}
	}
}
