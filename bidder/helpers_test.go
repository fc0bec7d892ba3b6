package bidder

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Test sizes: small enough that the package tests run in seconds on 2 cores.
const (
	testIndexSize = 16 << 20
	testCampaigns = 2000
	testUsers     = 50_000
)

var (
	testIndexOnce sync.Once
	testIndexPath string
	testIndexErr  error
	testDir       string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testDir != "" {
		os.RemoveAll(testDir)
	}
	os.Exit(code)
}

// sharedIndex builds one small index per test process.
func sharedIndex(tb testing.TB) string {
	tb.Helper()
	testIndexOnce.Do(func() {
		testDir, testIndexErr = os.MkdirTemp("", "bidder-test-")
		if testIndexErr != nil {
			return
		}
		testIndexPath = filepath.Join(testDir, "test.idx")
		testIndexErr = BuildIndex(testIndexPath, IndexOptions{Size: testIndexSize, Campaigns: testCampaigns, Seed: 7})
	})
	if testIndexErr != nil {
		tb.Fatalf("build shared index: %v", testIndexErr)
	}
	return testIndexPath
}

// newTestBidder returns a small bidder with the given fixes, closed at the
// end of the test.
func newTestBidder(tb testing.TB, fixes Fixes) *Bidder {
	tb.Helper()
	// Generous deadlines: a loaded CI machine must not turn bids into
	// deadline no-bids (TestDeadline covers the deadline path).
	b, err := New(Config{IndexPath: sharedIndex(tb), Users: testUsers, Fixes: fixes,
		DefaultTmax: time.Minute, MaxTmax: time.Minute})
	if err != nil {
		tb.Fatalf("new bidder: %v", err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

var (
	testCountries = []string{"USA", "GBR", "DEU", "FRA", "BRA", "ZZZ"}
	testFormats   = [][2]int{{300, 250}, {728, 90}, {320, 50}, {300, 600}, {160, 600}}
)

// testRequest returns a valid OpenRTB request body, varied by i: site or
// app, banner or video, several countries, device types and users.
func testRequest(i int) []byte {
	country := testCountries[i%len(testCountries)]
	f := testFormats[i%len(testFormats)]
	imp := fmt.Sprintf(`{"id":"1","banner":{"format":[{"w":%d,"h":%d}]},"bidfloor":%.2f}`, f[0], f[1], float64(i%5)*0.3)
	if i%4 == 3 {
		imp = `{"id":"1","video":{"mimes":["video/mp4"],"w":640,"h":360},"bidfloor":1.5}`
	}
	if i%7 == 0 {
		imp += `,{"id":"2","banner":{"w":300,"h":250}}`
	}
	inv := fmt.Sprintf(`"site":{"id":"s%d","domain":"site%d.example","page":"https://site%d.example/a"}`, i%50, i%50, i%50)
	if i%3 == 0 {
		inv = fmt.Sprintf(`"app":{"id":"a%d","bundle":"com.example.app%d"}`, i%40, i%40)
	}
	return fmt.Appendf(nil, `{"id":"req-%d","tmax":60000,"imp":[%s],%s,"device":{"ua":"Mozilla/5.0","ip":"203.0.113.%d","devicetype":%d,"geo":{"country":%q}},"user":{"id":"user-%d"}}`,
		i, imp, inv, i%250, 1+i%7, country, (i*7919)%100_000)
}
