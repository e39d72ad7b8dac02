package konorkestra

// Replays every conformance vector in ../../tests/vectors against the
// fake agent (python -m konorkestra.testing.fakeagent, see testagent_test.go), following
// tests/vectors/README.md and its reference replayer replay.py, and checks
// that every line the server sends decodes with the SDK's own message type.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

const vectorDir = "../../tests/vectors"

type vector struct {
	Name  string            `json:"name"`
	Steps []json.RawMessage `json:"steps"`
	raw   json.RawMessage
}

type step struct {
	Send       json.RawMessage `json:"send"`
	SendRaw    *string         `json:"send_raw"`
	SendRepeat *struct {
		Text  string `json:"text"`
		Count int    `json:"count"`
		Then  string `json:"then"`
	} `json:"send_repeat"`
	Expect       json.RawMessage `json:"expect"`
	ExpectClosed bool            `json:"expect_closed"`
	Publish      json.RawMessage `json:"publish"`
	SetStale     json.RawMessage `json:"set_stale"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no vectors in %s (err %v)", vectorDir, err)
	}
	sort.Strings(paths)
	var out []vector
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		v := vector{raw: data}
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, v)
	}
	return out
}

func compact(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestConformanceVectors(t *testing.T) {
	vectors := loadVectors(t)
	srv := newTestAgent(t).start()
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			srv.command(t, []byte(fmt.Sprintf(`{"load": %s}`, v.raw)))
			nc, err := net.Dial("unix", srv.path)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			r := bufio.NewReader(nc)
			for i, raw := range v.Steps {
				var st step
				if err := json.Unmarshal(raw, &st); err != nil {
					t.Fatal(err)
				}
				where := fmt.Sprintf("step %d", i)
				switch {
				case st.Send != nil:
					write(t, nc, append(compact(t, st.Send), '\n'))
				case st.SendRaw != nil:
					write(t, nc, []byte(*st.SendRaw))
				case st.SendRepeat != nil:
					rep := st.SendRepeat
					write(t, nc, []byte(strings.Repeat(rep.Text, rep.Count)+rep.Then))
				case st.Expect != nil:
					line := readLine(t, nc, r)
					if line == nil {
						t.Fatalf("%s: connection closed, expected %s", where, st.Expect)
					}
					if why := mismatch(decodeAny(t, st.Expect), decodeAny(t, line), "$"); why != "" {
						t.Fatalf("%s: %s\n  line: %.500s", where, why, line)
					}
					checkSDKDecodes(t, where, line)
				case st.ExpectClosed:
					if line := readLine(t, nc, r); line != nil {
						t.Fatalf("%s: expected end of stream, got %.200s", where, line)
					}
				case st.Publish != nil || st.SetStale != nil:
					srv.command(t, raw)
				default:
					t.Fatalf("%s: unknown step %s", where, raw)
				}
			}
		})
	}
}

// checkSDKDecodes: the SDK's own decoder reads the line, and a release it
// carries becomes a Config holding the same data.
func checkSDKDecodes(t *testing.T, where string, line []byte) {
	t.Helper()
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%s: the SDK cannot decode %.200s: %v", where, line, err)
	}
	if !m.OK && m.Event == "" && (m.Error == nil || m.Error.Code == "") {
		t.Fatalf("%s: error answer without a code: %.200s", where, line)
	}
	if m.Config == nil {
		return
	}
	cfg, err := m.config()
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var whole struct{ Config map[string]any }
	json.Unmarshal(line, &whole)
	for name, want := range whole.Config {
		var got any
		if err := cfg.Decode(name, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Config %q = %v (%v), want %v", where, name, got, err, want)
		}
	}
	if cfg.Release != m.Release || cfg.Sequence != m.Sequence || cfg.Source != SourceAgent {
		t.Fatalf("%s: Config %+v from %.200s", where, cfg, line)
	}
}

func write(t *testing.T, nc net.Conn, data []byte) {
	t.Helper()
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(data); err != nil {
		t.Fatal(err)
	}
}

// readLine returns the next line, or nil at end of stream; 5 s turns a hang into a failure.
func readLine(t *testing.T, nc net.Conn, r *bufio.Reader) []byte {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadBytes('\n')
	if errors.Is(err, io.EOF) && len(line) == 0 {
		return nil
	}
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return line
}

func decodeAny(t *testing.T, data []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%v in %.200s", err, data)
	}
	return v
}

// mismatch says why actual does not match expected ("" when it does), by the
// rules of tests/vectors/README.md.
func mismatch(expected, actual any, path string) string {
	switch want := expected.(type) {
	case string:
		switch want {
		case "$any":
			return ""
		case "$string":
			if _, ok := actual.(string); ok {
				return ""
			}
			return fmt.Sprintf("%s: expected a string, got %v", path, actual)
		case "$number":
			if _, ok := actual.(json.Number); ok {
				return ""
			}
			return fmt.Sprintf("%s: expected a number, got %v", path, actual)
		}
	case map[string]any:
		got, ok := actual.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: expected an object, got %v", path, actual)
		}
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, present := got[k]
			switch {
			case want[k] == "$absent":
				if present {
					return fmt.Sprintf("%s.%s: expected absent, got %v", path, k, v)
				}
			case !present:
				return fmt.Sprintf("%s.%s: missing", path, k)
			default:
				if why := mismatch(want[k], v, path+"."+k); why != "" {
					return why
				}
			}
		}
		return ""
	case []any:
		got, ok := actual.([]any)
		if !ok || len(got) != len(want) {
			return fmt.Sprintf("%s: expected %d elements, got %v", path, len(want), actual)
		}
		for i := range want {
			if why := mismatch(want[i], got[i], fmt.Sprintf("%s[%d]", path, i)); why != "" {
				return why
			}
		}
		return ""
	case json.Number:
		got, ok := actual.(json.Number)
		if ok {
			a, errA := want.Float64()
			b, errB := got.Float64()
			if errA == nil && errB == nil && a == b {
				return ""
			}
		}
		return fmt.Sprintf("%s: expected %v, got %v", path, want, actual)
	}
	if expected == actual { // strings, booleans, null
		return ""
	}
	return fmt.Sprintf("%s: expected %#v, got %#v", path, expected, actual)
}

func TestMismatchRules(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{`{"a": 1}`, `{"a": 1.0, "b": 2}`, true},
		{`{"a": "$absent"}`, `{"b": 1}`, true},
		{`{"a": "$absent"}`, `{"a": null}`, false},
		{`{"a": "$any"}`, `{}`, false},
		{`{"a": "$any"}`, `{"a": null}`, true},
		{`{"a": "$string"}`, `{"a": 1}`, false},
		{`{"a": "$number"}`, `{"a": 1.5}`, true},
		{`{"a": "$number"}`, `{"a": true}`, false},
		{`[1, 2]`, `[1, 2, 3]`, false},
		{`true`, `1`, false},
		{`null`, `null`, true},
		{`null`, `false`, false},
		{`"x"`, `"x"`, true},
	} {
		why := mismatch(decodeAny(t, []byte(tc.want)), decodeAny(t, []byte(tc.got)), "$")
		if (why == "") != tc.ok {
			t.Errorf("match(%s, %s) = %q, want ok=%v", tc.want, tc.got, why, tc.ok)
		}
	}
}

// TestClientAgainstReferenceServer drives the SDK itself (not a transcript)
// against the reference server: first read, the snapshot, OnChange on a
// publish, the stale flag, report, and not_found.
func TestClientAgainstReferenceServer(t *testing.T) {
	srv := newTestAgent(t).start()
	var watchAfter vector
	for _, v := range loadVectors(t) {
		if v.Name == "watch_after" {
			watchAfter = v
		}
	}
	if watchAfter.raw == nil {
		t.Fatal("vector watch_after missing")
	}
	srv.command(t, []byte(fmt.Sprintf(`{"load": %s}`, watchAfter.raw)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, WithSocket(srv.path), WithDataDir(t.TempDir()), WithLogger(nil), WithName("go-conformance"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	cfg, err := c.GetConfig(ctx, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Release != "checkout-3" || cfg.Sequence != 3 || cfg.Source != SourceAgent {
		t.Fatalf("got %+v", cfg)
	}
	if s, _ := cfg.String("checkout-api", "banner"); s != "Grüße ✓" {
		t.Fatalf("banner %q", s)
	}
	if f, _ := cfg.Float("payments-common", "limits", "1"); f != 100.5 {
		t.Fatalf("limits[1] = %v", f)
	}
	got := make(chan string, 10)
	err = c.OnChange(ctx, "checkout", func(n, o Config) error {
		ms, _ := n.Int("checkout-api", "timeoutMs")
		got <- fmt.Sprintf("%s<-%s %d", n.Release, o.Release, ms)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.command(t, []byte(`{"publish": {"group": "checkout", "release": "checkout-4", "sequence": 4,
		"config": {"checkout-api": {"timeoutMs": 900}}}}`))
	select {
	case s := <-got:
		if s != "checkout-4<-checkout-3 900" {
			t.Fatalf("callback %q", s)
		}
	case <-ctx.Done():
		t.Fatal("no callback for checkout-4")
	}
	srv.command(t, []byte(`{"set_stale": {"group": "checkout", "stale": true}}`))
	eventually(t, "stale flag", func() bool { cfg, _ := c.GetConfig(ctx, "checkout"); return cfg.Stale })
	if err := c.Report(ctx, "checkout", "error_rate", 0.002); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetConfig(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
}
