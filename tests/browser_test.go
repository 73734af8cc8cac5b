package tests

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/transport"
)

// The browser tests drive the demo page that lilyd serves at / in headless
// Chromium (Debian's chromium package; tests/run installs it). A failing
// test saves a screenshot of each of its pages and prints its console.

// Two tabs on the same stores converge after clicks in both.
func TestBrowserTwoPagesConverge(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	b := startBrowser(t)
	url := demoURL(node.addr, "converge")
	one, two := b.open("one", url), b.open("two", url)
	one.waitSynced()
	two.waitSynced()

	for range 3 {
		one.click("counter-inc")
		two.click("counter-inc")
	}
	two.click("counter-add")
	one.click("counter-dec")
	for _, p := range []*page{one, two} {
		p.waitText("counter-value", "15")
		p.waitText("counter-pending", "0")
	}
	if one.text("counter-seq") != "8" || two.text("counter-seq") != "8" {
		t.Fatalf("sequences %s and %s, want 8", one.text("counter-seq"), two.text("counter-seq"))
	}

	one.do(chromedp.SendKeys(chromedp.ID("todo-title"), "milk"))
	one.click("todo-add")
	two.waitFor(`document.querySelectorAll('#todo-list li[data-id]').length === 1`, demoState)
	two.do(chromedp.SendKeys(chromedp.ID("todo-title"), "eggs"))
	two.click("todo-add")
	two.click("todo-add") // an empty title: refused locally, never sent
	two.waitFor(`document.getElementById('todo-error').textContent.includes('empty')`, demoState)
	one.do(chromedp.Click(chromedp.CSS(`#todo-list li[data-id="1"] input[type=checkbox]`)))
	want := `[["milk",true],["eggs",false]]`
	items := `JSON.stringify([...document.querySelectorAll('#todo-list li[data-id]')].map(li => [li.querySelector('.title').textContent, li.classList.contains('done')]))`
	for _, p := range []*page{one, two} {
		p.waitFor(items+` === '`+want+`'`, items)
		p.waitText("todo-pending", "0")
	}
}

// Offline clicks apply locally at once and reach the store exactly once
// after the page goes online again; a reload while offline keeps them
// (sessionStorage holds the queue, the client id and the id counter).
func TestBrowserOfflineEditsSyncOnce(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	b := startBrowser(t)
	p := b.open("page", demoURL(node.addr, "offline"))
	p.waitSynced()
	observer := testutil.DialWS(t, node.url("counter", "offline", "observer"), nil)
	observer.Snapshot()

	p.click("offline")
	p.waitText("counter-state", "offline")
	for range 3 {
		p.click("counter-inc")
	}
	p.waitText("counter-value", "3")
	p.waitText("counter-pending", "3")
	if count, _ := countOf(t, observer); count != 0 {
		t.Fatalf("the store has count %d while the page is offline, want 0", count)
	}

	p.click("offline") // back online
	p.waitText("counter-state", "connected")
	p.waitText("counter-pending", "0")
	p.waitText("counter-value", "3")
	if count, seq := countOf(t, observer); count != 3 || seq != 3 {
		t.Fatalf("the store has count %d at sequence %d, want 3 at 3: each offline edit once", count, seq)
	}

	// Offline edits survive a reload of the tab.
	p.click("offline")
	p.waitText("counter-state", "offline")
	p.click("counter-add")
	p.click("counter-add")
	p.waitText("counter-pending", "2")
	clientID := eval[string](p, `lilyDemo.stores.counter.clientId`)
	p.do(chromedp.Reload())
	p.waitSynced()
	p.waitText("counter-value", "23")
	if got := eval[string](p, `lilyDemo.stores.counter.clientId`); got != clientID {
		t.Fatalf("client id %q after the reload, want %q", got, clientID)
	}
	if count, _ := countOf(t, observer); count != 23 {
		t.Fatalf("the store has count %d after the reload, want 23", count)
	}
}

