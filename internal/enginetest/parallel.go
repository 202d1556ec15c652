package enginetest

import (
	"flag"
	"strconv"
)

// OverlapWaits lets up to n of a package's parallel tests run at once,
// unless -parallel was given. Call it from TestMain before m.Run, in a
// package whose parallel tests mostly wait (vote deadlines, lease expiry,
// a replica's cache warm-up, the outbox's period): the default, GOMAXPROCS,
// would queue them two at a time on a 2-core machine while the CPU idles.
func OverlapWaits(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}
