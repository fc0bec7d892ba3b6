package chaos

import (
	"os"
	"strings"
	"testing"
)

func TestParseMapsSmaps(t *testing.T) {
	f, err := os.Open("testdata/smaps.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maps, err := ParseMaps("testdata/smaps.txt", f)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 6 {
		t.Fatalf("got %d mappings, want 6", len(maps))
	}
	ix := maps[2]
	if ix.Path != "/var/lib/tailgate/work dir/index.bin" || !ix.Shared() || !ix.FileBacked() ||
		ix.Len() != 1<<30 || ix.RssBytes != 512<<20 || ix.Inode != 99 {
		t.Fatalf("index mapping parsed as %+v", ix)
	}
	if maps[1].Path != "" || maps[1].FileBacked() {
		t.Fatalf("anonymous mapping parsed as %+v", maps[1])
	}
	if maps[3].LockedKB != 1024 {
		t.Fatalf("Locked of small.bin = %d kB, want 1024", maps[3].LockedKB)
	}
	if maps[4].FileBacked() {
		t.Fatalf("deleted file counted as file-backed: %+v", maps[4])
	}
	if maps[5].Path != "[stack]" || maps[5].FileBacked() {
		t.Fatalf("stack parsed as %+v", maps[5])
	}
}

func TestSelect(t *testing.T) {
	f, err := os.Open("testdata/smaps.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maps, err := ParseMaps("smaps", f)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		substr string
		want   []string
	}{
		{"", []string{"/var/lib/tailgate/work dir/index.bin"}}, // largest shared file mapping
		{"small.bin", []string{"/var/lib/tailgate/small.bin"}},
		{"/var/lib/tailgate/", []string{"/var/lib/tailgate/work dir/index.bin", "/var/lib/tailgate/small.bin"}},
		{"bidder", []string{"/opt/bidder/bin/bidder"}},
		{"old.bin", nil}, // deleted files are not selected
		{"[stack]", nil}, // pseudo paths are not files
		{"nothing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.substr, func(t *testing.T) {
			var got []string
			for _, m := range Select(maps, tt.substr) {
				got = append(got, m.Path)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("Select(%q) = %q, want %q", tt.substr, got, tt.want)
			}
		})
	}
}

func TestParseMapsErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"field first", "Rss: 4 kB\n", "m:1: field \"Rss\" before any mapping"},
		{"bad range", "zz-10 r--p 0 fe:00 1 /x\n", "m:1: address range"},
		{"end before start", "20-10 r--p 0 fe:00 1 /x\n", "end before start"},
		{"bad perms", "10-20 r--px 0 fe:00 1 /x\n", "perms"},
		{"short", "10-20 r--p 0\n", "at least 5 fields"},
		{"bad rss", "10-20 r--p 0 fe:00 1 /x\nRss: lots kB\n", "m:2: Rss"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMaps("m", strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseMaps error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
