package konorkestra

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

const (
	rootSocket     = "/run/konorkestra/agent.sock"
	defaultDataDir = "/var/lib/konorkestra"
)

// An Option configures Connect.
type Option func(*settings)

type settings struct {
	socket, dataDir, name  string
	log                    *slog.Logger
	minBackoff, maxBackoff time.Duration
	callTimeout            time.Duration // for background requests (hello, acks, resubscribe)
}

// WithSocket sets the agent's socket path. Without it, Connect uses
// $KONORKESTRA_SOCKET, then /run/konorkestra/agent.sock when it exists (a
// root agent), then <data>/agent.sock.
func WithSocket(path string) Option { return func(s *settings) { s.socket = path } }

// WithDataDir sets the agent's data directory, read (never written) when the
// agent is unreachable. Without it, Connect uses $KONORKESTRA_DATA, then the
// socket's directory when it contains current/, then /var/lib/konorkestra.
func WithDataDir(dir string) Option { return func(s *settings) { s.dataDir = dir } }

// WithName sets the client name sent in hello (default: the executable's base name).
func WithName(name string) Option { return func(s *settings) { s.name = name } }

// WithLogger sets where the client logs connection changes and callback
// failures (default: slog.Default()). A nil logger discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) {
		if l == nil {
			l = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		s.log = l
	}
}

// withBackoff sets the reconnect back-off bounds (tests).
func withBackoff(lo, hi time.Duration) Option {
	return func(s *settings) { s.minBackoff, s.maxBackoff = lo, hi }
}

func newSettings(opts []Option) settings {
	s := settings{minBackoff: 50 * time.Millisecond, maxBackoff: 2 * time.Second, callTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&s)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.name == "" {
		s.name = filepath.Base(os.Args[0])
	}
	explicitData := s.dataDir
	if explicitData == "" {
		explicitData = os.Getenv("KONORKESTRA_DATA")
	}
	if s.socket == "" {
		s.socket = os.Getenv("KONORKESTRA_SOCKET")
	}
	if s.socket == "" {
		s.socket = defaultSocket(explicitData, exists(rootSocket))
	}
	if s.dataDir == "" {
		s.dataDir = defaultData(explicitData, s.socket)
	}
	return s
}

// defaultSocket follows docs/reference/protocol.md: the root agent's path, else
// <data>/agent.sock. Which agent runs shows by the root socket's existence.
func defaultSocket(data string, rootSocketExists bool) string {
	if rootSocketExists {
		return rootSocket
	}
	if data == "" {
		data = defaultDataDir
	}
	return filepath.Join(data, "agent.sock")
}

// defaultData: $KONORKESTRA_DATA (passed as env), the socket's directory when
// it holds current/, then /var/lib/konorkestra.
func defaultData(env, socket string) string {
	if env != "" {
		return env
	}
	if dir := filepath.Dir(socket); exists(filepath.Join(dir, "current")) {
		return dir
	}
	return defaultDataDir
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
