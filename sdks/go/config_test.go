package konorkestra

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func nan() float64 { return math.NaN() }

func testConfig(t *testing.T) Config {
	t.Helper()
	var sets map[string]json.RawMessage
	err := json.Unmarshal([]byte(`{
		"checkout-api": {"timeoutMs": 800, "ratio": 0.25, "whole": 3.0, "banner": "Grüße ✓", "on": true,
		                 "upstreams": [{"name": "inventory", "url": "http://inv:9000"}], "big": 1e300},
		"flags": {"one_click_buy": false}}`), &sets)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newConfig("checkout", "checkout-3", 3, "sha256:x", false, SourceAgent, sets)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAccessors(t *testing.T) {
	c := testConfig(t)
	if v, err := c.Int("checkout-api", "timeoutMs"); v != 800 || err != nil {
		t.Errorf("Int = %v, %v", v, err)
	}
	if v, err := c.Int("checkout-api", "whole"); v != 3 || err != nil {
		t.Errorf("Int(3.0) = %v, %v", v, err)
	}
	if v, err := c.Float("checkout-api", "ratio"); v != 0.25 || err != nil {
		t.Errorf("Float = %v, %v", v, err)
	}
	if v, err := c.Float("checkout-api", "timeoutMs"); v != 800 || err != nil {
		t.Errorf("Float(int) = %v, %v", v, err)
	}
	if v, err := c.String("checkout-api", "banner"); v != "Grüße ✓" || err != nil {
		t.Errorf("String = %q, %v", v, err)
	}
	if v, err := c.Bool("flags", "one_click_buy"); v || err != nil {
		t.Errorf("Bool = %v, %v", v, err)
	}
	if v, err := c.String("checkout-api", "upstreams", "0", "url"); v != "http://inv:9000" || err != nil {
		t.Errorf("array path = %q, %v", v, err)
	}
	if got := strings.Join(c.Names(), ","); got != "checkout-api,flags" {
		t.Errorf("Names = %s", got)
	}
}

func TestAccessorErrorsNameThePath(t *testing.T) {
	c := testConfig(t)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{second(c.Int("checkout-api", "ratio")), "checkout-api.ratio is 0.25, not an integer"},
		{second(c.Int("checkout-api", "big")), "not an integer"},
		{second(c.String("checkout-api", "timeoutMs")), "checkout-api.timeoutMs is 800, not a string"},
		{second(c.Bool("checkout-api", "missing")), "no checkout-api.missing"},
		{second(c.String("checkout-api", "upstreams", "1", "url")), "no checkout-api.upstreams.1"},
		{second(c.String("checkout-api", "upstreams", "01")), "no checkout-api.upstreams.01"},
		{second(c.String("checkout-api", "banner", "x")), "no checkout-api.banner.x"},
		{second(c.Float("nope")), `has no config "nope"`},
		{second(Config{}.Int("x")), `empty config has no config "x"`},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v, want it to contain %q", tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestDecodeAndRaw(t *testing.T) {
	c := testConfig(t)
	var api struct {
		TimeoutMs int     `json:"timeoutMs"`
		Ratio     float64 `json:"ratio"`
		Upstreams []struct{ Name, URL string }
	}
	if err := c.Decode("checkout-api", &api); err != nil {
		t.Fatal(err)
	}
	if api.TimeoutMs != 800 || api.Ratio != 0.25 || len(api.Upstreams) != 1 || api.Upstreams[0].URL != "http://inv:9000" {
		t.Fatalf("decoded %+v", api)
	}
	if err := c.Decode("nope", &api); err == nil {
		t.Fatal("Decode of a missing ConfigSet succeeded")
	}
	var wrong struct{ TimeoutMs string }
	if err := c.Decode("checkout-api", &wrong); err == nil || !strings.Contains(err.Error(), "checkout-api") {
		t.Fatalf("type mismatch: %v", err)
	}
	raw := c.Raw("flags")
	raw[0] = 'X' // a copy: the config is unchanged
	if v, err := c.Bool("flags", "one_click_buy"); err != nil || v || string(c.Raw("flags"))[0] != '{' {
		t.Fatal("Raw exposed the config's bytes")
	}
	if c.Raw("nope") != nil {
		t.Fatal("Raw of a missing ConfigSet")
	}
}

func TestReadDisk(t *testing.T) {
	data := t.TempDir()
	writeRelease(t, data, "checkout", 7)
	c, err := readDisk(data, "checkout")
	if err != nil || c.Release != "checkout-7" || c.Sequence != 7 || c.Source != SourceDisk || c.Stale {
		t.Fatalf("readDisk = %+v, %v", c, err)
	}
	for _, g := range []string{"..", "a/b", ".", "missing"} {
		if _, err := readDisk(data, g); err == nil {
			t.Errorf("readDisk(%q) succeeded", g)
		}
	}
	writeRelease(t, data, "other", 1)
	if _, err := readDisk(data, "other"); err != nil {
		t.Fatal(err)
	}
}
