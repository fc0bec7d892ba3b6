// Package flame owns tailgate's stack-profile artefacts: folded stacks in
// Brendan Gregg's format (parsing, deterministic writing, aggregation and
// normalization), a self-contained SVG flame-graph renderer (hover titles,
// click-to-zoom, search), differential flame graphs with their per-frame and
// per-function deltas, and export to the pprof protobuf format.
//
// The package works on plain data: a Profile is a map from a folded stack
// ("root;child;leaf") to a value. It knows nothing about how the stacks were
// collected, so the BPF collectors, the tail analysis and the tests all feed
// it the same way.
package flame
