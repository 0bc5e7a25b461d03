package harness

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
)

// NewRunID is a short random run id (letters and digits, valid in a path segment and a row id).
func NewRunID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "run" + hex.EncodeToString(b)
}

// WriteManifest saves a manifest as JSON.
func WriteManifest(path string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadManifest loads a manifest saved by WriteManifest.
func ReadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	m.Defaults()
	return &m, nil
}
