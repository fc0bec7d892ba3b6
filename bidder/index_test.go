package bidder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rt.idx")
	opts := IndexOptions{Size: 4 << 20, Campaigns: 300, Seed: 42}
	if err := BuildIndex(path, opts); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	st, _ := os.Stat(path)
	if int64(len(ix.Bytes())) != st.Size() {
		t.Fatalf("mapping is %d bytes, file %d", len(ix.Bytes()), st.Size())
	}
	if got := len(ix.Campaigns()); got != opts.Campaigns {
		t.Fatalf("campaigns = %d, want %d", got, opts.Campaigns)
	}
	for i, c := range ix.Campaigns() {
		if c.ID != uint32(i) || c.DailyBudgetUSDm == 0 || c.BaseCPMm == 0 {
			t.Fatalf("campaign %d = %+v", i, c)
		}
	}
	// Every record of every region verifies, and regions hold their size.
	var cr Creative
	for r := 0; r < regions; r++ {
		size, country := Sizes[r/len(Countries)], Countries[r%len(Countries)]
		for p := uint64(0); p < uint64(ix.RegionPages()); p++ {
			page := ix.Page(r, p)
			for off := 0; off < PageSize; off += RecordSize {
				rec := page[off : off+RecordSize]
				if !VerifyRecord(rec) {
					t.Fatalf("region %d page %d record %d: bad checksum", r, p, off/RecordSize)
				}
				decodeCreative(rec, &cr)
				if int64(cr.W) != size.W || int64(cr.H) != size.H || (cr.Flags&1 == 1) != size.Video {
					t.Fatalf("region %d: creative %+v, want size %+v", r, cr, size)
				}
				if c := string(cr.Country[:]); c != country && c != anyCountry {
					t.Fatalf("region %d: creative country %q, want %q or %q", r, c, country, anyCountry)
				}
				if int(cr.Campaign) >= opts.Campaigns {
					t.Fatalf("creative campaign %d out of range", cr.Campaign)
				}
			}
		}
	}
	// Same options, same bytes.
	path2 := filepath.Join(t.TempDir(), "rt2.idx")
	if err := BuildIndex(path2, opts); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(path2)
	if string(a) != string(b) {
		t.Fatal("BuildIndex is not deterministic")
	}
}

func TestOpenIndexErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.idx")
	if err := BuildIndex(good, IndexOptions{Size: 1 << 20, Campaigns: 10}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badMagic := append([]byte("NOTANIDX"), data[8:]...)
	badCRC := append([]byte(nil), data...)
	badCRC[hdrSeed] ^= 1
	badCamp := append([]byte(nil), data...)
	badCamp[PageSize+3] ^= 0xff
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.idx"), "bidder index build"},
		{"tiny", write("tiny.idx", []byte("x")), "smaller than"},
		{"magic", write("magic.idx", badMagic), "not a bidder index"},
		{"header checksum", write("crc.idx", badCRC), "header: checksum"},
		{"truncated", write("trunc.idx", data[:len(data)-PageSize]), "truncated"},
		{"campaign checksum", write("camp.idx", badCamp), "campaign 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := OpenIndex(tt.path)
			if err == nil {
				ix.Close()
				t.Fatal("OpenIndex succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestBuildIndexTooSmall(t *testing.T) {
	err := BuildIndex(filepath.Join(t.TempDir(), "s.idx"), IndexOptions{Size: 64 << 10, Campaigns: 10})
	if err == nil || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("err = %v, want too small", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"1GiB", 1 << 30, false}, {"16MiB", 16 << 20, false}, {"16M", 16 << 20, false},
		{"512mib", 512 << 20, false}, {"1.5GiB", 3 << 29, false}, {"4096", 4096, false},
		{"2GB", 2e9, false}, {"10KiB", 10 << 10, false},
		{"", 0, true}, {"abc", 0, true}, {"-1MiB", 0, true}, {"1XiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}
