package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// JSON decoding turns record values that are JSON objects into typed columns
// after the default ones. The columns come from the top-level keys of a
// sample of values (InferJSON); nested objects become structs, arrays lists,
// integers int64, other numbers float64. A key whose values disagree in type
// becomes utf8 holding strings as they are and anything else as JSON text,
// so no value is ever dropped for not fitting. Values that are not JSON
// objects leave every JSON column null for their row (the value column
// always keeps the raw bytes).
const (
	// DefaultJSONSample is how many values InferJSON looks at by default.
	DefaultJSONSample = 1000
	// maxJSONColumns bounds the top-level columns inference creates; keys
	// beyond it are ignored (the raw value still holds them).
	maxJSONColumns = 512
	// maxJSONDepth bounds nesting: deeper values are kept as JSON text.
	maxJSONDepth = 8
)

// jsonKind is an inferred JSON type, widening as samples disagree.
type jsonKind uint8

const (
	kNull jsonKind = iota
	kBool
	kInt
	kFloat
	kString
	kObject
	kArray
	kText // conflicting types: utf8 with JSON text
)

// jsonShape is the inferred shape of one JSON value position.
type jsonShape struct {
	kind   jsonKind
	fields []string // object: keys in first-seen order
	byName map[string]*jsonShape
	elem   *jsonShape // array element
}

func (s *jsonShape) merge(v any, depth int) {
	k := kindOf(v)
	if k == kNull {
		return
	}
	if depth >= maxJSONDepth && (k == kObject || k == kArray) {
		k = kText
	}
	switch {
	case s.kind == kNull:
		s.kind = k
	case s.kind == k, s.kind == kText:
	case s.kind == kInt && k == kFloat, s.kind == kFloat && k == kInt:
		s.kind = kFloat
	default:
		s.kind, s.fields, s.byName, s.elem = kText, nil, nil, nil
	}
	switch s.kind {
	case kObject:
		m := v.(map[string]any)
		if s.byName == nil {
			s.byName = map[string]*jsonShape{}
		}
		// Go maps have no order; sort new keys so inference is
		// deterministic for a given sample.
		for _, name := range slices.Sorted(maps.Keys(m)) {
			f, ok := s.byName[name]
			if !ok {
				if len(s.fields) >= maxJSONColumns {
					continue
				}
				f = &jsonShape{}
				s.byName[name] = f
				s.fields = append(s.fields, name)
			}
			f.merge(m[name], depth+1)
		}
	case kArray:
		if s.elem == nil {
			s.elem = &jsonShape{}
		}
		for _, e := range v.([]any) {
			s.elem.merge(e, depth+1)
		}
	}
}

func kindOf(v any) jsonKind {
	switch v := v.(type) {
	case nil:
		return kNull
	case bool:
		return kBool
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return kInt
		}
		return kFloat
	case string:
		return kString
	case map[string]any:
		return kObject
	case []any:
		return kArray
	}
	return kText
}

func (s *jsonShape) arrowType() arrow.DataType {
	switch s.kind {
	case kBool:
		return arrow.FixedWidthTypes.Boolean
	case kInt:
		return arrow.PrimitiveTypes.Int64
	case kFloat:
		return arrow.PrimitiveTypes.Float64
	case kObject:
		fs := make([]arrow.Field, 0, len(s.fields))
		for _, name := range s.fields {
			fs = append(fs, arrow.Field{Name: name, Type: s.byName[name].arrowType(), Nullable: true})
		}
		if len(fs) == 0 {
			return arrow.BinaryTypes.String // {} everywhere: keep the text
		}
		return arrow.StructOf(fs...)
	case kArray:
		if s.elem == nil || s.elem.kind == kNull {
			return arrow.ListOf(arrow.BinaryTypes.String)
		}
		return arrow.ListOf(s.elem.arrowType())
	}
	return arrow.BinaryTypes.String // strings, text, and keys only ever null
}

// decodeJSON parses one value; ok is false for anything but a JSON object.
func decodeJSON(b []byte) (map[string]any, bool) {
	if len(b) == 0 {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, false
	}
	return m, true
}

