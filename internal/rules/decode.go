package rules

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// This file holds a small strict decoder over yaml.v3 nodes. yaml.v3's own
// Decode neither rejects unknown keys on a Node nor reports the field path,
// so the rules are walked by hand: every struct field is named by its `yaml`
// tag, an unknown or duplicate key is an error, and every error carries
// file:line and the dotted field path ("load.rate").
//
// Supported field types: string, bool, int, int64, float64, time.Duration,
// []T, map[string]string, structs and pointers to structs, and any type
// implementing scalarDecoder (e.g. Rate). A struct implementing validator
// is checked after it is decoded.

// scalarDecoder is implemented by types parsed from a single scalar.
type scalarDecoder interface {
	decodeScalar(s string) error
}

// nodeDecoder is implemented by types with their own node grammar (e.g. an
// argv that may be a string or a sequence).
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

// validator is implemented by structs with cross-field rules. It reports
// problems through d.errorf so they carry the struct's line.
type validator interface {
	validate(d *decoder, n *yaml.Node, path string)
}

// FieldError is one problem in a rules file.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

type decoder struct {
	file string
	errs []error
}

func (d *decoder) errorf(n *yaml.Node, field, format string, a ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)})
}

func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	// Stable order: by line, so the first error in the file comes first.
	sort.SliceStable(d.errs, func(i, j int) bool {
		return d.errs[i].(*FieldError).Line < d.errs[j].(*FieldError).Line
	})
	return errors.Join(d.errs...)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "a document"
}

var durationType = reflect.TypeOf(time.Duration(0))

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
			nd.decodeNode(d, n, path)
			return
		}
		if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
			if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
				d.errorf(n, path, "want a single value, got %s", kindName(n))
				return
			}
			if err := sd.decodeScalar(n.Value); err != nil {
				d.errorf(n, path, "%v", err)
			}
			return
		}
	}
	switch {
	case v.Type() == durationType:
		s, ok := d.scalar(n, path, "a duration like 30s")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(n, path, "%q is not a duration: want a number with a unit, like 30s or 500ms", s)
			return
		}
		if dur < 0 {
			d.errorf(n, path, "%s is negative", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := d.scalar(n, path, "a string")
		if ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.errorf(n, path, "%q is not true or false", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		s, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		if err != nil {
			d.errorf(n, path, "%q is not an integer", s)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		s, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil {
			d.errorf(n, path, "%q is not a number", s)
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			panic("rules: unsupported map key type " + v.Type().String())
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "want a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.errorf(k, join(path, k.Value), "duplicate key")
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, join(path, k.Value))
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	default:
		panic("rules: unsupported field type " + v.Type().String())
	}
}

// scalar returns n's value when it is a non-null scalar.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, path, "want %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

// structFields maps yaml names to field indexes.
func structFields(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		idx[name] = i
		names = append(names, name)
	}
	return idx, names
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	idx, names := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		fi, ok := idx[k.Value]
		if !ok {
			d.errorf(k, fp, "unknown field (known: %s)", strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			d.errorf(k, fp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(fi), fp)
	}
	if v.CanAddr() {
		if vd, ok := v.Addr().Interface().(validator); ok {
			vd.validate(d, n, path)
		}
	}
}

// lineOf returns the line of key name in mapping n (or n's own line), so
// cross-field errors point at the offending key.
func lineOf(n *yaml.Node, name string) *yaml.Node {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return n.Content[i+1]
			}
		}
	}
	return n
}
