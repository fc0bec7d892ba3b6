package bidder

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// Index file layout (little endian, version 1):
//
//	page 0              header (see the hdr* offsets)
//	campaignOff ...     Campaigns × 64-byte campaign records
//	dataOff ...         regions × regionPages pages of 64 creative records each
//
// A region holds the creatives of one (ad size, country) pair; creatives whose
// country is "***" are not geo-targeted. A request reads random pages of the
// regions its impressions map to, which is what makes the mapping's page
// residency matter on the request path. Every record ends with a CRC-32C of
// its first 60 bytes, so reads through the mapping can be verified.
const (
	IndexMagic   = "TGBIDX01"
	IndexVersion = 1
	PageSize     = 4096
	RecordSize   = 64
	recsPerPage  = PageSize / RecordSize

	// DefaultIndexSize is the size `bidder index build` writes by default.
	DefaultIndexSize = 1 << 30
	// DefaultCampaigns is the number of campaigns in a default index.
	DefaultCampaigns = 100_000
	// MinIndexSize is the smallest index that still has one page per region.
	MinIndexSize = PageSize * (1 + regions) // plus campaign pages
)

const (
	hdrMagic       = 0
	hdrVersion     = 8
	hdrPageSize    = 12
	hdrRecordSize  = 16
	hdrCampaigns   = 20
	hdrSizes       = 24
	hdrCountries   = 28
	hdrCampaignOff = 32
	hdrDataOff     = 40
	hdrRegionPages = 48
	hdrFileSize    = 56
	hdrSeed        = 64
	hdrCRC         = 72
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// AdSize is one of the standard creative sizes the index is partitioned by.
type AdSize struct {
	W, H  int64
	Video bool
}

// Sizes are the standard ad sizes; a region exists per size and country.
var Sizes = []AdSize{
	{300, 250, false}, {728, 90, false}, {320, 50, false}, {160, 600, false},
	{300, 600, false}, {970, 250, false}, {640, 360, true}, {1280, 720, true},
}

// Countries are the ISO 3166-1 alpha-3 codes (as OpenRTB geo.country uses)
// the index is partitioned by.
var Countries = []string{
	"USA", "GBR", "DEU", "FRA", "JPN", "BRA", "IND", "CAN",
	"AUS", "ESP", "ITA", "NLD", "MEX", "KOR", "SWE", "POL",
}

const regions = 8 * 16 // len(Sizes) * len(Countries)

// anyCountry marks a creative that is not geo-targeted.
const anyCountry = "***"

// Campaign is one campaign record of the index: budget, frequency cap and the
// advertiser. Budgets are in micro-units of the currency (1e-6 USD).
type Campaign struct {
	ID              uint32
	FreqCap         uint16 // max impressions per user per FreqWindowSec; 0 = uncapped
	FreqWindowSec   uint32
	Advertiser      uint32
	DailyBudgetUSDm uint64 // micro-USD per day
	BaseCPMm        uint32 // micro-USD per mille
}

// Creative is one creative record of the index.
type Creative struct {
	Campaign   uint32
	ID         uint32
	W, H       uint16
	Country    [3]byte // "***" = any
	DeviceMask uint8   // bit n set = adcom1 device type n allowed; 0 = any
	Segments   [4]uint32
	CPMm       uint32 // micro-USD per mille, before user value
	ADomain    uint32
	Flags      uint32 // bit 0: video
}

// IndexOptions configures BuildIndex. The zero value builds the default index.
type IndexOptions struct {
	Size      int64  // file size in bytes, rounded down to whole pages; 0 = DefaultIndexSize
	Campaigns int    // 0 = DefaultCampaigns
	Seed      uint64 // generator seed; the same options give the same file
}

func (o IndexOptions) withDefaults() IndexOptions {
	if o.Size == 0 {
		o.Size = DefaultIndexSize
	}
	if o.Campaigns == 0 {
		o.Campaigns = DefaultCampaigns
	}
	return o
}

// layout computes the offsets of an index of the given options.
func (o IndexOptions) layout() (campaignOff, dataOff, regionPages int64, err error) {
	if o.Size < 0 || o.Campaigns < 0 {
		return 0, 0, 0, errors.New("size and campaigns must not be negative")
	}
	campaignOff = PageSize
	campPages := (int64(o.Campaigns)*RecordSize + PageSize - 1) / PageSize
	dataOff = campaignOff + campPages*PageSize
	regionPages = (o.Size - dataOff) / PageSize / regions
	if regionPages < 1 {
		return 0, 0, 0, fmt.Errorf("size %d bytes is too small for %d campaigns: need at least %d bytes",
			o.Size, o.Campaigns, dataOff+regions*PageSize)
	}
	return campaignOff, dataOff, regionPages, nil
}

// BuildIndex writes a deterministic campaign/creative index file to path.
func BuildIndex(path string, opts IndexOptions) (err error) {
	opts = opts.withDefaults()
	campaignOff, dataOff, regionPages, err := opts.layout()
	if err != nil {
		return fmt.Errorf("build index %s: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("build index: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("build index %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	total := dataOff + regionPages*regions*PageSize

	var page [PageSize]byte
	copy(page[hdrMagic:], IndexMagic)
	le := binary.LittleEndian
	le.PutUint32(page[hdrVersion:], IndexVersion)
	le.PutUint32(page[hdrPageSize:], PageSize)
	le.PutUint32(page[hdrRecordSize:], RecordSize)
	le.PutUint32(page[hdrCampaigns:], uint32(opts.Campaigns))
	le.PutUint32(page[hdrSizes:], uint32(len(Sizes)))
	le.PutUint32(page[hdrCountries:], uint32(len(Countries)))
	le.PutUint64(page[hdrCampaignOff:], uint64(campaignOff))
	le.PutUint64(page[hdrDataOff:], uint64(dataOff))
	le.PutUint64(page[hdrRegionPages:], uint64(regionPages))
	le.PutUint64(page[hdrFileSize:], uint64(total))
	le.PutUint64(page[hdrSeed:], opts.Seed)
	le.PutUint32(page[hdrCRC:], crc32.Checksum(page[:hdrCRC], crcTable))
	if _, err := w.Write(page[:]); err != nil {
		return fmt.Errorf("build index %s: %w", path, err)
	}

	rng := rand.New(rand.NewPCG(opts.Seed, 0x7461696c67617465))
	camps := make([]Campaign, opts.Campaigns)
	for i := range camps {
		c := Campaign{
			ID:              uint32(i),
			Advertiser:      uint32(rng.IntN(5000)),
			DailyBudgetUSDm: uint64(50+rng.IntN(5000)) * 1_000_000,
			BaseCPMm:        uint32(200_000 + rng.IntN(4_800_000)),
		}
		if rng.IntN(3) > 0 { // two thirds of campaigns are frequency-capped
			c.FreqCap = uint16(1 + rng.IntN(10))
			c.FreqWindowSec = uint32(60 * (1 + rng.IntN(60)))
		}
		camps[i] = c
	}
	var rec [RecordSize]byte
	for _, c := range camps {
		encodeCampaign(rec[:], c)
		if _, err := w.Write(rec[:]); err != nil {
			return fmt.Errorf("build index %s: %w", path, err)
		}
	}
	if pad := int(dataOff - campaignOff - int64(len(camps))*RecordSize); pad > 0 {
		if _, err := w.Write(make([]byte, pad)); err != nil {
			return fmt.Errorf("build index %s: %w", path, err)
		}
	}

	var nextID uint32
	for r := 0; r < regions; r++ {
		size, country := Sizes[r/len(Countries)], Countries[r%len(Countries)]
		for p := int64(0); p < regionPages; p++ {
			for i := 0; i < recsPerPage; i++ {
				cr := Creative{
					Campaign: uint32(rng.IntN(max(opts.Campaigns, 1))),
					ID:       nextID,
					W:        uint16(size.W),
					H:        uint16(size.H),
					CPMm:     uint32(100_000 + rng.IntN(9_900_000)),
					ADomain:  uint32(rng.IntN(20_000)),
				}
				nextID++
				if size.Video {
					cr.Flags |= 1
				}
				if rng.IntN(10) < 3 {
					copy(cr.Country[:], anyCountry)
				} else {
					copy(cr.Country[:], country)
				}
				if rng.IntN(2) == 0 { // half target device types
					cr.DeviceMask = uint8(1 + rng.IntN(255))
				}
				if rng.IntN(2) == 0 { // half target audience segments
					for s := range 1 + rng.IntN(4) {
						cr.Segments[s] = uint32(1 + rng.IntN(NumSegments))
					}
				}
				encodeCreative(page[i*RecordSize:(i+1)*RecordSize], cr)
			}
			if _, err := w.Write(page[:]); err != nil {
				return fmt.Errorf("build index %s: %w", path, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("build index %s: %w", path, err)
	}
	// Written back, the pages are clean: a neighbour's MADV_PAGEOUT can then
	// drop them at once, and the next touch is a major fault.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("build index %s: sync: %w", path, err)
	}
	return nil
}

func encodeCampaign(b []byte, c Campaign) {
	clear(b[:RecordSize])
	le := binary.LittleEndian
	le.PutUint32(b[0:], c.ID)
	le.PutUint16(b[4:], c.FreqCap)
	le.PutUint32(b[8:], c.FreqWindowSec)
	le.PutUint32(b[12:], c.Advertiser)
	le.PutUint64(b[16:], c.DailyBudgetUSDm)
	le.PutUint32(b[24:], c.BaseCPMm)
	le.PutUint32(b[60:], crc32.Checksum(b[:60], crcTable))
}

func decodeCampaign(b []byte) (Campaign, error) {
	le := binary.LittleEndian
	if got, want := crc32.Checksum(b[:60], crcTable), le.Uint32(b[60:]); got != want {
		return Campaign{}, fmt.Errorf("campaign record checksum %08x, want %08x", got, want)
	}
	return Campaign{
		ID:              le.Uint32(b[0:]),
		FreqCap:         le.Uint16(b[4:]),
		FreqWindowSec:   le.Uint32(b[8:]),
		Advertiser:      le.Uint32(b[12:]),
		DailyBudgetUSDm: le.Uint64(b[16:]),
		BaseCPMm:        le.Uint32(b[24:]),
	}, nil
}

func encodeCreative(b []byte, c Creative) {
	clear(b[:RecordSize])
	le := binary.LittleEndian
	le.PutUint32(b[0:], c.Campaign)
	le.PutUint32(b[4:], c.ID)
	le.PutUint16(b[8:], c.W)
	le.PutUint16(b[10:], c.H)
	copy(b[12:15], c.Country[:])
	b[15] = c.DeviceMask
	for i, s := range c.Segments {
		le.PutUint32(b[16+4*i:], s)
	}
	le.PutUint32(b[32:], c.CPMm)
	le.PutUint32(b[36:], c.ADomain)
	le.PutUint32(b[40:], c.Flags)
	le.PutUint32(b[60:], crc32.Checksum(b[:60], crcTable))
}

// decodeCreative reads a creative record without verifying its checksum (the
// request path); VerifyRecord checks it.
func decodeCreative(b []byte, c *Creative) {
	le := binary.LittleEndian
	_ = b[63]
	c.Campaign = le.Uint32(b[0:])
	c.ID = le.Uint32(b[4:])
	c.W = le.Uint16(b[8:])
	c.H = le.Uint16(b[10:])
	copy(c.Country[:], b[12:15])
	c.DeviceMask = b[15]
	for i := range c.Segments {
		c.Segments[i] = le.Uint32(b[16+4*i:])
	}
	c.CPMm = le.Uint32(b[32:])
	c.ADomain = le.Uint32(b[36:])
	c.Flags = le.Uint32(b[40:])
}

// VerifyRecord reports whether a 64-byte record's checksum matches.
func VerifyRecord(b []byte) bool {
	return len(b) >= RecordSize &&
		crc32.Checksum(b[:60], crcTable) == binary.LittleEndian.Uint32(b[60:])
}

// ParseSize parses a byte size such as "1GiB", "512MiB", "16M", "4096".
// Binary (KiB, MiB, GiB) and decimal (KB, MB, GB) units are accepted; single
// letters K, M, G are binary.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			mult, t = u.mult, strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<50 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1GiB, 512MiB, 16M or a byte count)", s)
	}
	return int64(n * float64(mult)), nil
}
