package datatoken

import (
	"encoding/json"
	"strconv"

	"github.com/privicore/privicore"
)

// The documented fields of the information-security risk meta (spec §8).
// Only classification is required besides the token; the others are
// optional and, when present, must have their type. Any other field is
// stored as given (within maxRiskFields and maxRiskBytes).
const (
	riskClassification = "classification" // required, a non-empty string
	riskLabel          = "label"          // optional string
	riskHandling       = "handling"       // optional string
	riskRetentionDays  = "retentionDays"  // optional integer ≥ 0
)

// checkRisk validates the documented fields of fields into v and
// normalizes retentionDays to an integer (forms send it as text).
func checkRisk(fields map[string]any, v privicore.ValidationErrors) {
	switch c, present := fields[riskClassification]; {
	case !present:
		v.Add(riskClassification, "is required")
	default:
		if s, ok := c.(string); !ok {
			v.Add(riskClassification, "must be a string")
		} else if s == "" {
			v.Add(riskClassification, "is required")
		}
	}
	for _, f := range []string{riskLabel, riskHandling} {
		if x, present := fields[f]; present {
			if _, ok := x.(string); !ok {
				v.Add(f, "must be a string")
			}
		}
	}
	if x, present := fields[riskRetentionDays]; present {
		n, ok := nonNegativeInt(x)
		if !ok {
			v.Add(riskRetentionDays, "must be an integer ≥ 0")
		} else {
			fields[riskRetentionDays] = n
		}
	}
}

// nonNegativeInt reads an integer ≥ 0 from a JSON number (bodies are
// decoded with UseNumber) or a form's text.
func nonNegativeInt(x any) (int64, bool) {
	var s string
	switch x := x.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}
