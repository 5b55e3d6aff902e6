// Package mountopt parses the options of the file systems and directories
// that hakoniwa makes, for the library, the policy loader and the CLI,
// so that each accepts and refuses the same things.
package mountopt

import (
	"fmt"
	"strconv"
	"strings"
)

// tmpfsSize reports whether s is a tmpfs size: digits with an optional k,
// m or g (either case), or 1 to 3 digits and %.
func tmpfsSize(s string) bool {
	digits := strings.TrimRight(s, "0123456789kKmMgG%")
	if digits != "" {
		return false
	}
	n := len(s) - len(strings.TrimLeft(s, "0123456789"))
	switch rest := s[n:]; {
	case n == 0:
		return false
	case rest == "":
		return true
	case rest == "%":
		return n <= 3
	case len(rest) == 1:
		return strings.ContainsAny(rest, "kKmMgG")
	}
	return false
}

// Tmpfs checks tmpfs options, such as "size=64M,mode=1777,ro", and returns
// them as fsconfig key-value pairs (the mode first, 0755 unless given), and
// whether the tmpfs is read-only.
func Tmpfs(s string) (opts [][2]string, ro bool, err error) {
	opts = [][2]string{{"mode", "0755"}}
	if s == "" {
		return opts, false, nil
	}
	for _, o := range strings.Split(s, ",") {
		k, v, hasV := strings.Cut(o, "=")
		switch k {
		case "ro":
			ro = true
			continue
		case "rw":
			ro = false
			continue
		case "size", "nr_blocks", "nr_inodes":
			if !tmpfsSize(v) {
				return nil, false, fmt.Errorf("bad %s %q: want a number with an optional k, m, g or %% suffix", k, v)
			}
		case "mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || m > 0o7777 {
				return nil, false, fmt.Errorf("bad mode %q: want octal, such as 1777", v)
			}
			opts[0][1] = fmt.Sprintf("%04o", m)
			continue
		case "huge":
			if !hasV {
				return nil, false, fmt.Errorf("option %q needs a value", k)
			}
			switch v {
			case "never", "always", "within_size", "advise", "deny", "force":
			default:
				return nil, false, fmt.Errorf("bad huge %q: want never, always, within_size, advise, deny or force", v)
			}
		default:
			return nil, false, fmt.Errorf("unknown option %q (known: size, nr_blocks, nr_inodes, mode, huge, ro, rw)", k)
		}
		if !hasV {
			return nil, false, fmt.Errorf("option %q needs a value", k)
		}
		opts = append(opts, [2]string{k, v})
	}
	return opts, ro, nil
}

// DirMode parses the octal mode of a directory, such as "755" or "0700".
func DirMode(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("bad mode %q: want octal, such as 755", s)
	}
	if v == 0 {
		return 0, fmt.Errorf("bad mode %q: a directory with mode 0 is unusable", s)
	}
	return uint32(v), nil
}
