package goprobe

import (
	"debug/dwarf"
	"errors"
	"fmt"
)

// ProbeTargets are the functions the Go-aware collectors put uprobes on.
// Every one exists as a real (not inlined) function with RET instructions in
// Go 1.22 through 1.26 binaries (TestProbeTargets). runtime.goready is
// inlined: probe runtime.ready instead.
var ProbeTargets = []string{
	"runtime.gcStart",
	"runtime.stopTheWorldWithSema",
	"runtime.startTheWorldWithSema",
	"runtime.gcAssistAlloc",
	"runtime.gopark",
	"runtime.ready",
	"net/http.serverHandler.ServeHTTP",
}

// IntArgRegs are the amd64 integer argument registers of Go's internal ABI
// (ABIInternal, Go ≥1.17), in assignment order.
var IntArgRegs = []string{"rax", "rbx", "rcx", "rdi", "rsi", "r8", "r9", "r10", "r11"}

const numFloatArgRegs = 15

// knownArgs answers ArgRegisters for binaries without DWARF; each entry was
// checked against the DWARF of Go 1.22-1.26 binaries (TestArgRegisters).
var knownArgs = map[[2]string][]string{
	{"runtime.gopark", "reason"}:                {"rcx"},
	{"runtime.ready", "gp"}:                     {"rax"},
	{"net/http.serverHandler.ServeHTTP", "req"}: {"rdi"},
	{"runtime.gcAssistAlloc", "gp"}:             {"rax"},
	{"runtime.gcStart", "trigger"}:              {"rax", "rbx", "rcx"},
	{"runtime.stopTheWorldWithSema", "reason"}:  {"rax"},
	{"net/http.serverHandler.ServeHTTP", "sh"}:  {"rax"},
	{"net/http.serverHandler.ServeHTTP", "rw"}:  {"rbx", "rcx"},
	{"runtime.gopark", "lock"}:                  {"rbx"},
	{"runtime.gopark", "unlockf"}:               {"rax"},
	{"runtime.gopark", "traceReason"}:           {"rdi"},
	{"runtime.ready", "traceskip"}:              {"rbx"},
	{"runtime.ready", "next"}:                   {"rcx"},
	{"runtime.startTheWorldWithSema", "now"}:    {"rax"},
}

// errOnStack marks a parameter the ABI passes in memory.
var errOnStack = errors.New("passed on the stack")

// ArgRegisters returns the registers holding parameter param of function fn
// at its entry, following the register assignment of Go's ABIInternal on
// amd64 over the parameter types in DWARF. Without DWARF it answers from a
// small table of the parameters the collectors read. A parameter passed on
// the stack is an error.
func (b *Binary) ArgRegisters(fn, param string) ([]string, error) {
	b.dwarfMu.Lock()
	defer b.dwarfMu.Unlock()
	d, err := b.dwarf()
	if err != nil {
		if regs, ok := knownArgs[[2]string{fn, param}]; ok {
			return regs, nil
		}
		return nil, fmt.Errorf("registers of %s(%s): no DWARF and no table entry: %w", fn, param, ErrUnknownVersion)
	}
	params, err := funcParams(d, fn)
	if err != nil {
		return nil, err
	}
	a := &abiAssigner{}
	for _, p := range params {
		start := *a
		err := a.assign(p.typ, 0)
		if err != nil {
			*a = start // the whole parameter goes to the stack
		}
		if p.name != param {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s(%s): %w", fn, param, err)
		}
		if a.ints == start.ints {
			return nil, fmt.Errorf("%s(%s): in floating-point registers", fn, param)
		}
		return IntArgRegs[start.ints:a.ints], nil
	}
	return nil, fmt.Errorf("%s has no parameter %q", fn, param)
}

type param struct {
	name string
	typ  dwarf.Type
}

// funcParams lists fn's input parameters in order from DWARF (results are
// DW_AT_variable_parameter in Go's DWARF).
func funcParams(d *dwarf.Data, fn string) ([]param, error) {
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("read DWARF: %w", err)
		}
		if e == nil {
			return nil, fmt.Errorf("%s: %w", fn, ErrNoFunc)
		}
		if e.Tag == dwarf.TagCompileUnit {
			continue
		}
		if name, _ := e.Val(dwarf.AttrName).(string); e.Tag != dwarf.TagSubprogram || name != fn {
			r.SkipChildren()
			continue
		}
		var out []param
		for e.Children {
			c, err := r.Next()
			if err != nil {
				return nil, fmt.Errorf("read DWARF %s: %w", fn, err)
			}
			if c == nil || c.Tag == 0 {
				break
			}
			if c.Children {
				r.SkipChildren()
			}
			if c.Tag != dwarf.TagFormalParameter {
				continue
			}
			if res, _ := c.Val(dwarf.AttrVarParam).(bool); res {
				continue
			}
			off, ok := c.Val(dwarf.AttrType).(dwarf.Offset)
			if !ok {
				return nil, fmt.Errorf("%s: parameter without type", fn)
			}
			t, err := d.Type(off)
			if err != nil {
				return nil, fmt.Errorf("%s: parameter type: %w", fn, err)
			}
			name, _ := c.Val(dwarf.AttrName).(string)
			out = append(out, param{name: name, typ: t})
		}
		return out, nil
	}
}

// abiAssigner counts registers as ABIInternal assigns them.
type abiAssigner struct{ ints, floats int }

func (a *abiAssigner) assign(t dwarf.Type, depth int) error {
	if depth > 16 {
		return errors.New("type too deep")
	}
	switch t := t.(type) {
	case *dwarf.TypedefType:
		return a.assign(t.Type, depth+1)
	case *dwarf.FloatType:
		return a.take(0, 1)
	case *dwarf.ComplexType:
		return a.take(0, 2)
	case *dwarf.StructType:
		for _, f := range t.Field {
			if err := a.assign(f.Type, depth+1); err != nil {
				return err
			}
		}
		return nil
	case *dwarf.ArrayType:
		switch t.Count {
		case 0:
			return nil
		case 1:
			return a.assign(t.Type, depth+1)
		}
		return errOnStack
	}
	if s := t.Size(); s > 8 || s < 0 {
		return fmt.Errorf("%s (%d bytes): %w", t, s, errOnStack)
	} else if s == 0 {
		return nil
	}
	return a.take(1, 0)
}

func (a *abiAssigner) take(ints, floats int) error {
	if a.ints+ints > len(IntArgRegs) || a.floats+floats > numFloatArgRegs {
		return errOnStack
	}
	a.ints += ints
	a.floats += floats
	return nil
}
