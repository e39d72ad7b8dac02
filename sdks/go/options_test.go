package konorkestra

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSocketAndDataDefaults(t *testing.T) {
	if got := defaultSocket("", true); got != "/run/konorkestra/agent.sock" {
		t.Errorf("root agent: %s", got)
	}
	if got := defaultSocket("/srv/k", false); got != "/srv/k/agent.sock" {
		t.Errorf("data agent: %s", got)
	}
	if got := defaultSocket("", false); got != "/var/lib/konorkestra/agent.sock" {
		t.Errorf("default: %s", got)
	}

	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	if got := defaultData("", sock); got != "/var/lib/konorkestra" {
		t.Errorf("no current/: %s", got)
	}
	os.Mkdir(filepath.Join(dir, "current"), 0o755)
	if got := defaultData("", sock); got != dir {
		t.Errorf("socket dir with current/: %s", got)
	}
	if got := defaultData("/env", sock); got != "/env" {
		t.Errorf("env: %s", got)
	}
}

func TestOptionPrecedence(t *testing.T) {
	t.Setenv("KONORKESTRA_SOCKET", "/env/agent.sock")
	t.Setenv("KONORKESTRA_DATA", "/env-data")
	s := newSettings(nil)
	if s.socket != "/env/agent.sock" || s.dataDir != "/env-data" {
		t.Errorf("env: %+v", s)
	}
	s = newSettings([]Option{WithSocket("/x.sock"), WithDataDir("/d"), WithName("app")})
	if s.socket != "/x.sock" || s.dataDir != "/d" || s.name != "app" {
		t.Errorf("explicit: %+v", s)
	}
	t.Setenv("KONORKESTRA_SOCKET", "")
	if s := newSettings(nil); !exists(rootSocket) && s.socket != "/env-data/agent.sock" {
		t.Errorf("socket from data dir: %s", s.socket)
	}
}
