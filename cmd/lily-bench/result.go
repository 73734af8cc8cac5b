package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"
)

// check is one PASS/FAIL line of the convergence check.
type check struct {
	name   string
	pass   bool
	detail string
}

// storeResult is what one store did during the run.
type storeResult struct {
	name       string
	clients    int    // connections that opened
	startSeq   uint64 // from the baseline resync
	acked      uint64 // acknowledges its senders got, all phases
	deliveries uint64 // server_message frames its clients got, all phases
	overflows  uint64 // overflow snapshots its clients got
}

// result is everything a load run measured. The exported fields are the
// JSON line; the others feed the human table and the tests.
type result struct {
	Mode            string  `json:"mode"`
	Kind            string  `json:"kind"`
	Message         string  `json:"message"`
	Format          string  `json:"format"`
	URLs            int     `json:"urls"`
	Stores          int     `json:"stores"`
	ClientsPerStore int     `json:"clients_per_store"`
	SendersPerStore int     `json:"senders_per_store"`
	RatePerSender   float64 `json:"rate_per_sender"` // 0 = closed loop
	DurationSeconds float64 `json:"duration_s"`
	WarmupSeconds   float64 `json:"warmup_s"`
	MeasuredSeconds float64 `json:"measured_s"`
	Interrupted     bool    `json:"interrupted"`
	PayloadBytes    int     `json:"payload_bytes"` // the message as the serialiser encodes it
	FrameBytes      int     `json:"frame_bytes"`   // the client_message envelope around it (id 1)

	Connections     int     `json:"connections"`
	ConnectFailures int     `json:"connect_failures"`
	ConnectSeconds  float64 `json:"connect_s"`

	Acked            uint64  `json:"acked"` // inside the measurement window
	AckedPerSec      float64 `json:"acked_per_sec"`
	Deliveries       uint64  `json:"deliveries"` // inside the measurement window
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	AckedTotal       uint64  `json:"acked_total"` // whole run, warm-up and drain included
	DeliveriesTotal  uint64  `json:"deliveries_total"`
	RefusedTotal     uint64  `json:"refused_total"` // error frames answering a message

	AckCount uint64  `json:"ack_latency_count"`
	AckP50   float64 `json:"ack_p50_ms"`
	AckP90   float64 `json:"ack_p90_ms"`
	AckP99   float64 `json:"ack_p99_ms"`
	AckP999  float64 `json:"ack_p999_ms"`
	AckMax   float64 `json:"ack_max_ms"`
	AckMean  float64 `json:"ack_mean_ms"`

	DeliveryCount uint64  `json:"delivery_latency_count"`
	DeliveryP50   float64 `json:"delivery_p50_ms"`
	DeliveryP90   float64 `json:"delivery_p90_ms"`
	DeliveryP99   float64 `json:"delivery_p99_ms"`
	DeliveryP999  float64 `json:"delivery_p999_ms"`
	DeliveryMax   float64 `json:"delivery_max_ms"`
	DeliveryMean  float64 `json:"delivery_mean_ms"`

	UnresolvedDeliveries uint64            `json:"unresolved_deliveries"`
	OverflowSnapshots    uint64            `json:"overflow_snapshots"`
	SenderStalls         uint64            `json:"sender_stalls"`
	Errors               map[string]uint64 `json:"errors"`
	ErrorsTotal          uint64            `json:"errors_total"`

	BenchCPUPercent       float64  `json:"bench_cpu_percent"`
	ServerCPUPercent      *float64 `json:"server_cpu_percent"` // null without /metrics
	ServerFramesOutPerSec *float64 `json:"server_frames_out_per_sec"`

	Drained bool              `json:"drained"`
	Checks  map[string]string `json:"checks"`
	Pass    bool              `json:"pass"`

	baselineOK bool
	checks     []check
	stores     []storeResult
	notes      []string
}

// fillConfig copies the run's settings into the result.
func (res *result) fillConfig(cfg config, codec kindCodec, frameBytes int) {
	res.Mode = "load"
	res.Kind = cfg.kind
	res.Message = codec.describe
	res.Format = cfg.format.String()
	res.URLs = len(cfg.urls)
	res.Stores = cfg.stores
	res.ClientsPerStore = cfg.clients
	res.SendersPerStore = cfg.sendersPerStore()
	res.RatePerSender = cfg.rate
	res.DurationSeconds = cfg.duration.Seconds()
	res.WarmupSeconds = cfg.warmup.Seconds()
	res.PayloadBytes = len(codec.payload)
	res.FrameBytes = frameBytes
}

// ms converts a duration to milliseconds with microsecond precision.
func ms(d time.Duration) float64 { return round3(float64(d) / 1e6) }

func round3(v float64) float64 {
	return float64(int64(v*1000+0.5)) / 1000
}

