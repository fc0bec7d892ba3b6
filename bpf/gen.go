package bpf

// The BPF object and its Go bindings are committed, so `go build` needs no
// clang. Regenerate with Debian's clang 14 (CI checks the output is current):
//
//	go generate ./bpf/...
//
// Compiler and strip tool are pinned by name so that the output is
// byte-for-byte reproducible on Debian 12 (clang 14.0.6).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -cc clang-14 -strip llvm-strip-14 -target amd64 -type event collectors collectors.bpf.c -- -I. -Wall -Werror
