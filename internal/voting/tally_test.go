package voting

import (
	"fmt"
	"testing"

	"github.com/privicore/privicore"
)

// electorate is n eligible devices d0…d(n-1); answers ('y'/'n') are
// theirs in order.
func electorate(n int, answers string) ([]string, []privicore.PoolAnswer) {
	var eligible []string
	for i := range n {
		eligible = append(eligible, fmt.Sprint("d", i))
	}
	var got []privicore.PoolAnswer
	for i, a := range answers {
		got = append(got, privicore.PoolAnswer{DeviceID: fmt.Sprint("d", i), Yes: a == 'y'})
	}
	return eligible, got
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

		// Silent devices: one that has not answered can still turn
		// unanimous, consensus and the percentage either way.
		{"unanimous", 100, 1, 3, "yy", false, "", "approved"},
		{"consensus", 51, 1, 4, "yy", false, "", "approved"},           // 2 of 4 is no majority yet
		{"consensus", 51, 1, 4, "yyy", true, "approved", "approved"},   // 3 of 4 whatever the last says
		{"consensus", 51, 1, 2, "yn", true, "rejected", "rejected"},    // a tie is no majority
		{"minimum_percentage", 80, 1, 4, "yyy", false, "", "approved"}, // a fourth no: 75 %
		{"minimum_percentage", 75, 1, 4, "yyy", true, "approved", "approved"},
		{"minimum_percentage", 75, 1, 4, "yyyn", true, "approved", "approved"},
		{"minimum_percentage", 0, 1, 2, "n", true, "approved", "approved"}, // 0 %: any answer approves
		{"minimum_percentage", 100, 1, 2, "yn", true, "rejected", "rejected"},
		{"affirmative", 1, 1, 2, "n", false, "", "rejected"},
		{"affirmative", 1, 1, 2, "nn", true, "rejected", "rejected"},

		// The quorum: too few answers never count, even all yes.
		{"unanimous", 100, 3, 3, "yy", false, "", "quorum_not_met"},
		{"unanimous", 100, 3, 3, "yyy", true, "approved", "approved"},
		{"unanimous", 100, 2, 3, "n", false, "", "quorum_not_met"}, // a no below the quorum does not count yet
		{"unanimous", 100, 2, 3, "nn", true, "rejected", "rejected"},
		{"affirmative", 1, 3, 3, "n", false, "", "quorum_not_met"},
		{"consensus", 51, 2, 2, "", false, "", "expired"},
	} {
		eligible, answers := electorate(tc.n, tc.answers)
		r := rule{strategy: tc.strategy, percentage: tc.pct, quorum: tc.quorum}
		state, final := tally(r, eligible, answers, false)
		if final != tc.final || (final && state != tc.state) {
			t.Errorf("%+v: outcome %q final=%v", tc, state, final)
		}
		got, final := tally(r, eligible, answers, true)
		if got != tc.deadlineState || !final {
			t.Errorf("%+v: at the deadline %q final=%v", tc, got, final)
		}
	}
}

// TestTallyOfReadsThePool: a pool's frozen rule (strategy, percentage,
// quorum) and its current answers are what its tally counts.
func TestTallyOfReadsThePool(t *testing.T) {
	eligible, answers := electorate(3, "yn")
	pl := &privicore.Pool{Strategy: privicore.StrategyMinimumPercentage, Percentage: 30, QuorumSize: 2, Eligible: eligible, Answers: answers}
	if state, final := tallyOf(pl, false); !final || state != privicore.PoolApproved {
		t.Errorf("30 %% with yes, no of 3: %q final=%v, want approved (1/3, 1/2 and 2/3 all reach 30 %%)", state, final)
	}
	pl.Percentage = 40
	if _, final := tallyOf(pl, false); final {
		t.Error("40 %: a third no (1/3) would reject, yet the outcome is final")
	}
	pl.Percentage, pl.QuorumSize = 30, 3
	if _, final := tallyOf(pl, false); final {
		t.Error("quorum 3: silence leaves 2 answers, quorum not met, yet the outcome is final")
	}
	if state, _ := tallyOf(pl, true); state != privicore.PoolQuorumNotMet {
		t.Errorf("quorum 3 at the deadline with 2 answers: %q", state)
	}
}
