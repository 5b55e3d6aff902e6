package policy

import (
	"os"
	"testing"
)

// BenchmarkDefault is what every `hakoniwa run` without --config pays to
// load its policy: render the KISS policy, tell its format, decode and
// check it.
func BenchmarkDefault(b *testing.B) {
	for b.Loop() {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProfile loads a profile with two levels of includes and
// templates, as --profile python does.
func BenchmarkProfile(b *testing.B) {
	fsys := os.DirFS("../profiles")
	for b.Loop() {
		if _, err := LoadFS(fsys, "python.toml"); err != nil {
			b.Fatal(err)
		}
	}
}
