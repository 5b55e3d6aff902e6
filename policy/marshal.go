package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TOML returns the policy as a 1.x config file that loads back to the same
// policy: scalars first, lists as arrays of inline tables (an entry a
// line), then tables. Strings are basic strings, and a "{{" in one is
// written "{\u007B", so that rendering the file as a template leaves it
// alone.
func (p *Policy) TOML() ([]byte, error) {
	if err := representable(reflect.ValueOf(p).Elem(), ""); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	v := reflect.ValueOf(p).Elem()
	t := v.Type()
	var tables []int
	for i := 0; i < t.NumField(); i++ {
		key, ok := tomlKey(t.Field(i))
		f := v.Field(i)
		if !ok || f.IsZero() {
			continue
		}
		if f.Kind() == reflect.Pointer && f.Elem().Kind() == reflect.Struct {
			tables = append(tables, i)
			continue
		}
		writeKeyValue(&b, "", key, f)
	}
	for _, i := range tables {
		key, _ := tomlKey(t.Field(i))
		fmt.Fprintf(&b, "\n[%s]\n", key)
		s := v.Field(i).Elem()
		for j := 0; j < s.NumField(); j++ {
			k, ok := tomlKey(s.Type().Field(j))
			if ok && !s.Field(j).IsZero() {
				writeKeyValue(&b, "", k, s.Field(j))
			}
		}
	}
	return bytes.ReplaceAll(b.Bytes(), []byte("{{"), []byte(`{\u007B`)), nil
}

// representable checks that TOML can hold every value of v: integers up to
// math.MaxInt64, and strings of UTF-8.
func representable(v reflect.Value, key string) error {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return representable(v.Elem(), key)
		}
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return fmt.Errorf("%s: %q is not UTF-8, which TOML cannot hold", key, v.String())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() > math.MaxInt64 {
			return fmt.Errorf("%s: %d is larger than TOML's largest integer", key, v.Uint())
		}
	case reflect.Float64:
		// A whole number is written as an integer.
		if f := v.Float(); f == math.Trunc(f) && math.Abs(f) > math.MaxInt64 {
			return fmt.Errorf("%s: %v is larger than TOML's largest integer", key, f)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := representable(v.Index(i), index(key, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if k, ok := tomlKey(v.Type().Field(i)); ok {
				if err := representable(v.Field(i), joinKey(key, k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// tomlKey returns a field's key, and whether it is written at all.
func tomlKey(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("toml")
	name, _, _ := strings.Cut(tag, ",")
	return name, name != "" && name != "-"
}

// writeKeyValue writes key = value; a list of tables is written an entry a
// line.
func writeKeyValue(b *bytes.Buffer, indent, key string, v reflect.Value) {
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct {
		fmt.Fprintf(b, "%s%s = [\n", indent, key)
		for i := 0; i < v.Len(); i++ {
			fmt.Fprintf(b, "%s  %s,\n", indent, tomlValueOf(v.Index(i)))
		}
		fmt.Fprintf(b, "%s]\n", indent)
		return
	}
	fmt.Fprintf(b, "%s%s = %s\n", indent, key, tomlValueOf(v))
}

// tomlValueOf writes a value inline. Zero fields tagged omitempty are left
// out of inline tables.
func tomlValueOf(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		return tomlValueOf(v.Elem())
	case reflect.String:
		return Quote(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float64:
		if f := v.Float(); f == math.Trunc(f) && math.Abs(f) < math.MaxInt64 {
			return strconv.FormatInt(int64(f), 10)
		}
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = tomlValueOf(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Struct:
		var parts []string
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			key, ok := tomlKey(f)
			if !ok || strings.Contains(f.Tag.Get("toml"), ",omitempty") && v.Field(i).IsZero() {
				continue
			}
			parts = append(parts, key+" = "+tomlValueOf(v.Field(i)))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	panic(fmt.Sprintf("policy: cannot write a %s as TOML", v.Type()))
}

// JSON returns the policy as indented JSON, with the keys of the 1.x
// schema.
func (p *Policy) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