// finish sums the connections' counters, reads the histograms and runs the
// convergence checks. The readers must have returned.
func (res *result) finish(r *loadRun) {
	for _, c := range r.conns {
		res.Acked += c.ackedWin.Load()
		res.Deliveries += c.delivWin.Load()
		res.AckedTotal += c.acked.Load()
		res.DeliveriesTotal += c.deliveries.Load()
		res.RefusedTotal += c.refused.Load()
		res.UnresolvedDeliveries += c.unresolved.Load()
		res.OverflowSnapshots += c.overflows.Load()
		res.SenderStalls += c.stalls.Load()
	}
	if res.MeasuredSeconds > 0 {
		res.AckedPerSec = round2(float64(res.Acked) / res.MeasuredSeconds)
		res.DeliveriesPerSec = round2(float64(res.Deliveries) / res.MeasuredSeconds)
	}
	h := r.ackHist
	res.AckCount = h.count()
	res.AckP50, res.AckP90, res.AckP99, res.AckP999 = ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999))
	res.AckMax, res.AckMean = ms(h.maxValue()), ms(h.mean())
	h = r.delivHist
	res.DeliveryCount = h.count()
	res.DeliveryP50, res.DeliveryP90, res.DeliveryP99, res.DeliveryP999 = ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999))
	res.DeliveryMax, res.DeliveryMean = ms(h.maxValue()), ms(h.mean())

	r.errMu.Lock()
	res.Errors = make(map[string]uint64, len(r.errs))
	for k, n := range r.errs {
		res.Errors[k] = n
		res.ErrorsTotal += n
	}
	res.notes = append(res.notes, r.notes...)
	if r.nNotes > len(r.notes) {
		res.notes = append(res.notes, fmt.Sprintf("(%d more messages)", r.nNotes-len(r.notes)))
	}
	r.errMu.Unlock()

	res.runChecks(r)
}

// runChecks fills res.checks, Checks and Pass.
func (res *result) runChecks(r *loadRun) {
	total := len(r.conns)
	add := func(name string, pass bool, format string, args ...any) {
		res.checks = append(res.checks, check{name: name, pass: pass, detail: fmt.Sprintf(format, args...)})
	}
	add("connections", res.Connections == total && res.baselineOK,
		"%d/%d opened; baseline snapshots %s", res.Connections, total, map[bool]string{true: "agree", false: "missing or differ"}[res.baselineOK])
	add("drained", res.Drained, "every message answered and every client caught up before the final resync")
	add("no_errors", res.ErrorsTotal == 0, "%d errors", res.ErrorsTotal)

	var seqBad, agreeBad, modelBad, answered, open int
	var seqFirst, agreeFirst, modelFirst string
	violations := 0
	var violFirst string
	for _, st := range r.stores {
		sr := storeResult{name: st.name, startSeq: st.startSeq}
		var ref *finalSnap
		for _, c := range st.conns {
			if c.ws == nil {
				continue
			}
			sr.clients++
			sr.acked += c.acked.Load()
			sr.deliveries += c.deliveries.Load()
			sr.overflows += c.overflows.Load()
			if c.violations > 0 {
				violations += c.violations
				if violFirst == "" {
					violFirst = fmt.Sprintf("%s: %s", c.clientID, c.firstViolation)
				}
			}
		}
		res.stores = append(res.stores, sr)
		want := st.startSeq + sr.acked
		for _, c := range st.conns {
			if c.ws == nil {
				continue
			}
			open++
			if !c.final.ok {
				continue
			}
			answered++
			if c.final.seq != want {
				seqBad++
				if seqFirst == "" {
					seqFirst = fmt.Sprintf("store %s: client %s at sequence %d, want %d (start %d + %d acked)", st.name, c.clientID, c.final.seq, want, st.startSeq, sr.acked)
				}
			}
			if ref == nil {
				ref = &c.final
			} else if c.final.seq != ref.seq || !reflect.DeepEqual(c.final.model, ref.model) {
				agreeBad++
				if agreeFirst == "" {
					agreeFirst = fmt.Sprintf("store %s: client %s has sequence %d, another %d (or the models differ)", st.name, c.clientID, c.final.seq, ref.seq)
				}
			}
		}
		if ref == nil || !st.baseline {
			modelBad++
			if modelFirst == "" {
				modelFirst = fmt.Sprintf("store %s: no baseline or no final snapshot to compare", st.name)
			}
			continue
		}
		if r.codec.increments {
			got, start := r.codec.count(ref.model), r.codec.count(st.startModel)
			if uint64(got-start) != sr.acked || got < start {
				modelBad++
				if modelFirst == "" {
					modelFirst = fmt.Sprintf("store %s: Count went from %d to %d, but %d Increments were acknowledged", st.name, start, got, sr.acked)
				}
			}
		} else if !reflect.DeepEqual(ref.model, st.startModel) {
			modelBad++
			if modelFirst == "" {
				modelFirst = fmt.Sprintf("store %s: the model changed, but every message sent is a no-op", st.name)
			}
		}
	}
	detail := func(bad int, first, ok string) string {
		if bad == 0 {
			return ok
		}
		return fmt.Sprintf("%d bad; first: %s", bad, first)
	}
	add("resync", answered == open && open > 0, "%d/%d open clients answered the final resync", answered, open)
	add("sequence", seqBad == 0 && answered > 0, "%s", detail(seqBad, seqFirst, "every snapshot's sequence = start + acknowledged messages"))
	add("agreement", agreeBad == 0 && answered > 0, "%s", detail(agreeBad, agreeFirst, "all clients of each store have the same sequence and model"))
	modelOK := "the model did not change (no-op messages)"
	if r.codec.increments {
		modelOK = "each store's Count grew by exactly its acknowledged Increments"
	}
	add("model", modelBad == 0, "%s", detail(modelBad, modelFirst, modelOK))
	add("gap_free", violations == 0 && res.Connections > 0, "%s", detail(violations, violFirst,
		fmt.Sprintf("every client saw consecutive sequences (%d overflow snapshots)", res.OverflowSnapshots)))

	res.Checks = map[string]string{}
	res.Pass = true
	for _, c := range res.checks {
		res.Checks[c.name] = map[bool]string{true: "PASS", false: "FAIL"}[c.pass]
		res.Pass = res.Pass && c.pass
	}
}

