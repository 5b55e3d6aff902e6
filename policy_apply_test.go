package hakoniwa

import (
	"strings"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/policy"
)

func str(s string) *string { return &s }

// TestApplyPolicy runs a sandbox built from a 1.x policy and checks what
// the command sees.
func TestApplyPolicy(t *testing.T) {
	t.Setenv("HK_COPIED", "from the host")
	unsetName := "HK_NOT_SET_ANYWHERE"
	p, err := policy.Parse("t.toml", []byte(`
namespaces = [{ type = "uts", share = false }]
hostname = "applied"
network = { mode = "loopback" }
uidmaps = [{ container_id = 0 }]
gidmaps = [{ container_id = 0 }]
mounts = [
  { source = "/usr" },
  { type = "tmpfs", destination = "/scratch", options = "size=1M" },
  { type = "devfs", destination = "/dev" },
]
envs = [
  { name = "PATH", value = "/usr/bin" },
  { name = "HK_COPIED" },
  { name = "`+unsetName+`" },
  { name = "HK_EMPTY", value = "" },
]
limits = [{ type = "nofile", value = 42 }, { type = "nofile", value = 43 }, { type = "walltime", value = 100 }]
[filesystem]
files = [{ destination = "/etc/motd", contents = "hi\n" }]
dirs = [{ destination = "/d0" }, { destination = "/d1", mode = "751" }]
symlinks = [
  { original = "usr/bin", link = "/bin" },
  { original = "usr/lib", link = "/lib" },
  { original = "usr/lib64", link = "/lib64" },
]
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	script := `hostname; id -u; id -g; cat /etc/motd; stat -c '%a %n' /d0 /d1; readlink /bin;
ulimit -n; env | sort; ls /dev | tr '\n' ' '; echo; exec 3<>/dev/tcp/127.0.0.1/1`
	out, _ := c.Command("bash", "-c", script).CombinedOutput()
	want := []string{
		"applied\n0\n0\nhi\n700 /d0\n751 /d1\nusr/bin\n43\n",
		"HK_COPIED=from the host\nHK_EMPTY=\nPATH=/usr/bin\n",
		"null ", "pts ", "tty ",
		"Connection refused",
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(string(out), unsetName) {
		t.Errorf("an unset variable was set: %s", out)
	}
	if c.walltime.Seconds() != 100 {
		t.Errorf("walltime %v", c.walltime)
	}
}

// TestApplyPolicyNetwork checks that the policy's network mode wins over
// what the Container had, as every other setting of the policy does.
func TestApplyPolicyNetwork(t *testing.T) {
	for mode, want := range map[string]string{"none": "Network is unreachable", "loopback": "Connection refused"} {
		c := New().ShareNet(true)
		if err := c.ApplyPolicy(&policy.Policy{
			Network: &policy.Network{Mode: mode},
			Mounts:  []policy.Mount{{Source: "/usr"}},
			Filesystem: &policy.Filesystem{Symlinks: []policy.Symlink{
				{Original: "usr/bin", Link: "/bin"}, {Original: "usr/lib", Link: "/lib"}, {Original: "usr/lib64", Link: "/lib64"}}},
		}); err != nil {
			t.Fatal(err)
		}
		out, _ := c.Command("/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/1 2>&1").CombinedOutput()
		if !strings.Contains(string(out), want) {
			t.Errorf("mode %s: %q, want %q", mode, out, want)
		}
	}
}

// TestApplyPolicyErrors checks that a policy built in Go is checked as a
// loaded one is, and that a failed ApplyPolicy leaves the Container as it
// was.
func TestApplyPolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		p    policy.Policy
		want string
	}{
		{"bad mount type", policy.Policy{Mounts: []policy.Mount{{Type: "nfs", Destination: "/x"}}}, `mounts[0].type: unknown type "nfs"`},
		{"relative destination", policy.Policy{Mounts: []policy.Mount{{Source: "/usr", Destination: "usr"}}}, `mounts[0].destination: "usr" is not an absolute path`},
		{"tmpfs option", policy.Policy{Mounts: []policy.Mount{{Type: "tmpfs", Destination: "/t", Options: "exec"}}}, `mounts[0].options: unknown option "exec"`},
		{"landlock", policy.Policy{Landlock: &policy.Landlock{Resources: []policy.LandlockResource{{Type: "fs", Unrestrict: true}}, FS: []policy.LandlockFS{{Path: "/usr", Access: "r"}}}}, "landlock.fs[0]: fs is unrestricted"},
		{"hostname and shared uts", policy.Policy{Hostname: str("h"), Namespaces: []policy.Namespace{{Type: "uts", Share: true}}}, "hostname: the hostname cannot be set with the uts namespace shared"},
		{"limit", policy.Policy{Limits: []policy.Limit{{Type: "rss", Value: 1}}}, `limits[0].type: unknown limit "rss"`},
		{"small memory", policy.Policy{Limits: []policy.Limit{{Type: "memory", Value: 1}}}, `limits[0]: memory 1: want at least 1048576 (1M) bytes`},
		{"swap below memory", policy.Policy{Limits: []policy.Limit{{Type: "memory", Value: 1 << 30}, {Type: "memory_swap", Value: 1 << 29}}},
			`limits[1]: memory_swap 536870912: want at least memory (1073741824): it limits memory and swap together`},
		{"env name", policy.Policy{Envs: []policy.Env{{Name: "A=B"}}}, `envs[0].name: bad variable name "A=B"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			before := *c
			err := c.ApplyPolicy(&tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if len(c.mounts) != len(before.mounts) || c.hostname != before.hostname || c.loopback || len(c.env) != 0 {
				t.Errorf("the Container changed: %+v", c)
			}
			if _, err := FromPolicy(&tt.p); err == nil {
				t.Errorf("FromPolicy accepted it")
			}
		})
	}
}
