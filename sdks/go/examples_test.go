package konorkestra

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeExampleIsTheBuiltOne: the Go block of docs/guide/sdk-go.md is the body
// of examples/readme/main.go, which `go build ./...` compiles.
func TestReadmeExampleIsTheBuiltOne(t *testing.T) {
	doc, err := os.ReadFile("../../docs/guide/sdk-go.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("examples/readme/main.go")
	if err != nil {
		t.Fatal(err)
	}
	checkSnippetIsBuilt(t, "docs/guide/sdk-go.md", doc, src)
}

// TestRootReadmeExampleIsTheBuiltOne: the Go block of README.md's "SDKs"
// section ("### Go") is part of examples/readme/main.go too.
func TestRootReadmeExampleIsTheBuiltOne(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("examples/readme/main.go")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?ms)^## SDKs\n.*?^### Go\n(.*?)(?:^##|\z)`).FindSubmatch(readme)
	if section == nil {
		t.Fatal(`README.md has no "### Go" under "## SDKs"`)
	}
	checkSnippetIsBuilt(t, "README.md (SDKs, Go)", section[1], src)
}

// checkSnippetIsBuilt fails unless doc's first ```go block is in src, up to
// white space.
func checkSnippetIsBuilt(t *testing.T, where string, doc, src []byte) {
	t.Helper()
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatalf("%s has no ```go block", where)
	}
	squash := func(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") }
	if !strings.Contains(squash(src), squash(m[1])) {
		t.Fatalf("the %s example is not in examples/readme/main.go:\n%s", where, m[1])
	}
}

// TestCheckoutExample runs examples/checkout against the reference server:
// it starts on the current release, rejects a failBadReload release keeping
// its config, applies the next one, and exits 0 on SIGTERM.
func TestCheckoutExample(t *testing.T) {
	srv := newTestAgent(t).start()
	srv.command(t, []byte(`{"load": {"groups": {"checkout": {"release": "checkout-3", "sequence": 3,
		"config": {"checkout-api": {"timeoutMs": 800}}}}}}`))
	bin := filepath.Join(t.TempDir(), "checkout")
	build := exec.Command(goTool(), "build", "-o", bin, "./examples/checkout")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	app := exec.Command(bin, "-socket", srv.path, "-name", "go-example")
	stdout, err := app.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder // shown on failure
	app.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("app stderr:\n%s", stderr.String())
		}
	})
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer app.Process.Kill()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case line := <-lines:
			if line != want {
				t.Fatalf("got  %q\nwant %q", line, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no line %q", want)
		}
	}
	expect(`start   release=checkout-3 sequence=3 source=agent config={"checkout-api":{"timeoutMs":800}}`)
	srv.command(t, []byte(`{"publish": {"group": "checkout", "release": "checkout-4", "sequence": 4,
		"config": {"checkout-api": {"timeoutMs": 900, "failBadReload": true}}}}`))
	expect(`failed  release=checkout-4 error="BadReload: failBadReload is set" keeping=checkout-3`)
	srv.command(t, []byte(`{"publish": {"group": "checkout", "release": "checkout-5", "sequence": 5,
		"config": {"checkout-api": {"timeoutMs": 950}}}}`))
	expect(`applied release=checkout-5 sequence=5 config={"checkout-api":{"timeoutMs":950}}`)
	app.Process.Signal(syscall.SIGTERM)
	if err := app.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); exists(p) {
		return p
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	panic(fmt.Sprint("no go tool in GOROOT or PATH"))
}
