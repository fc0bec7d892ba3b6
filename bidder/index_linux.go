//go:build linux

package bidder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Index is a read-only memory mapping of an index file. The mapping is
// MAP_SHARED of the file itself, so it shows up in /proc/PID/maps under the
// file's absolute path (which is how `bidder chaos pageout` finds it), and it
// is advised MADV_RANDOM: requests read single random pages, and no
// read-ahead means every evicted page re-touched is its own major fault.
type Index struct {
	path        string
	data        []byte
	campaigns   []Campaign
	dataOff     int64
	regionPages int64
	locked      bool
}

// OpenIndex maps the index file at path and validates its header and
// campaign table.
func OpenIndex(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open index: %w (build it first: bidder index build --out %s --size 1GiB)", err, path)
		}
		return nil, fmt.Errorf("open index: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if st.Size() < PageSize {
		return nil, fmt.Errorf("open index %s: file is %d bytes, smaller than the %d-byte header", path, st.Size(), PageSize)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap index %s: %w", path, err)
	}
	ix := &Index{path: path, data: data}
	if err := ix.parse(st.Size()); err != nil {
		unix.Munmap(data)
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if err := unix.Madvise(data, unix.MADV_RANDOM); err != nil {
		unix.Munmap(data)
		return nil, fmt.Errorf("madvise(MADV_RANDOM) index %s: %w", path, err)
	}
	return ix, nil
}

func (ix *Index) parse(size int64) error {
	h := ix.data[:PageSize]
	le := binary.LittleEndian
	if string(h[hdrMagic:hdrMagic+8]) != IndexMagic {
		return fmt.Errorf("header: magic %q, want %q (not a bidder index)", h[hdrMagic:hdrMagic+8], IndexMagic)
	}
	if got, want := crc32.Checksum(h[:hdrCRC], crcTable), le.Uint32(h[hdrCRC:]); got != want {
		return fmt.Errorf("header: checksum %08x, want %08x", got, want)
	}
	if v := le.Uint32(h[hdrVersion:]); v != IndexVersion {
		return fmt.Errorf("header: version %d, this bidder reads version %d", v, IndexVersion)
	}
	if ps, rs := le.Uint32(h[hdrPageSize:]), le.Uint32(h[hdrRecordSize:]); ps != PageSize || rs != RecordSize {
		return fmt.Errorf("header: page/record size %d/%d, want %d/%d", ps, rs, PageSize, RecordSize)
	}
	if s, c := le.Uint32(h[hdrSizes:]), le.Uint32(h[hdrCountries:]); int(s) != len(Sizes) || int(c) != len(Countries) {
		return fmt.Errorf("header: %d sizes × %d countries, want %d × %d", s, c, len(Sizes), len(Countries))
	}
	fileSize := int64(le.Uint64(h[hdrFileSize:]))
	if fileSize != size {
		return fmt.Errorf("header: file size %d, but the file has %d bytes (truncated or appended?)", fileSize, size)
	}
	n := int64(le.Uint32(h[hdrCampaigns:]))
	campOff := int64(le.Uint64(h[hdrCampaignOff:]))
	ix.dataOff = int64(le.Uint64(h[hdrDataOff:]))
	ix.regionPages = int64(le.Uint64(h[hdrRegionPages:]))
	if campOff+n*RecordSize > ix.dataOff || ix.dataOff+ix.regionPages*regions*PageSize != size || ix.regionPages < 1 {
		return fmt.Errorf("header: inconsistent layout (campaigns %d at %d, data at %d, %d pages per region, size %d)",
			n, campOff, ix.dataOff, ix.regionPages, size)
	}
	ix.campaigns = make([]Campaign, n)
	for i := range ix.campaigns {
		off := campOff + int64(i)*RecordSize
		c, err := decodeCampaign(ix.data[off : off+RecordSize])
		if err != nil {
			return fmt.Errorf("campaign %d at offset %d: %w", i, off, err)
		}
		ix.campaigns[i] = c
	}
	return nil
}

// Path returns the file the index maps.
func (ix *Index) Path() string { return ix.path }

// Bytes returns the whole read-only mapping.
func (ix *Index) Bytes() []byte { return ix.data }

// Campaigns returns the campaign table (a copy in Go memory).
func (ix *Index) Campaigns() []Campaign { return ix.campaigns }

// RegionPages returns the number of pages per (size, country) region.
func (ix *Index) RegionPages() int64 { return ix.regionPages }

// Page returns page n (modulo the region size) of a region.
func (ix *Index) Page(region int, n uint64) []byte {
	off := ix.dataOff + (int64(region)*ix.regionPages+int64(n%uint64(ix.regionPages)))*PageSize
	return ix.data[off : off+PageSize]
}

// HotRange is the part of the mapping the request path reads: the creative
// pages. The mlock fix locks exactly this range.
func (ix *Index) HotRange() []byte { return ix.data[ix.dataOff:] }

// Touch reads one byte of every page, faulting the whole mapping in from the
// calling goroutine: the baseline's single loader first-touches the index.
func (ix *Index) Touch() byte {
	var sum byte
	for off := 0; off < len(ix.data); off += PageSize {
		sum += ix.data[off]
	}
	touchSink.Store(uint32(sum)) // keep the loads
	return sum
}

var touchSink atomic.Uint32

// Lock mlocks the hot range, which also faults it in (one sequential pass,
// not the random major faults the request path would take). Locked pages
// cannot be evicted: MADV_PAGEOUT on them fails with EINVAL. An unprivileged
// process can lock only RLIMIT_MEMLOCK bytes, so a too-small limit is
// reported with its value and what to raise.
func (ix *Index) Lock() error {
	hot := ix.HotRange()
	// No pre-check against the limit: a process with CAP_IPC_LOCK (root, or
	// an unprivileged bidder that `bidder launch` left the capability) may
	// lock past it. The kernel checks before populating, so a refusal is
	// immediate.
	if err := unix.Mlock(hot); err != nil {
		var rl unix.Rlimit
		if (errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EAGAIN)) &&
			unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl) == nil {
			return &MemlockLimitError{Need: uint64(len(hot)), Soft: rl.Cur, Hard: rl.Max, Err: err}
		}
		return fmt.Errorf("mlock index %s (%d bytes): %w", ix.path, len(hot), err)
	}
	ix.locked = true
	return nil
}

// Locked reports whether Lock succeeded.
func (ix *Index) Locked() bool { return ix.locked }

// Close unmaps the index.
func (ix *Index) Close() error {
	if ix.data == nil {
		return nil
	}
	err := unix.Munmap(ix.data)
	ix.data = nil
	return err
}

// MemlockLimitError says the mlock fix could not lock the hot index range
// because RLIMIT_MEMLOCK is too small.
type MemlockLimitError struct {
	Need, Soft, Hard uint64
	Err              error
}

func (e *MemlockLimitError) Error() string {
	s := fmt.Sprintf("mlock fix: the hot index range is %d bytes but RLIMIT_MEMLOCK is %d bytes (hard %d); "+
		"raise RLIMIT_MEMLOCK to at least %d for the bidder (prlimit --memlock, ulimit -l, or the deployer's memlock setting) before it drops root",
		e.Need, e.Soft, e.Hard, e.Need)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *MemlockLimitError) Unwrap() error { return e.Err }
