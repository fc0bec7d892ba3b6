package bidder

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// RequestError is a client error in a bid request; the handler answers it
// with 400 and the message.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func badRequest(format string, a ...any) error { return &RequestError{Msg: fmt.Sprintf(format, a...)} }

// DecodeRequest parses and validates an OpenRTB 2.6 BidRequest. Every error is
// a *RequestError whose message names the offending byte offset or field.
func DecodeRequest(body []byte, req *openrtb2.BidRequest) error {
	if len(body) == 0 {
		return badRequest("empty body: want an OpenRTB BidRequest JSON object")
	}
	if err := json.Unmarshal(body, req); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return badRequest("malformed JSON at byte %d: %v", syn.Offset, syn)
		case errors.As(err, &typ):
			field := typ.Field
			if field == "" {
				field = "(top level)"
			}
			return badRequest("field %s: got JSON %s, want %s", field, typ.Value, typ.Type)
		default:
			return badRequest("invalid BidRequest: %v", err)
		}
	}
	return ValidateRequest(req)
}

// ValidateRequest checks the fields the auction relies on.
func ValidateRequest(req *openrtb2.BidRequest) error {
	if req.ID == "" {
		return badRequest("field id: required")
	}
	if len(req.Imp) == 0 {
		return badRequest("field imp: at least one impression required")
	}
	if req.TMax < 0 {
		return badRequest("field tmax: %d is negative", req.TMax)
	}
	for i := range req.Imp {
		imp := &req.Imp[i]
		if imp.ID == "" {
			return badRequest("field imp[%d].id: required", i)
		}
		if imp.Banner == nil && imp.Video == nil && imp.Native == nil && imp.Audio == nil {
			return badRequest("field imp[%d]: needs one of banner, video, audio, native", i)
		}
		if imp.BidFloor < 0 {
			return badRequest("field imp[%d].bidfloor: %g is negative", i, imp.BidFloor)
		}
		if imp.BidFloorCur != "" && imp.BidFloorCur != "USD" {
			return badRequest("field imp[%d].bidfloorcur: %q not supported (USD only)", i, imp.BidFloorCur)
		}
		if b := imp.Banner; b != nil {
			if (b.W != nil && *b.W < 0) || (b.H != nil && *b.H < 0) {
				return badRequest("field imp[%d].banner: negative w or h", i)
			}
			for j, f := range b.Format {
				if f.W < 0 || f.H < 0 {
					return badRequest("field imp[%d].banner.format[%d]: negative w or h", i, j)
				}
			}
		}
		if v := imp.Video; v != nil && ((v.W != nil && *v.W < 0) || (v.H != nil && *v.H < 0)) {
			return badRequest("field imp[%d].video: negative w or h", i)
		}
	}
	return nil
}

// SchemaCheck is the baseline's pre-validation: it decodes the body into
// generic JSON (map[string]any) and checks the shape the typed decoder needs
// (an object with a string id and a non-empty imp array of objects, each with
// a string id and a media object). It is the common "validate the JSON, then
// decode it" pattern, and it allocates a tree of the whole request for
// nothing the typed decode cannot do; the gc fix skips it. Every body
// DecodeRequest accepts passes it (FuzzDecode checks that).
func SchemaCheck(body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return badRequest("schema: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return badRequest("schema: top level is not an object")
	}
	if !anyField(obj, "id", nonEmptyString) {
		return badRequest("schema: id: want a non-empty string")
	}
	if !anyField(obj, "imp", validImps) {
		return badRequest("schema: imp: want a non-empty array of objects with an id and a banner, video, audio or native object")
	}
	return nil
}

// anyField reports whether some key of obj that encoding/json would map to
// name (it matches keys case-insensitively) has a value satisfying ok.
func anyField(obj map[string]any, name string, ok func(any) bool) bool {
	for k, v := range obj {
		if strings.EqualFold(k, name) && ok(v) {
			return true
		}
	}
	return false
}

func nonEmptyString(v any) bool { s, ok := v.(string); return ok && s != "" }

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }

func validImps(v any) bool {
	imps, ok := v.([]any)
	if !ok || len(imps) == 0 {
		return false
	}
	for _, x := range imps {
		imp, ok := x.(map[string]any)
		if !ok || !anyField(imp, "id", nonEmptyString) {
			return false
		}
		if !anyField(imp, "banner", isObject) && !anyField(imp, "video", isObject) &&
			!anyField(imp, "audio", isObject) && !anyField(imp, "native", isObject) {
			return false
		}
	}
	return true
}
