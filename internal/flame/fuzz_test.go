package flame

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"reflect"
	"testing"
)

// FuzzParseFolded checks that any input either fails with a ParseError or
// parses into a profile that writes back to the same profile and renders
// to well-formed XML. Without -fuzz it runs the seeds.
func FuzzParseFolded(f *testing.F) {
	for _, name := range []string{"testdata/base.folded", "testdata/head.folded"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a;b 1\na;;b 2\n"))
	f.Add([]byte("<x>&;\"y\" 1.5e3\n"))
	f.Add([]byte("a 1 2\n\xff\x00 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseFolded(bytes.NewReader(data), "fuzz")
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		var out bytes.Buffer
		if err := WriteFolded(&out, p); err != nil {
			t.Fatal(err)
		}
		q, err := ParseFolded(bytes.NewReader(out.Bytes()), "rewritten")
		if err != nil {
			t.Fatalf("written output does not parse: %v\n%q", err, out.Bytes())
		}
		if !reflect.DeepEqual(p.Stacks, q.Stacks) {
			t.Fatalf("round trip changed the stacks: %v vs %v", p.Stacks, q.Stacks)
		}
		var svg bytes.Buffer
		if err := RenderSVG(&svg, p, Options{}); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&svg)
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("svg not well-formed: %v", err)
			}
		}
	})
}