// InferJSON returns the JSON columns (as fields) the given values suggest;
// values that are not JSON objects are ignored. Column names that clash with
// the default schema's get a "value." prefix.
func InferJSON(values [][]byte) []arrow.Field {
	root := &jsonShape{kind: kObject, byName: map[string]*jsonShape{}}
	for _, v := range values {
		if m, ok := decodeJSON(v); ok {
			root.merge(m, 0)
		}
	}
	taken := map[string]bool{}
	for _, f := range Schema.Fields() {
		taken[f.Name] = true
	}
	var out []arrow.Field
	for _, name := range root.fields {
		col := name
		if taken[col] {
			col = "value." + name
		}
		if taken[col] {
			continue
		}
		taken[col] = true
		out = append(out, arrow.Field{Name: col, Type: root.byName[name].arrowType(), Nullable: true,
			Metadata: arrow.NewMetadata([]string{jsonKeyMeta}, []string{name})})
	}
	return out
}

// SchemaWithJSON is the default schema followed by the JSON columns.
func SchemaWithJSON(jsonFields []arrow.Field) *arrow.Schema {
	if len(jsonFields) == 0 {
		return Schema
	}
	return arrow.NewSchema(append(append([]arrow.Field(nil), Schema.Fields()...), jsonFields...), nil)
}

// jsonKeyMeta is the field metadata key holding the JSON key a column was
// inferred from (it differs from the column name on a clash).
const jsonKeyMeta = "strata.json_key"

// jsonKey is the JSON key a column was inferred from.
func jsonKey(f arrow.Field) string {
	if i := f.Metadata.FindKey(jsonKeyMeta); i >= 0 {
		return f.Metadata.Values()[i]
	}
	return f.Name
}

// appendJSON appends v (a decoded JSON value, or nil) to b of type t.
func appendJSON(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.BooleanBuilder:
		if x, ok := v.(bool); ok {
			b.Append(x)
			return
		}
	case *array.Int64Builder:
		if n, ok := v.(json.Number); ok {
			if x, err := n.Int64(); err == nil {
				b.Append(x)
				return
			}
		}
	case *array.Float64Builder:
		if n, ok := v.(json.Number); ok {
			if x, err := n.Float64(); err == nil {
				b.Append(x)
				return
			}
		}
	case *array.StringBuilder:
		if s, ok := v.(string); ok {
			b.Append(s)
			return
		}
		if text, err := json.Marshal(v); err == nil {
			b.Append(string(text))
			return
		}
	case *array.StructBuilder:
		if m, ok := v.(map[string]any); ok {
			b.Append(true)
			st := b.Type().(*arrow.StructType)
			for i, f := range st.Fields() {
				appendJSON(b.FieldBuilder(i), m[f.Name])
			}
			return
		}
	case *array.ListBuilder:
		if l, ok := v.([]any); ok {
			b.Append(true)
			vb := b.ValueBuilder()
			for _, e := range l {
				appendJSON(vb, e)
			}
			return
		}
	}
	b.AppendNull() // a value that does not fit the inferred type
}

// SampleValues returns up to n values of the records a scan of topic (the
// given partitions, all when empty) with rg would return, from the first
// partitions on: the sample InferJSON needs.
func (r *Reader) SampleValues(ctx context.Context, topic string, partitions []int32, rg Range, n int) ([][]byte, error) {
	if n <= 0 {
		n = DefaultJSONSample
	}
	t, err := r.Topic(topic)
	if err != nil {
		return nil, err
	}
	if len(partitions) == 0 {
		for p := range t.Partitions {
			partitions = append(partitions, p)
		}
	}
	// An equal share from each partition, so a key that only some
	// partitions carry is still seen.
	quota := max(1, n/len(partitions))
	var out [][]byte
	for _, p := range partitions {
		taken := 0
		_, err := r.Scan(ctx, metadata.TP{Topic: topic, Partition: p}, rg, func(rec *kbatch.Record) error {
			if rec.Value != nil {
				out = append(out, bytes.Clone(rec.Value))
				taken++
			}
			if taken >= quota {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, fmt.Errorf("query: sampling values: %w", err)
		}
		if len(out) >= n {
			break
		}
	}
	return out, nil
}
