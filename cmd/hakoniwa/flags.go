package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hakoniwa-go/hakoniwa"
	"github.com/hakoniwa-go/hakoniwa/internal/mountopt"
)

// mountFlags keeps every mount flag in one list, in command-line order, so
// that interleaved --ro-bind, --tmpfs and --file apply in the order given.
type mountFlags struct {
	list []hakoniwa.Mount
}

// mountValue is the pflag.Value of one mount flag.
type mountValue struct {
	all   *mountFlags
	parse func(string) (hakoniwa.Mount, error)
}

func (v *mountValue) String() string { return "" }
func (v *mountValue) Type() string   { return "string" }
func (v *mountValue) Set(s string) error {
	m, err := v.parse(s)
	if err != nil {
		return err
	}
	v.all.list = append(v.all.list, m)
	return nil
}

func bindParser(rw, optional bool) func(string) (hakoniwa.Mount, error) {
	return func(s string) (hakoniwa.Mount, error) {
		src, dst, _ := strings.Cut(s, ":")
		if src == "" {
			return hakoniwa.Mount{}, fmt.Errorf("want SRC[:DST], got %q", s)
		}
		if dst == "" {
			dst = src
		}
		if !strings.HasPrefix(src, "/") || !strings.HasPrefix(dst, "/") {
			return hakoniwa.Mount{}, fmt.Errorf("%q: paths must be absolute", s)
		}
		return hakoniwa.Mount{Kind: hakoniwa.KindBind, Source: src, Target: dst, RW: rw, Optional: optional}, nil
	}
}

func absTarget(s string) error {
	if !strings.HasPrefix(s, "/") {
		return fmt.Errorf("%q is not an absolute path", s)
	}
	return nil
}

func parseTmpfs(s string) (hakoniwa.Mount, error) {
	dst, opts, _ := strings.Cut(s, ":")
	m := hakoniwa.Mount{Kind: hakoniwa.KindTmpfs, Target: dst, Options: opts}
	if err := absTarget(dst); err != nil {
		return m, err
	}
	_, _, err := mountopt.Tmpfs(opts)
	return m, err
}

func parseProc(s string) (hakoniwa.Mount, error) {
	return hakoniwa.Mount{Kind: hakoniwa.KindProc, Target: s}, absTarget(s)
}

func parseDevfs(s string) (hakoniwa.Mount, error) {
	return hakoniwa.Mount{Kind: hakoniwa.KindDevfs, Target: s}, absTarget(s)
}

func parseDir(s string) (hakoniwa.Mount, error) {
	dst, mode, hasMode := strings.Cut(s, ":")
	m := hakoniwa.Mount{Kind: hakoniwa.KindDir, Target: dst, Mode: 0o700}
	if hasMode {
		v, err := mountopt.DirMode(mode)
		if err != nil {
			return m, err
		}
		m.Mode = v
	}
	return m, absTarget(dst)
}

func parseSymlink(s string) (hakoniwa.Mount, error) {
	target, link, ok := strings.Cut(s, ":")
	if !ok || target == "" || link == "" {
		return hakoniwa.Mount{}, fmt.Errorf("want TARGET:LINK, got %q", s)
	}
	return hakoniwa.Mount{Kind: hakoniwa.KindSymlink, Target: link, Link: target}, absTarget(link)
}

// parseOverlay parses LOWER[:UPPER:WORK]:DST (--overlay), or LOWER:DST
// (--tmp-overlay, tmp).
func parseOverlay(tmp bool) func(string) (hakoniwa.Mount, error) {
	return func(s string) (hakoniwa.Mount, error) {
		parts := strings.Split(s, ":")
		m := hakoniwa.Mount{Kind: hakoniwa.KindOverlay}
		switch {
		case len(parts) == 2:
			m.Source, m.Target = parts[0], parts[1]
		case len(parts) == 4 && !tmp:
			m.Source, m.Upper, m.Work, m.Target = parts[0], parts[1], parts[2], parts[3]
		case tmp:
			return m, fmt.Errorf("%q: want LOWER:DST", s)
		default:
			return m, fmt.Errorf("%q: want LOWER:UPPER:WORK:DST, or LOWER:DST for writes on a tmpfs", s)
		}
		return m, absTarget(m.Target)
	}
}

func parseFile(s string) (hakoniwa.Mount, error) {
	dst, contents, ok := strings.Cut(s, ":")
	if !ok {
		return hakoniwa.Mount{}, fmt.Errorf("want DST:CONTENTS, got %q", s)
	}
	return hakoniwa.Mount{Kind: hakoniwa.KindFile, Target: dst, Contents: []byte(contents)}, absTarget(dst)
}

// parseSize parses a size such as 64M, 1Gi or 4096. K, M, G and T and their
// Ki, Mi, Gi and Ti forms all mean powers of 1024; "unlimited" means no limit.
func parseSize(s string) (uint64, error) {
	if s == "unlimited" || s == "infinity" {
		return math.MaxUint64, nil
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, suffix := s[:i], s[i:]
	mult := uint64(1)
	unit := strings.TrimSuffix(strings.TrimSuffix(suffix, "B"), "i") // 1K, 1Ki, 1KiB
	if len(unit) > 1 || (unit == "" && suffix != "") {
		return 0, badSize(s)
	}
	switch strings.ToUpper(unit) {
	case "":
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	default:
		return 0, badSize(s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, badSize(s)
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return n * mult, nil
}

func badSize(s string) error {
	return fmt.Errorf("bad size %q: want a number with an optional K, M, G or T (or Ki, Mi, Gi, Ti) suffix", s)
}

// parseCount parses a plain count such as a number of files or seconds.
func parseCount(s string) (uint64, error) {
	if s == "unlimited" || s == "infinity" {
		return math.MaxUint64, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad number %q: want a non-negative integer", s)
	}
	return n, nil
}

// parseCPUs parses a number of cpus such as 0.5 or 2.
func parseCPUs(s string) (float64, error) {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || n != n {
		return 0, fmt.Errorf("bad number of cpus %q: want a positive number such as 0.5 or 2", s)
	}
	return n, nil
}
