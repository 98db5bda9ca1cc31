package htmlreport_test

// The browser side of TestIntegrationReportInChromium: headless Chromium started with
// the network disabled three ways (offline emulation through CDP, a proxy that is a trap,
// a host resolver that resolves nothing), what the page asked for, and structural checks
// of a screenshot.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"raterd/internal/testkit"
)

// chromiumEnv names the Chromium binary (scripts/services.sh env exports it).
const chromiumEnv = "RATERD_TEST_CHROMIUM"

// chromiumPath returns the browser to test with; the test is skipped without one (failed
// under RATERD_REQUIRE_SERVICES), as for every other service.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := testkit.Service(t, chromiumEnv, "headless Chromium, Debian's chromium package")
	if _, err := exec.LookPath(p); err != nil {
		if os.Getenv(testkit.RequireServicesEnv) != "" {
			t.Fatalf("%s=%s: %v; scripts/services.sh up installs it", chromiumEnv, p, err)
		}
		t.Skipf("%s=%s: %v; scripts/services.sh up installs it", chromiumEnv, p, err)
	}
	return p
}

// proxyTrap is a loopback listener the browser is told to use as its proxy: any
// connection to it is a request that tried to leave the page. It records the first line
// of each (CONNECT host:443 or GET http://…) and answers nothing.
type proxyTrap struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
	wg   sync.WaitGroup
}

func newProxyTrap(t *testing.T) *proxyTrap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy trap: %v", err)
	}
	p := &proxyTrap{ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				p.mu.Lock()
				p.seen = append(p.seen, strings.TrimSpace(line))
				p.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *proxyTrap) addr() string { return p.ln.Addr().String() }

func (p *proxyTrap) connections() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// browser is one headless Chromium with a fresh profile and one tab, and what that tab
// did: the requests it sent and the dialogs it opened.
type browser struct {
	ctx  context.Context
	trap *proxyTrap

	mu       sync.Mutex
	requests []string
	dialogs  []string
}

// quietFeatures are the browser features that reach Google's servers by themselves
// (network time, component and optimisation updates, sign-in, media router,
// translation); turned off so that the proxy trap only ever sees what the page asks.
var quietFeatures = []string{
	"Translate", "BlinkGenPropertyTrees", "NetworkTimeServiceQuerying", "OptimizationHints",
	"OptimizationGuideModelDownloading", "MediaRouter", "DialMediaRouteProvider",
	"CertificateTransparencyComponentUpdater", "AutofillServerCommunication", "InterestFeedContentSuggestions",
	"PrivacySandboxSettings4", "AccountConsistency", "MirrorAccountConsistency", "ChromeWhatsNewUI",
}

// discard is where the browser's own services are sent: the discard port on loopback,
// where nothing listens.
const discard = "127.0.0.1:9"

// newBrowser starts Chromium at path, offline, and returns it with its tab open.
func newBrowser(t *testing.T, path string) *browser {
	t.Helper()
	trap := newProxyTrap(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU,
		// Every request goes to the trap, loopback included, and no name resolves.
		chromedp.ProxyServer("http://"+trap.addr()),
		// The browser's own services (sign-in, component updates, Google APIs) are pointed
		// at the discard port, the one address let past the trap: they call home from a
		// fresh profile whatever the page holds, and are not the page's requests.
		chromedp.Flag("proxy-bypass-list", "<-loopback>;"+discard),
		chromedp.Flag("gaia-url", "http://"+discard),
		chromedp.Flag("lso-url", "http://"+discard),
		chromedp.Flag("google-apis-url", "http://"+discard),
		chromedp.Flag("component-updater", "url-source=http://"+discard+"/"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		// Quiet the browser's own traffic, so that the trap only sees the page's.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-features", strings.Join(quietFeatures, ",")),
		chromedp.Flag("no-service-autorun", true),
		chromedp.Flag("allow-browser-signin", "false"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("dns-prefetch-disable", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	var stderr lockedBuffer
	opts = append(opts, chromedp.CombinedOutput(&stderr))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// Chromium's start, two viewports and two full-page screenshots of a million-row page
	// share one deadline: the test's own, less a margin to report, or 5 minutes without one
	// (a loaded 2-core CI machine needs more than the old 2).
	limit := 5 * time.Minute
	if d, ok := t.Deadline(); ok {
		limit = max(time.Until(d)-10*time.Second, 10*time.Second)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, limit)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	b := &browser{ctx: ctx, trap: trap}
	dialogs := make(chan struct{}, 16)
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.mu.Lock()
			b.requests = append(b.requests, e.Request.URL)
			b.mu.Unlock()
		case *page.EventJavascriptDialogOpening:
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(e.Type)+": "+e.Message)
			b.mu.Unlock()
			select {
			case dialogs <- struct{}{}:
			default:
			}
		}
	}); err != nil {
		t.Fatalf("start chromium %s: %v\n%s", path, err, stderr.String())
	}
	// A dialog would stall the page: dismiss each (they are recorded above, and fail the
	// test), from another goroutine as chromedp.Listen requires.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-dialogs:
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}
		}
	}()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("Network.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{URLPattern: "", Offline: true, DownloadThroughput: -1, UploadThroughput: -1}},
	}); err != nil {
		t.Fatalf("Network.emulateNetworkConditionsByRule (offline): %v", err)
	}
	if _, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
		t.Fatalf("Network.overrideNetworkState (offline): %v", err)
	}
	return b
}

