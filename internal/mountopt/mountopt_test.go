package mountopt

import (
	"reflect"
	"strings"
	"testing"
)

func TestTmpfs(t *testing.T) {
	tests := []struct {
		in      string
		opts    [][2]string
		ro      bool
		wantErr string
	}{
		{"", [][2]string{{"mode", "0755"}}, false, ""},
		{"size=64M,mode=1777", [][2]string{{"mode", "1777"}, {"size", "64M"}}, false, ""},
		{"size=50%,nr_inodes=1k,nr_blocks=10,huge=within_size", [][2]string{{"mode", "0755"}, {"size", "50%"}, {"nr_inodes", "1k"}, {"nr_blocks", "10"}, {"huge", "within_size"}}, false, ""},
		{"ro", [][2]string{{"mode", "0755"}}, true, ""},
		{"ro,rw", [][2]string{{"mode", "0755"}}, false, ""},
		{"mode=700", [][2]string{{"mode", "0700"}}, false, ""},
		{"size=lots", nil, false, `bad size "lots"`},
		{"size=1000%", nil, false, `bad size "1000%"`},
		{"size=", nil, false, `bad size ""`},
		{"mode=9", nil, false, `bad mode "9"`},
		{"mode=17777", nil, false, `bad mode "17777"`},
		{"exec", nil, false, `unknown option "exec"`},
		{"huge", nil, false, `option "huge" needs a value`},
		{"size=1M,,", nil, false, `unknown option ""`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			opts, ro, err := Tmpfs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || ro != tt.ro || !reflect.DeepEqual(opts, tt.opts) {
				t.Fatalf("got %v, %v, %v; want %v, %v", opts, ro, err, tt.opts, tt.ro)
			}
		})
	}
}

func TestDirMode(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr string
	}{
		{"755", 0o755, ""},
		{"0700", 0o700, ""},
		{"1777", 0o1777, ""},
		{"7777", 0o7777, ""},
		{"0", 0, "unusable"},
		{"8", 0, "want octal"},
		{"17777", 0, "want octal"},
		{"", 0, "want octal"},
		{"rwx", 0, "want octal"},
	}
	for _, tt := range tests {
		got, err := DirMode(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("DirMode(%q): err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("DirMode(%q) = %o, %v; want %o", tt.in, got, err, tt.want)
		}
	}
}
