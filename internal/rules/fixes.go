package rules

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// FixContributors are the contributors a fix may target: the tail-latency causes tailgate
// attributes (internal/tail's components).
var FixContributors = []string{"gc", "lock", "pagefault", "numa", "sched", "io", "cpu", "other"}

// Fix is one entry of the perf-rules `fixes` section: a named change of how
// the service runs, the contributor it is meant to remove, and its delta.
// At least one of Env, Args and Placement is set.
type Fix struct {
	Name string `yaml:"name"`
	// Contributor is the tail contributor the fix targets (FixContributors).
	Contributor string `yaml:"contributor"`
	// Description says what the fix changes, for the per-fix notes.
	Description string `yaml:"description"`
	// Env is added to the service's environment. When fixes combined in
	// one variant set the same variable, their values are joined with a
	// comma in the order of the fixes section (BIDDER_FIXES=gc,locks).
	Env map[string]string `yaml:"env"`
	// Args are appended to the service's arguments.
	Args Argv `yaml:"args"`
	// Placement is a launcher command the service's own command is run
	// through (e.g. "{{bin}} launch --user nobody --"): the launcher is
	// started as tailgate's user (root) and drops privileges itself.
	Placement Argv `yaml:"placement"`
}

var fixNameOK = func(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (f *Fix) validate(d *decoder, n *yaml.Node, path string) {
	switch {
	case !has(n, "name"):
		d.errorf(n, join(path, "name"), "missing")
	case !fixNameOK(f.Name):
		d.errorf(lineOf(n, "name"), join(path, "name"), "%q: want lower-case letters, digits, - or _ (it names variants like gc+locks)", f.Name)
	case f.Name == "baseline" || f.Name == "all":
		d.errorf(lineOf(n, "name"), join(path, "name"), "%q is reserved", f.Name)
	}
	known := false
	for _, c := range FixContributors {
		known = known || f.Contributor == c
	}
	switch {
	case !has(n, "contributor"):
		d.errorf(n, join(path, "contributor"), "missing (one of %s)", strings.Join(FixContributors, ", "))
	case !known:
		d.errorf(lineOf(n, "contributor"), join(path, "contributor"), "unknown contributor %q (want one of %s)", f.Contributor, strings.Join(FixContributors, ", "))
	}
	if len(f.Env) == 0 && len(f.Args) == 0 && len(f.Placement) == 0 {
		d.errorf(n, path, "fix %q has no delta: give env, args or placement", f.Name)
	}
	vars := []string{VarPort, VarWorkdir, VarBin}
	checkEnv(d, lineOf(n, "env"), join(path, "env"), f.Env, vars)
	checkArgv(d, lineOf(n, "args"), join(path, "args"), f.Args, vars)
	checkArgv(d, lineOf(n, "placement"), join(path, "placement"), f.Placement, vars)
}

// validateFixes checks what no single fix can: unique names, and at most
// one placement launcher.
func (r *Rules) validateFixes(d *decoder, n *yaml.Node) {
	fn := lineOf(n, "fixes")
	seen := map[string]bool{}
	for i, f := range r.Fixes {
		node := fn
		if fn != nil && fn.Kind == yaml.SequenceNode && i < len(fn.Content) {
			node = lineOf(fn.Content[i], "name")
		}
		if seen[f.Name] && f.Name != "" {
			d.errorf(node, fmt.Sprintf("fixes[%d].name", i), "duplicate fix %q", f.Name)
		}
		seen[f.Name] = true
	}
}

// FixNames returns the names of the fixes, in file order.
func (r *Rules) FixNames() []string {
	out := make([]string, len(r.Fixes))
	for i, f := range r.Fixes {
		out[i] = f.Name
	}
	return out
}

// FixByName returns the named fix.
func (r *Rules) FixByName(name string) (Fix, bool) {
	for _, f := range r.Fixes {
		if f.Name == name {
			return f, true
		}
	}
	return Fix{}, false
}

// Delta is the combined change of a set of fixes: what a variant adds to
// the service's command line and environment.
type Delta struct {
	// Env is KEY=VALUE pairs, sorted by key; a key set by several fixes has
	// their values joined with commas.
	Env []string
	// Args are appended to the service's arguments.
	Args []string
	// Placement is the launcher to run the service through (nil: none).
	Placement []string
}

// Combine returns the delta of the named fixes, applied in the order of the
// fixes section (so a variant's delta does not depend on how it was
// named). An unknown name is an error.
func (r *Rules) Combine(names []string) (Delta, error) {
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := r.FixByName(n); !ok {
			return Delta{}, fmt.Errorf("unknown fix %q (the rules have: %s)", n, strings.Join(r.FixNames(), ", "))
		}
		want[n] = true
	}
	var d Delta
	env := map[string][]string{}
	for _, f := range r.Fixes {
		if !want[f.Name] {
			continue
		}
		keys := make([]string, 0, len(f.Env))
		for k := range f.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env[k] = append(env[k], f.Env[k])
		}
		d.Args = append(d.Args, f.Args...)
		if len(f.Placement) > 0 {
			if d.Placement != nil && strings.Join(d.Placement, " ") != strings.Join(f.Placement, " ") {
				return Delta{}, fmt.Errorf("fixes %q: two different placement launchers cannot be combined", names)
			}
			d.Placement = append([]string(nil), f.Placement...)
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.Env = append(d.Env, k+"="+strings.Join(env[k], ","))
	}
	return d, nil
}
