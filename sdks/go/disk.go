package konorkestra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// readDisk reads the last committed release of group from the agent's data
// directory (docs/reference/protocol.md, "On-disk fallback"), read-only.
func readDisk(dataDir, group string) (Config, error) {
	if group == "." || group == ".." || strings.ContainsAny(group, "/\\\x00") {
		return Config{}, fmt.Errorf("konorkestra: invalid group name %q", group)
	}
	path := filepath.Join(dataDir, "current", group, "release.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var doc struct {
		Group    string                     `json:"group"`
		Release  string                     `json:"release"`
		Sequence int64                      `json:"sequence"`
		Digest   string                     `json:"digest"`
		Config   map[string]json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return Config{}, fmt.Errorf("konorkestra: %s: %w", path, err)
	}
	switch {
	case doc.Group != "" && doc.Group != group:
		return Config{}, fmt.Errorf("konorkestra: %s holds group %q", path, doc.Group)
	case doc.Release == "" || doc.Sequence <= 0:
		return Config{}, fmt.Errorf("konorkestra: %s: missing release or sequence", path)
	}
	return newConfig(group, doc.Release, doc.Sequence, doc.Digest, false, SourceDisk, doc.Config)
}
