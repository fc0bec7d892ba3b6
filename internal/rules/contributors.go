package rules

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ContributorNames are the tail contributors tailgate attributes, in their
// canonical order (the same set a fix may target: FixContributors).
var ContributorNames = []string{"gc", "lock", "pagefault", "numa", "sched", "io", "cpu", "other"}

// ComponentNames are the components of a request's time that internal/tail
// splits each request into (tail.Component.String); a contributor owns
// some of them.
var ComponentNames = []string{"on-cpu", "runnable", "gc-stw", "gc-assist", "lock-wait", "page-fault", "io", "off-cpu-other", "unattributed"}

// EventKindNames are the event kinds a contributor may match: the kernel
// collectors' (bpf.Kind.String) and the Go-runtime collectors'
// (gort.Kind.String).
var EventKindNames = []string{
	"offcpu", "runq", "futex", "pagefault", "numa", "blockio", "oncpu", // bpf
	"gc", "stw", "assist", "block", "request", "run", // bpf/gort
}

// Contributor is one entry of the perf-rules `contributors` section: how
// a piece of evidence (an event charged to a request) and a component's
// time are classified into a tail contributor.
//
// Evidence goes to the first contributor, in file order, whose matchers
// all hold: Kinds (the event kind is one of them), WaitReasons (a Go wait
// reason matches one regexp), Frames (a symbolized frame of its stack
// matches one regexp), Components (the component the join charged it to
// is one of them), and MinDuration (its overlap with the request is at
// least this long). An absent matcher holds for everything, but a
// contributor with no Kinds, WaitReasons or Frames matches no evidence: it
// only owns its Components. A component's time that no matched evidence
// explains goes to the first contributor listing the component in Owns,
// else to "other".
type Contributor struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Owns are the components whose unexplained time this contributor
	// takes (ComponentNames).
	Owns []string `yaml:"owns"`
	// Kinds, WaitReasons, Frames, Components and MinDuration match
	// evidence (see the type's comment).
	Kinds       []string      `yaml:"kinds"`
	WaitReasons []Regexp      `yaml:"wait_reasons"`
	Frames      []Regexp      `yaml:"frames"`
	Components  []string      `yaml:"components"`
	MinDuration time.Duration `yaml:"min_duration"`
}

// Regexp is a regular expression (RE2 syntax) in perf-rules, compiled at
// parse time so a bad one is a file:line error.
type Regexp struct {
	*regexp.Regexp
}

func (r *Regexp) decodeScalar(s string) error {
	if s == "" {
		return fmt.Errorf("empty regexp")
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return fmt.Errorf("bad regexp %q: %v", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	r.Regexp = re
	return nil
}

// MustRegexp compiles s or panics; for defaults and tests.
func MustRegexp(s string) Regexp { return Regexp{regexp.MustCompile(s)} }

// Contributors is the `contributors` section. Absent, it is
// DefaultContributors (see Rules.ContributorRules).
type Contributors []Contributor

func (cs *Contributors) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "want a list of contributors, got %s", kindName(n))
		return
	}
	out := make([]Contributor, len(n.Content))
	seen := map[string]bool{}
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.decodeStruct(c, reflect.ValueOf(&out[i]).Elem(), p)
		if name := out[i].Name; name != "" {
			if seen[name] {
				d.errorf(lineOf(c, "name"), join(p, "name"), "duplicate contributor %q", name)
			}
			seen[name] = true
		}
	}
	*cs = out
}

