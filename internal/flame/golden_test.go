package flame

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./internal/flame -update if the change is intended)\n--- got ---\n%s\n--- want ---\n%s", name, clip(got), clip(want))
	}
}

func clip(b []byte) []byte {
	if len(b) > 3000 {
		return append(b[:3000:3000], "\n..."...)
	}
	return b
}

func mustRead(t *testing.T, name string) *Profile {
	t.Helper()
	p, err := ReadFoldedFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func folded(t *testing.T, p *Profile) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteFolded(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
