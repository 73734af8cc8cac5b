package tests

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserDemoPageScreenshot fills the demo page a little and takes a
// screenshot of it: the page must render. With LILY_SCREENSHOT=path the
// PNG is written there (README's docs/demo-page.png is made so).
func TestBrowserDemoPageScreenshot(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	b := startBrowser(t)
	other := b.open("other tab", demoURL(node.addr, "demo"))
	p := b.open("page", demoURL(node.addr, "demo"))
	p.waitSynced()
	other.waitSynced()
	for _, id := range []string{"counter-add", "counter-add", "counter-inc", "counter-inc"} {
		p.click(id)
	}
	other.click("counter-inc")
	for _, title := range []string{"Buy milk", "Call the plumber", "Write the release notes"} {
		p.do(chromedp.SendKeys(chromedp.ID("todo-title"), title))
		p.click("todo-add")
	}
	p.waitFor(`document.querySelectorAll('#todo-list li[data-id]').length === 3`, demoState)
	other.do(chromedp.Click(chromedp.CSS(`#todo-list li[data-id="1"] input[type=checkbox]`)))
	p.waitFor(`document.querySelector('#todo-list li[data-id="1"]').classList.contains('done')`, demoState)
	p.waitText("counter-value", "23")
	p.waitText("counter-pending", "0")
	p.waitText("todo-pending", "0")
	p.do(chromedp.SendKeys(chromedp.ID("todo-title"), "Water the plants"))

	shot, err := chromedp.Run(p.ctx, chromedp.Screenshot(chromedp.CSS("body"))) // the page's content, not the empty rest of the window
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if size := img.Bounds().Size(); size.X < 800 || size.Y < 400 {
		t.Fatalf("screenshot of %v", size)
	}
	if path := os.Getenv("LILY_SCREENSHOT"); path != "" {
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", path)
	}
}

// BenchmarkBrowserFirstSnapshot measures the time from navigation to the
// first snapshot of both stores of the demo page, in a new tab with an
// empty cache and storage each time (a new browser context), on loopback.
// ms/first-snapshot is the median, max-ms the slowest, first-tab-ms the
// first tab's (for ws, the first page of a freshly started Chromium).
//
//	go test ./tests/ -run '^$' -bench BrowserFirstSnapshot -benchtime 20x
func BenchmarkBrowserFirstSnapshot(b *testing.B) {
	node := startLilyd(b, freeAddr(b))
	br := startBrowser(b)
	for _, transport := range []string{"ws", "sse"} {
		b.Run(transport, func(b *testing.B) {
			var times []float64
			for i := 0; b.Loop(); i++ {
				p := br.open(fmt.Sprintf("tab %d", i), demoURL(node.addr, fmt.Sprintf("first-%s-%d", transport, i), "transport="+transport))
				p.waitSynced()
				times = append(times, eval[float64](p, `Math.max(lilyDemo.stats.firstSync.counter, lilyDemo.stats.firstSync.todo)`))
				p.close()
			}
			b.ReportMetric(times[0], "first-tab-ms") // for ws: the browser's very first page
			slices.Sort(times)
			b.ReportMetric(times[len(times)/2], "ms/first-snapshot")
			b.ReportMetric(times[len(times)-1], "max-ms")
		})
	}
}

// BenchmarkBrowserThroughput measures how many counter messages one page
// can send and have acknowledged and applied: b.N Increments sent in one
// loop, until none is pending, with the demo page rendering every change.
//
//	go test ./tests/ -run '^$' -bench BrowserThroughput -benchtime 20000x
func BenchmarkBrowserThroughput(b *testing.B) {
	node := startLilyd(b, freeAddr(b))
	br := startBrowser(b)
	for _, transport := range []string{"ws", "sse"} {
		b.Run(transport, func(b *testing.B) {
			p := br.open("page "+transport, demoURL(node.addr, "throughput-"+transport, "transport="+transport))
			defer p.close()
			p.waitSynced()
			b.ResetTimer()
			perSecond := eval[float64](p, fmt.Sprintf(`(async n => {
				const { encode } = await import('/lily.js')
				const s = lilyDemo.stores.counter, start = performance.now()
				const { sequence, model } = s.get()
				for (let i = 0; i < n; i++) s.send(encode('Increment'))
				await new Promise(done => {
					let stop
					stop = s.subscribe(v => { if (v.pending === 0 && v.sequence === sequence + n) { done(); stop?.() } })
				})
				const elapsed = performance.now() - start
				if (s.get().model[0] !== model[0] + n) throw new Error('count ' + s.get().model[0] + ', want ' + (model[0] + n))
				return n / elapsed * 1000
			})(%d)`, b.N))
			b.StopTimer()
			b.ReportMetric(perSecond, "msgs/s")
		})
	}
}
