package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lily-go/lily/internal/testutil"
)

// chromiumPath returns Debian's Chromium. The browser tests need it: they
// fail, not skip, when it is missing (tests/run installs it).
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{os.Getenv("LILY_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	tb.Fatal("chromium is not installed: run tests/run (it installs Debian's chromium), or apt-get install -y chromium")
	return ""
}

// browser is one headless Chromium with a fresh profile, stopped when the
// test ends.
type browser struct {
	tb  testing.TB
	ctx context.Context        // the browser's context; each page is a tab of it
	out *testutil.LockedBuffer // Chromium's own output
}

// startBrowser starts headless Chromium with the flags of issue 7 and a
// fresh --user-data-dir. chromedp starts it and, when the test ends, stops
// the process it started.
func startBrowser(tb testing.TB) *browser {
	tb.Helper()
	dir, err := os.MkdirTemp("", "lily-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	b := &browser{tb: tb, out: &testutil.LockedBuffer{}}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(tb)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1100, 760),
		chromedp.CombinedOutput(b.out),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		_ = os.RemoveAll(dir)
		tb.Fatalf("start chromium: %v\n%s", err, b.out.String())
	}
	b.ctx = ctx
	tb.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the process to exit
		_ = os.RemoveAll(dir)
		if tb.Failed() {
			tb.Logf("chromium output:\n%s", b.out.String())
		}
	})
	return b
}

// page is one tab.
type page struct {
	tb      testing.TB
	name    string
	ctx     context.Context
	close   context.CancelFunc     // closes the tab; the test's end does too
	console *testutil.LockedBuffer // the page's console messages and exceptions
}

// open opens url in a new tab. setup actions run before the navigation
// (scripts for every new document, say). On failure the test saves a
// screenshot of the tab next to its log and prints the page's console.
func (b *browser) open(name, url string, setup ...chromedp.Action[chromedp.Void]) *page {
	b.tb.Helper()
	// Each tab in a browser context of its own: its own window (never a
	// hidden, throttled background tab), its own storage and cache.
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	p := &page{tb: b.tb, name: name, ctx: ctx, close: cancel, console: &testutil.LockedBuffer{}}
	if err := chromedp.Do(ctx, setup...); err != nil {
		cancel()
		b.tb.Fatalf("page %s: setup: %v", name, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			fmt.Fprintf(p.console, "%s:%d %s\n", m.URL, m.Line+1, m)
		}
	}()
	b.tb.Cleanup(func() {
		if b.tb.Failed() {
			p.screenshot()
			b.tb.Logf("page %s console:\n%s", name, p.console.String())
		}
		cancel()
	})
	p.do(chromedp.Navigate(url))
	return p
}

// screenshotDir is where failing browser tests leave their screenshots: a
// fixed directory under the system's temporary one, which the test does not
// remove (t.TempDir would be).
var screenshotDir = filepath.Join(os.TempDir(), "lily-browser-tests")

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// screenshot saves a full-page screenshot and logs its path.
func (p *page) screenshot() {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
	if err != nil {
		p.tb.Logf("page %s: no screenshot: %v", p.name, err)
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		p.tb.Logf("page %s: no screenshot: %v", p.name, err)
		return
	}
	path := filepath.Join(screenshotDir, unsafeChars.ReplaceAllString(p.tb.Name()+"-"+p.name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.tb.Logf("page %s: no screenshot: %v", p.name, err)
		return
	}
	p.tb.Logf("page %s: screenshot saved to %s", p.name, path)
}

// do runs actions on the page, failing the test on an error.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, testutil.DefaultWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.tb.Fatalf("page %s: %v", p.name, err)
	}
}

// click clicks the element with the given id once it is visible.
func (p *page) click(id string) {
	p.tb.Helper()
	p.do(chromedp.Click(chromedp.ID(id)))
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into T.
func eval[T any](p *page, expr string) T {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, testutil.DefaultWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.tb.Fatalf("page %s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// waitFor polls a JavaScript expression in the page until it is truthy.
// The page polls it itself, every few milliseconds, until
// testutil.DefaultWait; then the test fails with what describe (another
// expression) says.
func (p *page) waitFor(expr, describe string) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, testutil.DefaultWait+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(testutil.DefaultWait)))
	if err != nil {
		state := "?"
		if s, serr := chromedp.Run(p.ctx, chromedp.Evaluate[string](describe)); serr == nil {
			state = s
		}
		p.tb.Fatalf("page %s: %s never held (%v); now %s", p.name, expr, err, state)
	}
}

// demoState describes the demo page's two stores, for failure messages.
const demoState = `JSON.stringify(Object.fromEntries(Object.entries(lilyDemo.stores).map(([k, s]) => [k, { ...s.get(), confirmed: undefined }])))`

// waitText waits until the element with the given id shows want.
func (p *page) waitText(id, want string) {
	p.tb.Helper()
	p.waitFor(fmt.Sprintf(`document.getElementById(%q)?.textContent === %q`, id, want),
		fmt.Sprintf(`'#%s shows ' + JSON.stringify(document.getElementById(%q)?.textContent) + '; ' + (window.lilyDemo ? %s : 'no lilyDemo')`, id, id, demoState))
}

// text returns the text of the element with the given id.
func (p *page) text(id string) string {
	p.tb.Helper()
	return eval[string](p, fmt.Sprintf(`document.getElementById(%q).textContent`, id))
}

// waitSynced waits until both stores of the demo page are connected,
// have applied a first snapshot and have nothing pending.
func (p *page) waitSynced() {
	p.tb.Helper()
	p.waitFor(`window.lilyDemo && lilyDemo.stats.firstSync.counter !== undefined && lilyDemo.stats.firstSync.todo !== undefined &&
		Object.values(lilyDemo.stores).every(s => { const v = s.get(); return v.state === 'connected' && v.pending === 0 })`, demoState)
}

// onNewDocument runs script in every document of the page before its own
// scripts.
func onNewDocument(script string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return chromedp.Void{}, err
	}
}

// blockWebSockets makes every WebSocket of the page fail as a network that
// blocks them would: each one is sent to a closed port of 127.0.0.1.
var blockWebSockets = onNewDocument(`window.WebSocket = class extends WebSocket {
	constructor(url, protocols) { super('ws://127.0.0.1:9/blocked', protocols) }
}`)

// demoURL is the demo page of lilyd at addr on the stores named store.
func demoURL(addr, store string, query ...string) string {
	return "http://" + addr + "/?store=" + store + strings.Join(append([]string{""}, query...), "&")
}
