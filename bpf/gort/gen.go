package gort

// The BPF object and its Go bindings are committed, so `go build` needs no
// clang. Regenerate with Debian's clang 14 (CI checks the output is current):
//
//	go generate ./bpf/...
//
// vmlinux.h is the parent package's (-I..); compiler and strip tool are
// pinned by name so the output is byte-for-byte reproducible.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -cc clang-14 -strip llvm-strip-14 -target amd64 -type gevent gort gort.bpf.c -- -I.. -Wall -Werror
