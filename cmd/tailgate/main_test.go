package main

import (
	"bytes"
	"context"
	"os"
	"testing"
)

func TestRunUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no args", nil, ExitUsage},
		{"unknown command", []string{"frobnicate"}, ExitUsage},
		{"help", []string{"help"}, ExitPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb, os.Getenv)
			if got := exitCode(err); got != tc.code {
				t.Fatalf("exit code = %d, want %d (err %v)", got, tc.code, err)
			}
			if !bytes.Contains(errb.Bytes(), []byte("usage: tailgate")) {
				t.Fatalf("usage not printed: %q", errb.String())
			}
		})
	}
}
