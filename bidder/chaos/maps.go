package chaos

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mapping is one entry of /proc/PID/smaps (or maps, without the sizes).
type Mapping struct {
	Start, End uint64
	Perms      string // e.g. "r--s"
	Offset     uint64
	Inode      uint64
	Path       string // "" for anonymous mappings
	RssBytes   int64  // resident bytes; -1 when read from maps
	LockedKB   int64  // mlocked kB; -1 when read from maps
}

// Len is the mapping's length in bytes.
func (m Mapping) Len() uint64 { return m.End - m.Start }

// Shared reports a MAP_SHARED mapping.
func (m Mapping) Shared() bool { return len(m.Perms) == 4 && m.Perms[3] == 's' }

// FileBacked reports a mapping of a regular file (not anonymous, not a
// pseudo path such as [heap], not a deleted or memfd file).
func (m Mapping) FileBacked() bool {
	return m.Inode != 0 && strings.HasPrefix(m.Path, "/") &&
		!strings.HasPrefix(m.Path, "/dev/") && !strings.HasSuffix(m.Path, " (deleted)")
}

// ParseMaps parses the text of /proc/PID/maps or /proc/PID/smaps. name is
// used in errors ("name:line: ...").
func ParseMaps(name string, r io.Reader) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			continue
		}
		if key, val, ok := smapsField(text); ok {
			if len(out) == 0 {
				return nil, fmt.Errorf("%s:%d: field %q before any mapping", name, line, key)
			}
			cur := &out[len(out)-1]
			switch key {
			case "Rss", "Locked":
				kb, err := parseKB(val)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %s: %w", name, line, key, err)
				}
				if key == "Rss" {
					cur.RssBytes = kb * 1024
				} else {
					cur.LockedKB = kb
				}
			}
			continue
		}
		m, err := parseMapLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// smapsField recognises "Key:   value" lines; mapping lines start with a hex
// range and never have a colon right after the first word.
func smapsField(s string) (key, val string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.IndexByte(s[:i], ' ') >= 0 || strings.IndexByte(s[:i], '-') >= 0 {
		return "", "", false
	}
	return s[:i], strings.TrimSpace(s[i+1:]), true
}

func parseKB(v string) (int64, error) {
	v = strings.TrimSpace(strings.TrimSuffix(v, "kB"))
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q is not a number of kB", v)
	}
	return n, nil
}

// parseMapLine parses "start-end perms offset dev inode [path]".
func parseMapLine(s string) (Mapping, error) {
	m := Mapping{RssBytes: -1, LockedKB: -1}
	fields := strings.Fields(s)
	if len(fields) < 5 {
		return m, fmt.Errorf("mapping line %q: want at least 5 fields", s)
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return m, fmt.Errorf("address range %q: want start-end", fields[0])
	}
	var err error
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, fmt.Errorf("address range %q: start: %w", fields[0], err)
	}
	if m.End, err = strconv.ParseUint(hi, 16, 64); err != nil {
		return m, fmt.Errorf("address range %q: end: %w", fields[0], err)
	}
	if m.End < m.Start {
		return m, fmt.Errorf("address range %q: end before start", fields[0])
	}
	if len(fields[1]) != 4 {
		return m, fmt.Errorf("perms %q: want 4 characters", fields[1])
	}
	m.Perms = fields[1]
	if m.Offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
		return m, fmt.Errorf("offset %q: %w", fields[2], err)
	}
	if m.Inode, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return m, fmt.Errorf("inode %q: %w", fields[4], err)
	}
	if len(fields) > 5 {
		// The path is the rest of the line after the inode; it may contain
		// spaces, so take it from the raw line rather than from fields.
		idx := 0
		for k := 0; k < 5; k++ {
			idx += strings.Index(s[idx:], fields[k]) + len(fields[k])
		}
		m.Path = strings.TrimSpace(s[idx:])
	}
	return m, nil
}

// Select returns the mappings pageout targets. With a non-empty substr, the
// file-backed mappings whose path contains it. With an empty substr, the
// largest MAP_SHARED file-backed mapping and every other piece of the same
// file: that is the bidder's index (the binary and libraries are mapped
// private), so the default needs no knowledge of where the index lives.
func Select(maps []Mapping, substr string) []Mapping {
	var out []Mapping
	if substr != "" {
		for _, m := range maps {
			if m.FileBacked() && strings.Contains(m.Path, substr) {
				out = append(out, m)
			}
		}
		return out
	}
	best := -1
	for i, m := range maps {
		if m.FileBacked() && m.Shared() && (best < 0 || m.Len() > maps[best].Len()) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	for _, m := range maps {
		if m.FileBacked() && m.Shared() && m.Path == maps[best].Path && m.Inode == maps[best].Inode {
			out = append(out, m)
		}
	}
	return out
}