// load shows the file at path in a viewport width px wide (a phone's, with mobile
// emulation, below 600 px) and waits for it to load.
func (b *browser) load(path string, width int64) error {
	vp := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if width < 600 {
		vp = append(vp, chromedp.EmulateMobile)
	}
	u := (&url.URL{Scheme: "file", Path: path}).String()
	return chromedp.Do(b.ctx,
		chromedp.EmulateViewport(width, 900, vp...),
		chromedp.Navigate(u),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
}

// evaluate runs a script in the page and decodes its JSON result into T.
func evaluate[T any](b *browser, script string) (T, error) {
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](script))
	var v T
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decoding %s: %w", raw, err)
	}
	return v, nil
}

// screenshot returns a PNG of the whole page.
func (b *browser) screenshot() ([]byte, error) {
	return chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
}

// foreignRequests returns every request the page sent besides loading the document at
// path itself.
func (b *browser) foreignRequests(path string) []string {
	self := (&url.URL{Scheme: "file", Path: path}).String()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, r := range b.requests {
		if r != self {
			out = append(out, r)
		}
	}
	return out
}

func (b *browser) openedDialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// lockedBuffer collects the browser's output, written from the allocator's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rect is a region of the page in CSS pixels from the document's top left corner, as the
// screenshot (at scale 1) shows it.
type rect struct {
	X, Y, W, H float64
}

// shotStats are what the structural checks read from a screenshot.
type shotStats struct {
	W, H int
	// Colours counts the distinct colours; NonWhite is the share of pixels that are not
	// (near) white.
	Colours  int
	NonWhite float64
}

func decodePNG(data []byte) (image.Image, error) {
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		return nil, errors.New("not a PNG (signature)")
	}
	return png.Decode(bytes.NewReader(data))
}

func rgb8(img image.Image, x, y int) (r, g, b uint8) {
	r32, g32, b32, _ := img.At(x, y).RGBA()
	return uint8(r32 >> 8), uint8(g32 >> 8), uint8(b32 >> 8)
}

func nearWhite(r, g, b uint8) bool { return r > 245 && g > 245 && b > 245 }

// chromatic says a pixel has a colour (not white, grey or black): the palette's data
// marks are; the axes, text and background are not.
func chromatic(r, g, b uint8) bool {
	hi, lo := max(r, g, b), min(r, g, b)
	return int(hi)-int(lo) >= 48
}

func stats(img image.Image) shotStats {
	bd := img.Bounds()
	seen := map[[3]uint8]bool{}
	nonWhite := 0
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, g, b := rgb8(img, x, y)
			if len(seen) < 4096 {
				seen[[3]uint8{r, g, b}] = true
			}
			if !nearWhite(r, g, b) {
				nonWhite++
			}
		}
	}
	return shotStats{W: bd.Dx(), H: bd.Dy(), Colours: len(seen), NonWhite: float64(nonWhite) / float64(max(1, bd.Dx()*bd.Dy()))}
}

// regionInk returns the share of pixels in r that are not white and the number that are
// chromatic; r is clipped to the image.
func regionInk(img image.Image, r rect) (ink float64, colour int) {
	bd := img.Bounds()
	x0, y0 := max(bd.Min.X, int(r.X)), max(bd.Min.Y, int(r.Y))
	x1, y1 := min(bd.Max.X, int(r.X+r.W)), min(bd.Max.Y, int(r.Y+r.H))
	if x1 <= x0 || y1 <= y0 {
		return 0, 0
	}
	n := 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			cr, cg, cb := rgb8(img, x, y)
			if !nearWhite(cr, cg, cb) {
				n++
			}
			if chromatic(cr, cg, cb) {
				colour++
			}
		}
	}
	return float64(n) / float64((x1-x0)*(y1-y0)), colour
}
