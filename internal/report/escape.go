package report

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameRunes caps an untrusted name (symbol, branch, fix) in the
// markdown artifacts; longer names are cut with an ellipsis so one C++
// template or hostile branch cannot eat the comment budget.
const MaxNameRunes = 160

// md escapes an untrusted string (a symbol, branch, repository or file name)
// for GitHub-flavoured markdown, in running text and in table cells, and
// cuts it to MaxNameRunes. mdText does the same without the cut.
func md(s string) string { return escapeMD(s, MaxNameRunes) }

// mdText escapes a longer text (a reason, a note) like md, uncut.
func mdText(s string) string { return escapeMD(s, -1) }

// quiet is ASCII punctuation that cannot start markdown or HTML in the
// middle of a line, so it stays readable; the cases where it can (a list
// marker at the start, "www.", "http://") are escaped below.
const quiet = ",.:;%?'\"/()-+="

// escapeMD makes s inert in GitHub-flavoured markdown:
//
//   - every other ASCII punctuation character is backslash-escaped
//     (CommonMark allows it for all of them), so no emphasis, link, image,
//     code span, HTML tag, entity, table pipe or math can start;
//   - a leading '-', '+' or "1." / "1)" is escaped (no list item), as are
//     the '.' of "www." and the ':' of "://" (no autolink);
//   - '@' is followed by a zero-width space, so no one is mentioned;
//   - line breaks, tabs and other control or format characters become a
//     space (no new block can start, no bidi override can reorder text);
//   - invalid UTF-8 becomes U+FFFD.
func escapeMD(s string, maxRunes int) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	n := 0
	digits := true // only digits so far
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		at := i
		i += size
		if n == maxRunes {
			b.WriteString("…")
			break
		}
		n++
		lead := digits
		if r < '0' || r > '9' {
			digits = false
		}
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(unicode.ReplacementChar)
		case r == '@':
			b.WriteString("@\u200b")
		case r < utf8.RuneSelf && strings.ContainsRune(quiet, r):
			esc := false
			switch r {
			case '-', '+':
				esc = at == 0
			case '.', ')':
				esc = lead && at > 0 || at >= 3 && strings.EqualFold(s[at-3:at], "www")
			case ':':
				esc = strings.HasPrefix(s[i:], "/")
			}
			if esc {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		case r < utf8.RuneSelf && (unicode.IsPunct(r) || unicode.IsSymbol(r)):
			b.WriteByte('\\')
			b.WriteRune(r)
		case unicode.IsControl(r) || unicode.In(r, unicode.Cf) || r == '\u2028' || r == '\u2029':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode puts an untrusted string in a code span when it is safe to (no
// backtick, no line break, no pipe that would split a table cell),
// otherwise it falls back to md. Code spans keep symbols readable.
func mdCode(s string) string {
	if s == "" {
		return ""
	}
	if utf8.RuneCountInString(s) > MaxNameRunes || strings.ContainsAny(s, "`|\\\r\n") || !utf8.ValidString(s) {
		return md(s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) || r == '\u2028' || r == '\u2029' {
			return md(s)
		}
	}
	return "`" + s + "`"
}
