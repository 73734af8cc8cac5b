package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus metrics a node serves at /metrics. The gateway
// counts connections and frames itself; the stores report applies and
// errors through ObserveApply and CountError (they satisfy
// actors.Observer), so one registry holds everything.
type Metrics struct {
	registry    *prometheus.Registry
	connections prometheus.Gauge
	framesIn    prometheus.Counter
	framesOut   prometheus.Counter
	bytesIn     prometheus.Counter
	bytesOut    prometheus.Counter
	applyTime   prometheus.Histogram
	errors      *prometheus.CounterVec
	closes      *prometheus.CounterVec
}

// NewMetrics returns a fresh set of metrics in its own registry, with the Go
// runtime and process collectors. stores, when not nil, is read at each
// scrape for the number of active stores.
func NewMetrics(stores func() int) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lily_connections_open", Help: "Client connections (WebSockets and event streams) open on this node.",
		}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lily_frames_in_total", Help: "Frames received from clients.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lily_frames_out_total", Help: "Frames sent to clients.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lily_bytes_in_total", Help: "Payload bytes received from clients.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lily_bytes_out_total", Help: "Payload bytes sent to clients.",
		}),
		applyTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lily_apply_seconds",
			Help:    "Time a store takes to apply one client message (decode, update, encode, enqueue).",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12), // 1 µs .. 4 s
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lily_errors_total", Help: "Error frames sent to clients, by PROTOCOL.md code.",
		}, []string{"code"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lily_closes_total", Help: "Client connections the server closed, by WebSocket close code (event streams under the code of the same cause).",
		}, []string{"code"}),
	}
	m.registry.MustRegister(m.connections, m.framesIn, m.framesOut, m.bytesIn, m.bytesOut, m.applyTime, m.errors, m.closes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if stores != nil {
		m.CountStores(stores)
	}
	return m
}

// CountStores adds the lily_stores_active gauge, read from stores at each
// scrape (for metrics made with NewMetrics(nil)). Call it once.
func (m *Metrics) CountStores(stores func() int) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lily_stores_active", Help: "Stores running on this node.",
	}, func() float64 { return float64(stores()) }))
}

// Registry returns the registry the metrics live in, to add more.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveApply records the time one client message took to apply.
func (m *Metrics) ObserveApply(d time.Duration) { m.applyTime.Observe(d.Seconds()) }

// CountError counts one error frame with the given PROTOCOL.md code.
func (m *Metrics) CountError(code string) { m.errors.WithLabelValues(code).Inc() }
