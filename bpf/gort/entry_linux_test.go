//go:build linux && amd64

package gort

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEntryOffset(t *testing.T) {
	pad := func(b ...byte) []byte {
		return append(b, make([]byte, 32)...)
	}
	tests := []struct {
		name string
		code []byte
		want uint64
	}{
		{"stack check: probe the JBE", pad(0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0xe5, 0x01, 0x00, 0x00), 4},
		{"big frame: LEA R12, CMP R12, JBE", pad(0x4c, 0x8d, 0x64, 0x24, 0xf8, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x10, 0x00, 0x00, 0x00), 9},
		{"short JBE", pad(0x49, 0x3b, 0x66, 0x10, 0x76, 0x20), 4},
		{"no stack check (NOSPLIT): entry", pad(0x55, 0x48, 0x89, 0xe5), 0},
		{"CMP against another base: entry", pad(0x48, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0, 0, 0, 0), 0},
		{"CMP not followed by JBE: entry", pad(0x49, 0x3b, 0x66, 0x10, 0x90), 0},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i)))
			code := append([]byte{0xcc, 0xcc, 0xcc}, tc.code...)
			if err := os.WriteFile(path, code, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := entryOffset(path, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("entryOffset = %d, want %d", got, tc.want)
			}
		})
	}
	if _, err := entryOffset(filepath.Join(dir, "missing"), 0); err == nil {
		t.Error("want an error for a missing file")
	}
}
