// Package profiles holds the ready-made policies that `hakoniwa run
// --profile NAME` loads: language sandboxes for compiling and running code,
// a shell, a build in the current directory, and an offline network tool.
// They are 1.x config files, embedded in the binary and shipped in this
// folder, so that `--config profiles/NAME.toml` loads the same thing.
// The parts they share are in include/.
package profiles

import (
	"bufio"
	"bytes"
	"embed"
	"io/fs"
	"sort"
	"strings"
)

// FS holds the profiles: NAME.toml, and the files they include.
//
//go:embed *.toml include/*.toml
var FS embed.FS

// File returns the name in FS of the profile name.
func File(name string) string { return name + ".toml" }

// Names returns the names of the profiles, sorted.
func Names() []string {
	entries, _ := fs.Glob(FS, "*.toml")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e, ".toml"))
	}
	sort.Strings(names)
	return names
}

// Summary returns the first line of a profile's leading comment: what it
// is for.
func Summary(name string) string {
	data, err := fs.ReadFile(FS, File(name))
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "#")
		if !ok {
			break
		}
		if line = strings.TrimSpace(line); line != "" {
			_, what, found := strings.Cut(line, ": ")
			if found {
				return what
			}
			return line
		}
	}
	return ""
}
