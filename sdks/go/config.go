package konorkestra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Source values of Config.Source.
const (
	SourceAgent = "agent" // received from the agent over its socket
	SourceDisk  = "disk"  // read from <data>/current/<group>/release.json
)

// Config is one committed release of a group: every ConfigSet's data, by
// ConfigSet name. It is immutable and safe to share between goroutines.
// The zero Config has Sequence 0 and no ConfigSets.
type Config struct {
	Group    string
	Release  string // release id, e.g. "checkout-3"
	Sequence int64  // strictly increasing per group
	Digest   string // "sha256:..."
	Stale    bool   // past its freshness deadline (always false when Source is "disk")
	Source   string // SourceAgent or SourceDisk

	raw  map[string]json.RawMessage
	tree map[string]any // raw, decoded once with UseNumber
}

func newConfig(group, release string, seq int64, digest string, stale bool, source string, sets map[string]json.RawMessage) (Config, error) {
	c := Config{Group: group, Release: release, Sequence: seq, Digest: digest, Stale: stale, Source: source,
		raw: sets, tree: make(map[string]any, len(sets))}
	for name, data := range sets {
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return Config{}, fmt.Errorf("konorkestra: config %q of %s: %w", name, release, err)
		}
		c.tree[name] = v
	}
	return c, nil
}

// Names returns the ConfigSet names in the release, sorted.
func (c Config) Names() []string {
	names := make([]string, 0, len(c.raw))
	for n := range c.raw {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Raw returns a copy of ConfigSet name's data as JSON, or nil if absent.
func (c Config) Raw(name string) json.RawMessage {
	if data, ok := c.raw[name]; ok {
		return append(json.RawMessage(nil), data...)
	}
	return nil
}

// Decode unmarshals ConfigSet name's data into v, as json.Unmarshal does.
func (c Config) Decode(name string, v any) error {
	data, ok := c.raw[name]
	if !ok {
		return fmt.Errorf("konorkestra: %s has no config %q", c.describe(), name)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("konorkestra: config %q of %s: %w", name, c.describe(), err)
	}
	return nil
}

// value returns the value at path inside ConfigSet name: path elements are
// object keys, or decimal indexes into arrays. Objects are map[string]any,
// arrays []any, numbers json.Number; callers must not modify them.
func (c Config) value(name string, path ...string) (any, error) {
	v, ok := c.tree[name]
	if !ok {
		return nil, fmt.Errorf("konorkestra: %s has no config %q", c.describe(), name)
	}
	for i, key := range path {
		switch node := v.(type) {
		case map[string]any:
			v, ok = node[key]
		case []any:
			var n int
			n, ok = index(key, len(node))
			if ok {
				v = node[n]
			}
		default:
			ok = false
		}
		if !ok {
			return nil, fmt.Errorf("konorkestra: %s: no %s", c.describe(), where(name, path[:i+1]))
		}
	}
	return v, nil
}

// String returns the string at path in ConfigSet name.
func (c Config) String(name string, path ...string) (string, error) {
	v, err := c.value(name, path...)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", c.typeErr(name, path, "a string", v)
	}
	return s, nil
}

// Int returns the integer at path in ConfigSet name (800 and 800.0 both are).
func (c Config) Int(name string, path ...string) (int, error) {
	v, err := c.value(name, path...)
	if err != nil {
		return 0, err
	}
	if n, ok := v.(json.Number); ok {
		if i, err := strconv.ParseInt(string(n), 10, 0); err == nil {
			return int(i), nil
		}
		if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return int(f), nil
		}
	}
	return 0, c.typeErr(name, path, "an integer", v)
}

// Float returns the number at path in ConfigSet name.
func (c Config) Float(name string, path ...string) (float64, error) {
	v, err := c.value(name, path...)
	if err != nil {
		return 0, err
	}
	if n, ok := v.(json.Number); ok {
		if f, err := n.Float64(); err == nil {
			return f, nil
		}
	}
	return 0, c.typeErr(name, path, "a number", v)
}

// Bool returns the boolean at path in ConfigSet name.
func (c Config) Bool(name string, path ...string) (bool, error) {
	v, err := c.value(name, path...)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, c.typeErr(name, path, "a boolean", v)
	}
	return b, nil
}

func (c Config) describe() string {
	if c.Release == "" {
		return "empty config"
	}
	return "release " + c.Release
}

func (c Config) typeErr(name string, path []string, want string, got any) error {
	text, _ := json.Marshal(got)
	if len(text) > 60 {
		text = append(text[:57], "..."...)
	}
	return fmt.Errorf("konorkestra: %s: %s is %s, not %s", c.describe(), where(name, path), text, want)
}

func where(name string, path []string) string {
	if len(path) == 0 {
		return name
	}
	return name + "." + strings.Join(path, ".")
}

func index(key string, n int) (int, bool) {
	i, err := strconv.Atoi(key)
	return i, err == nil && i >= 0 && i < n && strconv.Itoa(i) == key
}