// The connection drops after the node applied a click but before its
// acknowledgement reached the page: the page resends it with its id and the
// node does not apply it twice.
func TestBrowserLostAcknowledgement(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	proxy := testutil.NewProxy(t, node.addr)
	b := startBrowser(t)
	p := b.open("page", demoURL(proxy.Addr(), "lost-ack"))
	p.waitSynced()
	observer := testutil.DialWS(t, node.url("counter", "lost-ack", "observer"), nil)
	observer.Snapshot()

	proxy.DropDownstream()
	p.click("counter-add")
	applied := observer.NextOf(transport.TypeServerMessage) // the node applied it
	p.waitText("counter-pending", "1")                      // the page never heard
	proxy.CutAll()
	proxy.RestoreDownstream()

	p.waitText("counter-state", "connected")
	p.waitText("counter-pending", "0")
	p.waitText("counter-value", "10")
	if count, seq := countOf(t, observer); count != 10 || seq != applied.Sequence {
		t.Fatalf("node at count %d sequence %d, want 10 at %d: the click was applied twice", count, seq, applied.Sequence)
	}
}

// A page whose WebSockets are blocked falls back to SSE + POST by itself,
// and converges with a WebSocket page and a Go client of the fallback on
// the same store.
func TestBrowserSSEFallbackConvergesWithWebSockets(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	b := startBrowser(t)
	url := demoURL(node.addr, "fallback")
	blocked := b.open("blocked", url, blockWebSockets)
	open := b.open("websocket", url)
	goClient := connectCounter(t, fmt.Sprintf("http://%s/ws/counter/fallback", node.addr), client.Options{Transport: client.TransportSSE})
	open.waitSynced()
	blocked.waitSynced()
	blocked.waitText("counter-transport", "SSE + POST")
	open.waitText("counter-transport", "WebSocket")

	for range 4 {
		blocked.click("counter-inc")
		open.click("counter-inc")
		if err := goClient.Send(counter.Increment{}); err != nil {
			t.Fatal(err)
		}
	}
	blocked.click("counter-add")
	flush(t, goClient)
	for _, p := range []*page{blocked, open} {
		p.waitText("counter-value", "22")
		p.waitText("counter-pending", "0")
		p.waitText("counter-seq", "13")
	}
	testutil.Eventually(t, func() bool { return goClient.Model().Count == 22 }, "the Go client has %d, want 22", goClient.Model().Count)

	// The fallback page edits offline and syncs too.
	blocked.click("offline")
	blocked.waitText("counter-state", "offline")
	blocked.click("counter-reset")
	blocked.click("counter-inc")
	blocked.click("offline")
	for _, p := range []*page{blocked, open} {
		p.waitText("counter-value", "1")
		p.waitText("counter-pending", "0")
	}
}

// The JavaScript update functions of the demo page (kinds.js, run here in
// Chromium) agree with demo/examples.json, the table the Go update
// functions are checked against (demo's tests; web's run it with Node).
func TestBrowserDriftTable(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	b := startBrowser(t)
	p := b.open("page", fmt.Sprintf("http://%s/", node.addr))
	examples, err := demo.Examples()
	if err != nil {
		t.Fatal(err)
	}
	results := eval[[]struct {
		Model    json.RawMessage `json:"model"`
		Rejected string          `json:"rejected"`
	}](p, `(async () => {
		const kinds = await import('/kinds.js')
		return (`+string(demo.ExamplesJSON)+`).map(ex => {
			try { return { model: kinds[ex.kind].update(ex.model, ex.message) } }
			catch (e) { return { rejected: String(e.message) } }
		})
	})()`)
	if len(results) != len(examples) {
		t.Fatalf("%d results for %d examples", len(results), len(examples))
	}
	for i, ex := range examples {
		r := results[i]
		switch {
		case ex.Rejected != (r.Rejected != ""):
			t.Errorf("%s/%s: refused %q, want refused %v", ex.Kind, ex.Name, r.Rejected, ex.Rejected)
		case !ex.Rejected && !sameJSON(t, r.Model, ex.Expected):
			t.Errorf("%s/%s: got %s, want %s", ex.Kind, ex.Name, r.Model, ex.Expected)
		}
	}
}

func sameJSON(tb testing.TB, a, b []byte) bool {
	tb.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		tb.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		tb.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