// printLoad writes the human table (unless jsonOnly) and the JSON line.
func printLoad(w io.Writer, res *result, urls []string, jsonOnly bool) error {
	if !jsonOnly {
		loop := "closed loop"
		if res.RatePerSender > 0 {
			loop = fmt.Sprintf("%g msg/s each", res.RatePerSender)
		}
		fmt.Fprintf(w, "lily-bench: %s x %d stores x %d clients (%d senders per store, %s), %s, %s (%d-byte payload, %d-byte frame)\n",
			res.Kind, res.Stores, res.ClientsPerStore, res.SendersPerStore, loop, res.Format, res.Message, res.PayloadBytes, res.FrameBytes)
		fmt.Fprintf(w, "target: %s\n", strings.Join(urls, ", "))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		interrupted := ""
		if res.Interrupted {
			interrupted = " (interrupted)"
		}
		fmt.Fprintf(tw, "measured\t%.2fs%s after %.2fs warm-up\n", res.MeasuredSeconds, interrupted, res.WarmupSeconds)
		fmt.Fprintf(tw, "connections\t%d opened, %d failed, in %.2fs\n", res.Connections, res.ConnectFailures, res.ConnectSeconds)
		fmt.Fprintf(tw, "acknowledged\t%d\t%.1f msg/s\t(%d in the whole run)\n", res.Acked, res.AckedPerSec, res.AckedTotal)
		fmt.Fprintf(tw, "deliveries\t%d\t%.1f msg/s\t(%d in the whole run)\n", res.Deliveries, res.DeliveriesPerSec, res.DeliveriesTotal)
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "latency (ms)\tp50\tp90\tp99\tp99.9\tmax\tmean\tsamples")
		fmt.Fprintf(tw, "ack\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\n", res.AckP50, res.AckP90, res.AckP99, res.AckP999, res.AckMax, res.AckMean, res.AckCount)
		fmt.Fprintf(tw, "delivery\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\n", res.DeliveryP50, res.DeliveryP90, res.DeliveryP99, res.DeliveryP999, res.DeliveryMax, res.DeliveryMean, res.DeliveryCount)
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "overflow snapshots\t%d\n", res.OverflowSnapshots)
		fmt.Fprintf(tw, "unresolved deliveries\t%d\n", res.UnresolvedDeliveries)
		if res.RatePerSender > 0 {
			fmt.Fprintf(tw, "sender stalls\t%d\t(-max-inflight reached)\n", res.SenderStalls)
		}
		fmt.Fprintf(tw, "bench CPU\t%.1f%%\t(of one core)\n", res.BenchCPUPercent)
		if res.ServerCPUPercent != nil {
			fmt.Fprintf(tw, "server CPU\t%.1f%%\t(%.0f frames out/s)\n", *res.ServerCPUPercent, *res.ServerFramesOutPerSec)
		}
		if len(res.Errors) == 0 {
			fmt.Fprintf(tw, "errors\tnone\n")
		}
		for _, k := range sortedKeys(res.Errors) {
			fmt.Fprintf(tw, "errors\t%s\t%d\n", k, res.Errors[k])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range res.notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
		fmt.Fprintln(w, "checks:")
		for _, c := range res.checks {
			fmt.Fprintf(w, "  %s %-12s %s\n", map[bool]string{true: "PASS", false: "FAIL"}[c.pass], c.name, c.detail)
		}
	}
	return writeJSONLine(w, res)
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
