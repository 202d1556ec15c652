package voting

import "github.com/privicore/privicore"

// rule is how a pool counts its answers: the strategy, the yes percentage
// (for minimum_percentage) and the quorum, frozen when the pool opened.
type rule struct {
	strategy   string
	percentage int
	quorum     int
}

// ruleOf is pl's rule.
func ruleOf(pl *privicore.Pool) rule {
	return rule{strategy: pl.Strategy, percentage: pl.Percentage, quorum: pl.QuorumSize}
}

// tally is the outcome of one attempt of a vote under r, asked of the
// eligible devices, with the answers received so far. Before the
// deadline it is final only if every way the devices that have not
// answered could still answer (or stay silent) gives the same result; at
// the deadline the answers received decide, and it is always final.
//
// The result is approved or rejected by the strategy; expired when nobody
// answered (of a non-empty electorate); quorum_not_met when fewer answers
// than the quorum came, or when there was nobody to ask.
func tally(r rule, eligible []string, answers []privicore.PoolAnswer, deadline bool) (state string, final bool) {
	yes := 0
	for _, a := range answers {
		if a.Yes {
			yes++
		}
	}
	no := len(answers) - yes
	if deadline {
		return r.result(len(eligible), yes, no), true
	}
	pending := max(0, len(eligible)-len(answers))
	for y := 0; y <= pending; y++ {
		for n := 0; y+n <= pending; n++ {
			s := r.result(len(eligible), yes+y, no+n)
			if state == "" {
				state = s
			} else if s != state {
				return "", false
			}
		}
	}
	return state, true
}

// tallyOf is tally over pl's current attempt.
func tallyOf(pl *privicore.Pool, deadline bool) (state string, final bool) {
	return tally(ruleOf(pl), pl.Eligible, pl.Answers, deadline)
}

// result applies r to a count of answers from an electorate of eligible.
func (r rule) result(eligible, yes, no int) string {
	n := yes + no
	switch {
	case n == 0 && eligible > 0:
		return privicore.PoolExpired
	case n < r.quorum || n == 0:
		return privicore.PoolQuorumNotMet
	}
	var ok bool
	switch r.strategy {
	case privicore.StrategyUnanimous:
		ok = no == 0
	case privicore.StrategyConsensus:
		ok = 2*yes > n
	case privicore.StrategyAffirmative:
		ok = yes >= 1
	default:
		ok = 100*yes >= r.percentage*n
	}
	if ok {
		return privicore.PoolApproved
	}
	return privicore.PoolRejected
}