func inList(s string, l []string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Contributor) validate(d *decoder, n *yaml.Node, path string) {
	switch {
	case !has(n, "name"):
		d.errorf(n, join(path, "name"), "missing (one of %s)", strings.Join(ContributorNames, ", "))
	case !inList(c.Name, ContributorNames):
		d.errorf(lineOf(n, "name"), join(path, "name"), "unknown contributor %q (want one of %s)", c.Name, strings.Join(ContributorNames, ", "))
	}
	check := func(key string, vals, known []string, what string) {
		for i, v := range vals {
			if !inList(v, known) {
				node := lineOf(n, key)
				if node != nil && node.Kind == yaml.SequenceNode && i < len(node.Content) {
					node = node.Content[i]
				}
				d.errorf(node, fmt.Sprintf("%s[%d]", join(path, key), i), "unknown %s %q (want one of %s)", what, v, strings.Join(known, ", "))
			}
		}
	}
	check("owns", c.Owns, ComponentNames, "component")
	check("components", c.Components, ComponentNames, "component")
	check("kinds", c.Kinds, EventKindNames, "event kind")
	if len(c.Owns) == 0 && len(c.Kinds) == 0 && len(c.WaitReasons) == 0 && len(c.Frames) == 0 {
		d.errorf(n, path, "contributor %q matches nothing: give owns, kinds, wait_reasons or frames", c.Name)
	}
}

// MatchesEvidence reports whether evidence of event kind kind, Go wait
// reason reason (or ""), charged to component comp with overlap d and
// symbolized frames, belongs to c. frames is called at most once, only
// when c has Frames matchers (symbolization is the costly part).
func (c *Contributor) MatchesEvidence(kind, reason, comp string, d time.Duration, frames func() []string) bool {
	if len(c.Kinds) == 0 && len(c.WaitReasons) == 0 && len(c.Frames) == 0 {
		return false
	}
	if len(c.Kinds) > 0 && !inList(kind, c.Kinds) {
		return false
	}
	if len(c.Components) > 0 && !inList(comp, c.Components) {
		return false
	}
	if d < c.MinDuration {
		return false
	}
	if len(c.WaitReasons) > 0 {
		ok := false
		for _, re := range c.WaitReasons {
			ok = ok || re.MatchString(reason)
		}
		if !ok {
			return false
		}
	}
	if len(c.Frames) > 0 {
		ok := false
		for _, f := range frames() {
			for _, re := range c.Frames {
				if re.MatchString(f) {
					ok = true
					break
				}
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// DefaultContributors returns the classification used when a rules file
// has no contributors section; perf-rules/bidder.yaml writes the same
// rules out.
func DefaultContributors() Contributors {
	re := MustRegexp
	return Contributors{
		{Name: "gc", Description: "garbage collection: stop-the-world pauses, mark assists, off-CPU time inside the collector",
			Owns: []string{"gc-stw", "gc-assist"}, Kinds: []string{"offcpu", "block", "pagefault"},
			Frames: []Regexp{re(`^runtime\.(gcStart|gcBgMarkWorker|gcDrain.*|gcAssistAlloc.*|gcMarkDone|markroot.*|stopTheWorld.*)$`)}},
		{Name: "lock", Description: "sync.Mutex / RWMutex waits",
			Owns: []string{"lock-wait"}, Kinds: []string{"block"}, WaitReasons: []Regexp{re(`^Sync(RW)?Mutex`)}},
		{Name: "pagefault", Description: "page faults (major faults on the paged-out index), and the off-CPU time and block I/O inside the fault handler",
			Owns: []string{"page-fault"}, Kinds: []string{"offcpu", "blockio"},
			Frames: []Regexp{re(`^(asm_exc_page_fault|exc_page_fault|handle_mm_fault|__handle_mm_fault|filemap_fault)_\[k\]$`)}},
		{Name: "numa", Description: "placement and scheduling: waiting for a CPU (kernel run queue, Go run queue); cross-node migrations",
			Owns: []string{"runnable"}},
		{Name: "sched", Description: "Go scheduler preemption",
			Kinds: []string{"block"}, WaitReasons: []Regexp{re(`^Preempted$`)}},
		{Name: "io", Description: "network poller and block I/O",
			Owns: []string{"io"}},
		{Name: "cpu", Description: "the request's own on-CPU work",
			Owns: []string{"on-cpu"}},
		{Name: "other", Description: "channels, select, sleeps, other off-CPU time, non-GC stop-the-world, unattributed client time",
			Owns: []string{"off-cpu-other", "unattributed"}},
	}
}

// ContributorRules returns the rules' contributors, or DefaultContributors
// when the file has none.
func (r *Rules) ContributorRules() Contributors {
	if r == nil || len(r.Contributors) == 0 {
		return DefaultContributors()
	}
	return r.Contributors
}
