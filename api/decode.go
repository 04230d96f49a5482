package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// decodeOptions choose how strict a body is read. Every body is read whole (fiber has already
// applied the size limit), must hold exactly one JSON value and may nest at most MaxJSONDepth.
type decodeOptions struct {
	// allowUnknown accepts fields the target does not know. Only the OPA-compatible data API
	// sets it; everywhere else a misspelt field is an error, because a silently ignored
	// "quantity" or "custom_orders_limit" is a wrong decision or a lost write.
	allowUnknown bool
	// useNumber keeps numbers in interface values as json.Number, so large integers in data
	// API input reach the policy exactly.
	useNumber bool
	// root names the body in messages: "body" for a request, "checks[3]" for a batch entry.
	root string
}

// decodeJSON decodes body into v. Errors are *tollgate.Error values whose message names the
// field at fault.
func decodeJSON(body []byte, v any, o decodeOptions) error {
	if o.root == "" {
		o.root = "body"
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return tollgate.FieldErrorf(o.root, "is required (a JSON object)")
	}
	if err := checkDepth(body, MaxJSONDepth); err != nil {
		return tollgate.FieldErrorf(o.root, "%s", err.Error())
	}
	// JSON text is UTF-8 (RFC 8259). encoding/json would quietly turn invalid bytes into U+FFFD,
	// so "v\xc0\xaf" and "v\xff\xfe" would both name the vendor "v\uFFFD\uFFFD".
	if !utf8.Valid(body) {
		return tollgate.FieldErrorf(o.root, "is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if !o.allowUnknown {
		dec.DisallowUnknownFields()
	}
	if o.useNumber {
		dec.UseNumber()
	}
	if err := dec.Decode(v); err != nil {
		err = decodeError(err, o.root)
		if te := (*tollgate.Error)(nil); errors.As(err, &te) && te.Field == o.root {
			// A field type's own UnmarshalJSON (time.Time) failed without saying which field;
			// find it by decoding the top-level fields one by one.
			if f, msg := findFailingField(body, v); f != "" {
				return tollgate.FieldErrorf(joinField(o.root, f), "%s", msg)
			}
		}
		return err
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(body[off:])) > 0 {
		return tollgate.FieldErrorf(o.root, "unexpected data after the JSON value at offset %d", off)
	}
	// Struct fields match keys case-insensitively at every level; the data API's input is
	// free-form below its top level.
	foldDepth := MaxJSONDepth + 1
	if o.allowUnknown {
		foldDepth = 1
	}
	if _, freeForm := v.(*any); freeForm {
		foldDepth = 0 // decoded into maps: no struct field to match case-insensitively
	}
	if path, key, first, dup := duplicateKey(body, foldDepth); dup {
		field := joinField(o.root, path)
		if key != first {
			return tollgate.FieldErrorf(field, "duplicate key: the object already has %s (keys name fields case-insensitively)", strconv.Quote(first))
		}
		return tollgate.FieldErrorf(field, "duplicate key: an object may give each key once")
	}
	return nil
}

// decodeError turns an encoding/json error into a field error.
func decodeError(err error, root string) error {
	var (
		te     *tollgate.Error
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &te):
		// A field's own UnmarshalJSON (e.g. VendorID) already named it.
		return prefixError(te, root)
	case errors.As(err, &syntax):
		return tollgate.FieldErrorf(root, "invalid JSON at offset %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return tollgate.FieldErrorf(root, "invalid JSON: unexpected end of input")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return tollgate.FieldErrorf(root, "must be %s, got %s", describeType(typ.Type), typ.Value)
		}
		return tollgate.FieldErrorf(joinField(root, typ.Field), "must be %s, got %s", describeType(typ.Type), typ.Value)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return tollgate.FieldErrorf(root, "unknown field %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return &tollgate.Error{Code: tollgate.EInvalid, Field: root, Message: root + ": invalid JSON", Err: err}
}

// findFailingField decodes each top-level member of body into the matching field of the struct
// v points to and names the first that fails, with the failure.
func findFailingField(body []byte, v any) (string, string) {
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return "", ""
	}
	members, ok := orderedMembers(body)
	if !ok {
		return "", ""
	}
	fields := map[string]reflect.Type{}
	collectFields(t.Elem(), fields)
	// in body order, so that the same body always names the same field
	for _, m := range members {
		ft, ok := fields[m.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(m.raw, reflect.New(ft).Interface()); err != nil {
			var pe *time.ParseError
			if errors.As(err, &pe) {
				return m.name, "must be an RFC 3339 timestamp, got " + truncateQuoted(pe.Value)
			}
			return m.name, "must be " + describeType(ft)
		}
	}
	return "", ""
}

type member struct {
	name string
	raw  json.RawMessage
}

// orderedMembers lists the members of the JSON object body in the order they are written.
func orderedMembers(body []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		out = append(out, member{name, raw})
	}
	return out, true
}

// collectFields maps JSON member names to field types, descending into embedded structs.
func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, out)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

func truncateQuoted(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// prefixError places a field error under root ("checks[3]"); "body" is the identity.
func prefixError(te *tollgate.Error, root string) error {
	if root == "body" || te.Code != tollgate.EInvalid {
		return te
	}
	if te.Field == "" {
		return &tollgate.Error{Code: te.Code, Field: root, Message: root + ": " + te.Message, Err: te.Err}
	}
	return &tollgate.Error{Code: te.Code, Field: joinField(root, te.Field), Message: joinField(root, te.Message), Err: te.Err}
}

func joinField(root, field string) string {
	if root == "body" {
		return field
	}
	return root + "." + field
}

// describeType names a Go type the way a JSON author thinks of it.
func describeType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer in the 64-bit range"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	}
	return "a " + t.String()
}

// checkDepth refuses JSON nested deeper than limit. It is a linear scan that skips strings, run
// before decoding so that hostile input cannot make the decoder (or the policy) recurse deeply.
func checkDepth(b []byte, limit int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > limit {
				return fmt.Errorf("nested deeper than %d levels", limit)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// requestBody returns the raw request body. fiber's Ctx.Body would inflate a gzip or brotli
// body with no bound (a small compressed body could expand to gigabytes past the body limit),
// so compressed bodies are refused instead; no client of a sidecar needs them.
func requestBody(c *fiber.Ctx) ([]byte, error) {
	if enc := c.Request().Header.Peek(fiber.HeaderContentEncoding); len(enc) > 0 && !strings.EqualFold(string(enc), "identity") {
		return nil, tollgate.FieldErrorf("Content-Encoding", "compressed request bodies are not accepted, got %s", truncateQuoted(string(enc)))
	}
	return c.Request().Body(), nil
}

// decodeBody decodes the request body into v (see decodeJSON).
func decodeBody(c *fiber.Ctx, v any, o decodeOptions) error {
	body, err := requestBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(body, v, o)
}
