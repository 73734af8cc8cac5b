package tests

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestLilydClusterMeasureFailover measures, over several runs of
// TestLilydClusterMultiKillUnderLoad's scenario, the time from the SIGKILL
// of one of three nodes until each of the 200 stores answers a fresh
// connection again, and logs its median and maximum. It is a measurement,
// not a test (it asserts no time), and runs only when asked:
//
//	LILY_MEASURE=1 LILY_MEASURE_RUNS=10 go test -count=1 -v -run TestLilydClusterMeasureFailover ./tests
//
// LILY_MEASURE_RUNS defaults to 5. The numbers are in BENCHMARKS.md
// ("Cluster").
func TestLilydClusterMeasureFailover(t *testing.T) {
	if os.Getenv("LILY_MEASURE") != "1" {
		t.Skip("a measurement: set LILY_MEASURE=1 to run it")
	}
	runs := 5
	if v := os.Getenv("LILY_MEASURE_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LILY_MEASURE_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	var took []time.Duration
	for i := range runs {
		t.Run("run-"+strconv.Itoa(i+1), func(t *testing.T) {
			took = append(took, killUnderLoad(t))
		})
		if t.Failed() {
			t.FailNow()
		}
	}
	p50, worst := durationStats(took)
	var all []string
	for _, d := range took {
		all = append(all, d.Round(time.Millisecond).String())
	}
	t.Logf("SIGKILL to every store served again over %d runs: p50 %v, max %v (%v)", runs, p50.Round(time.Millisecond), worst.Round(time.Millisecond), all)
}
