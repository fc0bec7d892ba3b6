//go:build !linux

package bidder

import "errors"

// ErrNotSupported is returned where the bidder needs Linux.
var ErrNotSupported = errors.New("bidder: not supported on this platform (needs linux)")

// Index is a memory-mapped index file; mapping needs Linux.
type Index struct{}

// OpenIndex is not supported off Linux.
func OpenIndex(path string) (*Index, error) { return nil, ErrNotSupported }

func (ix *Index) Path() string            { return "" }
func (ix *Index) Bytes() []byte           { return nil }
func (ix *Index) Campaigns() []Campaign   { return nil }
func (ix *Index) RegionPages() int64      { return 0 }
func (ix *Index) Page(int, uint64) []byte { return nil }
func (ix *Index) HotRange() []byte        { return nil }
func (ix *Index) Touch() byte             { return 0 }
func (ix *Index) Lock() error             { return ErrNotSupported }
func (ix *Index) Locked() bool            { return false }
func (ix *Index) Close() error            { return nil }
