package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// errorCase is a file with one problem, and where and what it is.
type errorCase struct {
	name string
	text string
	at   place    // File is always "p.toml"
	msgs []string // substrings of the message
}

func runErrorCases(t *testing.T, tests []errorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErr(t, "p.toml", tt.text)
			tt.at.File = "p.toml"
			wantOne(t, errs, tt.at, tt.msgs...)
			// The rendering is file:line:col: key: message.
			e := errs[0]
			want := fmt.Sprintf("p.toml:%d:%d: ", e.Line, e.Col)
			if e.Line == 0 {
				want = "p.toml: "
			}
			if e.Key != "" {
				want += e.Key + ": "
			}
			if got := e.Error(); got != want+e.Msg {
				t.Errorf("Error() = %q, want %q", got, want+e.Msg)
			}
		})
	}
}

// TestValidate1 has a file for every rule of a 1.x file.
func TestValidate1(t *testing.T) {
	long := strings.Repeat("h", 65)
	runErrorCases(t, []errorCase{
		{"unknown namespace", "namespaces = [\n  { type = \"ipc\" },\n  { type = \"user\", share = true },\n]\n",
			place{Line: 3, Col: 5, Key: "namespaces[1].type"}, []string{`unknown namespace type "user"`, "always new"}},
		{"bind without source", "mounts = [\n  { source = \"/a\" },\n  { destination = \"/b\" },\n]\n",
			place{Line: 3, Col: 3, Key: "mounts[1]"}, []string{"a bind needs a source"}},
		{"relative bind source", "\nmounts = [{ source = \"usr\" }]\n",
			place{Line: 2, Col: 13, Key: "mounts[0].source"}, []string{`"usr" is not an absolute path`}},
		{"bind source with NUL", "mounts = [{ source = \"/a\\u0000b\" }]\n",
			place{Line: 1, Col: 13, Key: "mounts[0].source"}, []string{"contains a NUL byte"}},
		{"bind with options", "mounts = [{ source = \"/a\",\n  options = \"size=1M\" }]\n",
			place{Line: 2, Col: 3, Key: "mounts[0].options"}, []string{"only a tmpfs has options"}},
		{"tmpfs with a bad size", "mounts = [\n  { type = \"tmpfs\", destination = \"/t\", options = \"mode=1777,size=lots\" },\n]\n",
			place{Line: 2, Col: 41, Key: "mounts[0].options"}, []string{`bad size "lots"`}},
		{"tmpfs with a bad mode", "mounts = [{ type = \"tmpfs\", destination = \"/t\", options = \"mode=999\" }]\n",
			place{Line: 1, Col: 49, Key: "mounts[0].options"}, []string{`bad mode "999"`}},
		{"tmpfs with an unknown option", "mounts = [{ type = \"tmpfs\", destination = \"/t\", options = \"noexec\" }]\n",
			place{Line: 1, Col: 49, Key: "mounts[0].options"}, []string{`unknown option "noexec"`}},
		{"tmpfs option without its value", "mounts = [{ type = \"tmpfs\", destination = \"/t\", options = \"huge\" }]\n",
			place{Line: 1, Col: 49, Key: "mounts[0].options"}, []string{`option "huge" needs a value`}},
		{"tmpfs huge value", "mounts = [{ type = \"tmpfs\", destination = \"/t\", options = \"huge=bogus\" }]\n",
			place{Line: 1, Col: 49, Key: "mounts[0].options"}, []string{`bad huge "bogus"`}},
		{"bind over the root", "mounts = [{ source = \"/\" }]\n",
			place{Line: 1, Col: 11, Key: "mounts[0]"}, []string{"cannot replace the root"}},
		{"tmpfs over the root", "mounts = [{ type = \"tmpfs\", destination = \"//.\" }]\n",
			place{Line: 1, Col: 11, Key: "mounts[0]"}, []string{"cannot replace the root"}},
		{"dir at the root", "[filesystem]\ndirs = [{ destination = \"/\" }]\n",
			place{Line: 2, Col: 11, Key: "filesystem.dirs[0].destination"}, []string{"the root already exists"}},
		{"symlink at the root", "[filesystem]\nsymlinks = [{ original = \"x\", link = \"/\" }]\n",
			place{Line: 2, Col: 31, Key: "filesystem.symlinks[0].link"}, []string{"the root already exists"}},
		{"symlink target with NUL", "[filesystem]\nsymlinks = [{ original = \"a\\u0000\", link = \"/l\" }]\n",
			place{Line: 2, Col: 15, Key: "filesystem.symlinks[0].original"}, []string{"NUL"}},
		{"relative destination", "mounts = [\n  { source = \"/a\", destination = \"b\" },\n]\n",
			place{Line: 2, Col: 20, Key: "mounts[0].destination"}, []string{`"b" is not an absolute path`}},
		{"tmpfs with source", "[[mounts]]\ntype = \"tmpfs\"\nsource = \"/a\"\ndestination = \"/t\"\n",
			place{Line: 3, Col: 1, Key: "mounts[0].source"}, []string{"a tmpfs has no source"}},
		{"tmpfs without destination", "[[mounts]]\nsource = \"/a\"\n[[mounts]]\ntype = \"tmpfs\"\n",
			place{Line: 3, Col: 3, Key: "mounts[1]"}, []string{"a tmpfs needs a destination"}},
		{"optional devfs", "mounts = [{ type = \"devfs\", destination = \"/dev\", optional = true }]\n",
			place{Line: 1, Col: 51, Key: "mounts[0].optional"}, []string{"only a bind can be optional"}},
		{"proc with options", "mounts = [{ type = \"proc\", destination = \"/proc\", options = \"x\" }]\n",
			place{Line: 1, Col: 51, Key: "mounts[0].options"}, []string{"only a tmpfs has options"}},
		{"devfs rw", "mounts = [{ type = \"devfs\", destination = \"/dev\", rw = true }]\n",
			place{Line: 1, Col: 51, Key: "mounts[0].rw"}, []string{"a devfs is always mounted", "remove rw"}},
		{"unknown mount type", "mounts = [\n{ source = \"/a\" },\n{ type = \"overlay\", destination = \"/o\" },\n]\n",
			place{Line: 3, Col: 3, Key: "mounts[1].type"}, []string{`unknown type "overlay"`}},
		{"mount type is case-sensitive", "mounts = [{ type = \"TMPFS\", destination = \"/o\" }]\n",
			place{Line: 1, Col: 13, Key: "mounts[0].type"}, []string{`unknown type "TMPFS"`}},
		{"relative file destination", "[filesystem]\nfiles = [\n  { destination = \"/a\", contents = \"\" },\n  { destination = \"etc/hosts\", contents = \"x\" },\n]\n",
			place{Line: 4, Col: 5, Key: "filesystem.files[1].destination"}, []string{`"etc/hosts" is not an absolute path`}},
		{"file without destination", "[filesystem]\nfiles = [{ contents = \"x\" }]\n",
			place{Line: 2, Col: 10, Key: "filesystem.files[0].destination"}, []string{"empty path"}},
		{"relative dir", "filesystem.dirs = [{ destination = \"d\" }]\n",
			place{Line: 1, Col: 22, Key: "filesystem.dirs[0].destination"}, []string{`"d" is not an absolute path`}},
		{"dir mode not octal", "[filesystem]\ndirs = [\n  { destination = \"/d\", mode = \"0789\" },\n]\n",
			place{Line: 3, Col: 25, Key: "filesystem.dirs[0].mode"}, []string{`bad mode "0789"`}},
		{"dir mode 0", "[[filesystem.dirs]]\ndestination = \"/d\"\nmode = \"000\"\n",
			place{Line: 3, Col: 1, Key: "filesystem.dirs[0].mode"}, []string{"mode 0 is unusable"}},
		{"dir mode too large", "[[filesystem.dirs]]\ndestination = \"/d\"\nmode = \"17777\"\n",
			place{Line: 3, Col: 1, Key: "filesystem.dirs[0].mode"}, []string{`bad mode "17777"`}},
		{"relative symlink", "[filesystem]\nsymlinks = [{ original = \"/a\", link = \"b\" }]\n",
			place{Line: 2, Col: 32, Key: "filesystem.symlinks[0].link"}, []string{`"b" is not an absolute path`}},
		{"symlink without original", "[filesystem]\nsymlinks = [{ link = \"/b\" }]\n",
			place{Line: 2, Col: 13, Key: "filesystem.symlinks[0].original"}, []string{"the link needs a target"}},
		{"env name with =", "envs = [\n  { name = \"A=B\", value = \"x\" },\n]\n",
			place{Line: 2, Col: 5, Key: "envs[0].name"}, []string{`bad variable name "A=B"`}},
		{"empty env name", "envs = [{ name = \"\" }]\n",
			place{Line: 1, Col: 11, Key: "envs[0].name"}, []string{`bad variable name ""`}},
		{"env name with NUL", "envs = [{ name = \"A\\u0000\" }]\n",
			place{Line: 1, Col: 11, Key: "envs[0].name"}, []string{"bad variable name"}},
		{"env without name", "envs = [{ value = \"x\" }]\n",
			place{Line: 1, Col: 9, Key: "envs[0].name"}, []string{`bad variable name ""`}},
		{"env value with NUL", "envs = [{ name = \"A\", value = \"a\\u0000\" }]\n",
			place{Line: 1, Col: 11, Key: "envs[0].name"}, []string{"the value of A contains a NUL byte"}},
		{"network options with none", "[network]\nmode = \"none\"\noptions = [\"x\"]\n",
			place{Line: 3, Col: 1, Key: "network.options"}, []string{`options are for the pasta and slirp4netns modes, not "none"`}},
		{"network vde", "network = { mode = \"vde\", options = [\"--mtu=1500\"] }\n",
			place{Line: 1, Col: 13, Key: "network.mode"}, []string{`unknown mode "vde" (want none, loopback, host, pasta or slirp4netns)`}},
		{"unknown network mode", "network = { mode = \"bridge\" }\n",
			place{Line: 1, Col: 13, Key: "network.mode"}, []string{`unknown mode "bridge"`}},
		{"network dns not an address", "[network]\nmode = \"host\"\ndns = [\"1.1.1.1\", \"dns.example\"]\n",
			place{Line: 3, Col: 19, Key: "network.dns[1]"}, []string{`"dns.example" is not an IP address`}},
		{"network dns none with others", "network = { mode = \"pasta\", dns = [\"none\", \"1.1.1.1\"] }\n",
			place{Line: 1, Col: 36, Key: "network.dns[0]"}, []string{`"none" means no name server, and cannot be given with others`}},
		{"network dns without a network", "network = { mode = \"loopback\", dns = [\"1.1.1.1\"] }\n",
			place{Line: 1, Col: 39, Key: "network.dns[0]"}, []string{`the sandbox has no network to reach a name server with (mode "loopback")`}},
		{"network publish bad", "network = { mode = \"pasta\", publish = [\"80\"] }\n",
			place{Line: 1, Col: 40, Key: "network.publish[0]"}, []string{`"80": want [HOSTIP:]HOSTPORT:SANDBOXPORT`}},
		{"network publish without a helper", "network = { mode = \"host\", publish = [\"8080:80\"] }\n",
			place{Line: 1, Col: 39, Key: "network.publish[0]"}, []string{`needs mode pasta or slirp4netns, not "host"`}},
		{"network publish IPv6 with slirp4netns", "network = { mode = \"slirp4netns\", publish = [\"[::1]:8080:80\"] }\n",
			place{Line: 1, Col: 46, Key: "network.publish[0]"}, []string{`slirp4netns forwards IPv4 only`}},
		{"network allow_connect bad", "network = { mode = \"pasta\", allow_connect = [\"192.0.2.1/8:443\"] }\n",
			place{Line: 1, Col: 46, Key: "network.allow_connect[0]"}, []string{`192.0.2.1/8 has bits set past /8`}},
		{"network allow_connect without a helper", "network = { mode = \"none\", allow_connect = [\"example.com\"] }\n",
			place{Line: 1, Col: 45, Key: "network.allow_connect[0]"}, []string{`needs mode pasta or slirp4netns, not "none"`}},
		{"network without mode", "[network]\n",
			place{Line: 1, Col: 2, Key: "network.mode"}, []string{`unknown mode ""`}},
		{"landlock unknown resource", "[landlock]\nresources = [{ type = \"udp\", unrestrict = true }]\n",
			place{Line: 2, Col: 16, Key: "landlock.resources[0].type"}, []string{`unknown resource "udp"`}},
		{"landlock fs rule with fs unrestricted", "[landlock]\nresources = [{ type = \"fs\", unrestrict = true }]\nfs = [{ path = \"/usr\", access = \"R\" }]\n",
			place{Line: 3, Col: 7, Key: "landlock.fs[0]"}, []string{"fs is unrestricted", "this rule would do nothing"}},
		{"landlock net rule with tcp.connect unrestricted", "[landlock]\nresources = [{ type = \"tcp.connect\", unrestrict = true }]\nnet = [{ port = 80, access = \"tcp.connect\" }]\n",
			place{Line: 3, Col: 8, Key: "landlock.net[0]"}, []string{"tcp.connect is unrestricted"}},
		{"rootdir relative", "\nrootdir = { path = \"srv/root\", rw = true }\n",
			place{Line: 2, Col: 13, Key: "rootdir.path"}, []string{`"srv/root" is not an absolute path`}},
		{"rootfs relative", "rootfs = \"alpine\"\n",
			place{Line: 1, Col: 1, Key: "rootfs"}, []string{`"alpine" is not an absolute path`}},
		{"uidmap container_id too large", "uidmaps = [{ container_id = 4294967295 }]\n",
			place{Line: 1, Col: 14, Key: "uidmaps[0].container_id"}, []string{"want an id from 0 to 4294967294"}},
		{"uidmap host_id too large", "uidmaps = [{ container_id = 0, host_id = 4294967295 }]\n",
			place{Line: 1, Col: 32, Key: "uidmaps[0].host_id"}, []string{"want an id from 0 to 4294967294"}},
		{"uidmaps overlapping inside", "uidmaps = [{ container_id = 0 }, { container_id = 0, host_id = 100000, count = 10 }]\n",
			place{Line: 1, Col: 34, Key: "uidmaps[1]"}, []string{"its ids inside overlap those of uidmaps[0]"}},
		{"gidmaps overlapping on the host", "gidmaps = [{ container_id = 0, host_id = 100000, count = 10 }, { container_id = 10, host_id = 100005 }]\n",
			place{Line: 1, Col: 64, Key: "gidmaps[1]"}, []string{"its ids on the host overlap those of gidmaps[0]"}},
		{"gidmap of no ids", "\ngidmaps = [{ container_id = 0, count = 0 }]\n",
			place{Line: 2, Col: 32, Key: "gidmaps[0].count"}, []string{"want a count from 1"}},
		{"empty hostname", "hostname = \"\"\n",
			place{Line: 1, Col: 1, Key: "hostname"}, []string{`"": want 1 to 64 bytes`}},
		{"long hostname", "hostname = \"" + long + "\"\n",
			place{Line: 1, Col: 1, Key: "hostname"}, []string{"want 1 to 64 bytes"}},
		{"hostname with NUL", "# x\nhostname = \"a\\u0000\"\n",
			place{Line: 2, Col: 1, Key: "hostname"}, []string{"want 1 to 64 bytes"}},
		{"unknown limit", "limits = [\n  { type = \"cpu\", value = 1 },\n  { type = \"rss\", value = 1 },\n]\n",
			place{Line: 3, Col: 5, Key: "limits[1].type"}, []string{`unknown limit "rss"`, "as, core, cpu, fsize, nofile, nproc, stack, walltime"}},
		{"walltime too large", "limits = [{ type = \"walltime\", value = 1000000001 }]\n",
			place{Line: 1, Col: 11, Key: "limits[0]"}, []string{"walltime 1000000001: want at most 1000000000 seconds"}},
		{"empty seccomp path", "[seccomp]\npath = \"\"\n",
			place{Line: 1, Col: 2, Key: "seccomp"}, []string{"want path = a built-in profile's name"}},
		{"seccomp without path", "[seccomp]\n",
			place{Line: 1, Col: 2, Key: "seccomp"}, []string{"want path = a built-in profile's name"}},
		{"seccomp profile file missing", "seccomp = { path = \"/no/such/profile.json\" }\n",
			place{Line: 1, Col: 13, Key: "seccomp.path"}, []string{"seccomp profile: open /no/such/profile.json: no such file or directory"}},
		{"seccomp path and list", "seccomp = { path = \"docker\", syscalls = [\"read\"] }\n",
			place{Line: 1, Col: 30, Key: "seccomp.syscalls"}, []string{"a 0.5 policy key, but seccomp.path (line 1) is a 1.x config key"}},
		{"seccomp unknown syscall", "seccomp = { syscalls = [\"read\", \"no_such_call\"] }\n",
			place{Line: 1, Col: 13, Key: "seccomp.syscalls"}, []string{`unknown syscall "no_such_call"`}},
		{"cmdline with NUL", "[command]\ncmdline = [\"/bin/echo\", \"a\\u0000\"]\n",
			place{Line: 2, Col: 25, Key: "command.cmdline[1]"}, []string{"contains a NUL byte"}},
		{"empty program name", "[command]\ncmdline = [\"\", \"x\"]\n",
			place{Line: 2, Col: 12, Key: "command.cmdline[0]"}, []string{"the program name is empty"}},
		{"relative cwd", "[command]\ncmdline = [\"x\"]\ncwd = \"src\"\n",
			place{Line: 3, Col: 1, Key: "command.cwd"}, []string{`"src" is not an absolute path`}},
	})
}

// TestValidateMerged has a file for every rule checked once the includes
// are merged.
func TestValidateMerged(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"hostname with uts shared", "namespaces = [{ type = \"uts\", share = true }]\nhostname = \"h\"\n",
			place{Line: 2, Col: 1, Key: "hostname"}, []string{"the hostname cannot be set with the uts namespace shared"}},
		{"host network with network unshared", "network = { mode = \"host\" }\nnamespaces = [{ type = \"network\", share = false }]\n",
			place{Line: 1, Col: 13, Key: "network.mode"}, []string{`"host" conflicts with namespaces { type = "network", share = false }`}},
		{"loopback with network shared", "[network]\nmode = \"loopback\"\n[[namespaces]]\ntype = \"network\"\nshare = true\n",
			place{Line: 2, Col: 1, Key: "network.mode"}, []string{`"loopback" conflicts with namespaces { type = "network", share = true }`}},
		{"none with network shared last", "namespaces = [{ type = \"network\" }, { type = \"network\", share = true }]\n\nnetwork = { mode = \"none\" }\n",
			place{Line: 3, Col: 13, Key: "network.mode"}, []string{`"none" conflicts`, "share = true"}},
		{"network without mode, network shared", "namespaces = [{ type = \"network\", share = true }]\n[network]\n",
			place{Line: 2, Col: 2, Key: "network.mode"}, []string{`unknown mode ""`}},
	})
	// A host network with the network namespace shared, or named only by
	// the mode, is fine; so is a hostname with uts unshared last.
	for _, text := range []string{
		"network = { mode = \"host\" }\nnamespaces = [{ type = \"network\", share = true }]\n",
		"network = { mode = \"host\" }\n",
		"network = { mode = \"none\" }\nnamespaces = [{ type = \"network\", share = true }, { type = \"network\" }]\n",
		"hostname = \"h\"\nnamespaces = [{ type = \"uts\", share = true }, { type = \"uts\" }]\n",
	} {
		mustParse(t, "p.toml", text)
	}
}

// TestValidate05 has a file for every rule of a 0.5 policy.
func TestValidate05(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"negative uid", "share_net = true\nuid = -1\n",
			place{Line: 2, Col: 1, Key: "uid"}, []string{"-1: want an id from 0 to 4294967294"}},
		{"gid too large", "gid = 4294967295\n",
			place{Line: 1, Col: 1, Key: "gid"}, []string{"4294967295: want an id from 0 to 4294967294"}},
		{"empty hostname", "share_net = true\nhostname = \"\"\n",
			place{Line: 2, Col: 1, Key: "hostname"}, []string{"want 1 to 64 bytes"}},
		{"hostname with share_uts", "share_uts = true\nhostname = \"h\"\n",
			place{Line: 2, Col: 1, Key: "hostname"}, []string{"the hostname cannot be set with share_uts = true"}},
		{"bind without source", "mounts = [\n  { source = \"/a\", target = \"/a\" },\n  { target = \"/b\" },\n]\n",
			place{Line: 3, Col: 3, Key: "mounts[1]"}, []string{"a bind needs a source"}},
		{"relative source", "mounts = [{ source = \"a\", target = \"/a\" }]\n",
			place{Line: 1, Col: 13, Key: "mounts[0].source"}, []string{`"a" is not an absolute path`}},
		{"relative target", "mounts = [\n{ source = \"/a\", target = \"/a\" },\n{ source = \"/b\", target = \"b\" },\n]",
			place{Line: 3, Col: 18, Key: "mounts[1].target"}, []string{`"b" is not an absolute path`}},
		{"unknown fstype", "mounts = [\n{ source = \"/a\", target = \"/a\" },\n{ fstype = \"proc\", target = \"/proc\" },\n]",
			place{Line: 3, Col: 3, Key: "mounts[1].fstype"}, []string{`unknown fstype "proc"`}},
		{"tmpfs with source", "mounts = [{ fstype = \"tmpfs\", source = \"/a\", target = \"/t\" }]\n",
			place{Line: 1, Col: 31, Key: "mounts[0].source"}, []string{"a tmpfs has no source"}},
		{"optional tmpfs", "mounts = [{ fstype = \"tmpfs\", target = \"/t\", optional = true }]\n",
			place{Line: 1, Col: 46, Key: "mounts[0].optional"}, []string{"only a bind can be optional"}},
		{"tmpfs without target", "[[mounts]]\nfstype = \"tmpfs\"\n",
			place{Line: 1, Col: 3, Key: "mounts[0]"}, []string{"a tmpfs needs a target"}},
		{"relative file target", "files = [\n{ target = \"/a\", contents = \"\" },\n{ target = \"etc/hosts\", contents = \"x\" },\n]",
			place{Line: 3, Col: 3, Key: "files[1].target"}, []string{`"etc/hosts" is not an absolute path`}},
		{"file without target", "files = [{ contents = \"x\" }]",
			place{Line: 1, Col: 10, Key: "files[0].target"}, []string{"empty path"}},
		{"env name with =", "[env]\n\"A=B\" = \"x\"\n",
			place{Line: 2, Col: 1, Key: `env."A=B"`}, []string{`bad variable name "A=B"`}},
		{"empty env name", "[env]\n\"\" = \"x\"\n",
			place{Line: 2, Col: 1, Key: `env.""`}, []string{`bad variable name ""`}},
		{"env name with NUL", "[env]\n\"A\\u0000\" = \"x\"\n",
			place{Line: 2, Col: 1, Key: `env."A\u0000"`}, []string{`bad variable name "A\x00"`}},
		{"env value with NUL", "[env]\nA = \"\\u0000\"\n",
			place{Line: 2, Col: 1, Key: "env.A"}, []string{"the value of A contains a NUL byte"}},
		{"walltime too large", "[limits]\ncpu = 1\nwalltime = 9999999999\n",
			place{Line: 3, Col: 1, Key: "limits.walltime"}, []string{"want at most 1000000000 seconds"}},
		{"seccomp unknown syscall", "[seccomp]\nsyscalls = [\"read\", \"nope\"]\ndismatch_action = \"kill_process\"\n",
			place{Line: 2, Col: 1, Key: "seccomp.syscalls"}, []string{`unknown syscall "nope"`}},
		{"seccomp bad action", "share_net = true\nseccomp = { syscalls = [\"read\"], dismatch_action = \"deny\" }\n",
			place{Line: 2, Col: 34, Key: "seccomp.dismatch_action"}, []string{`dismatch_action "deny": want kill_process, allow or log`}},
	})
}

// TestValidateAll checks that every problem of a file is reported, in
// order.
func TestValidateAll(t *testing.T) {
	errs := parseErr(t, "p.toml", "mounts = [\n  { source = \"a\" },\n  { type = \"x\" },\n]\nhostname = \"\"\n")
	var got []place
	for _, e := range errs {
		got = append(got, placeOf(e))
	}
	want := []place{
		{"p.toml", 2, 5, "mounts[0].source"},
		{"p.toml", 3, 5, "mounts[1].type"},
		{"p.toml", 5, 1, "hostname"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors at %+v, want %+v\n%v", got, want, ErrorList(errs))
	}
}

// TestDecodeErrors checks unknown keys, values of the wrong type and bad
// TOML.
func TestDecodeErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		// Unknown keys, with the full path.
		{"unknown top-level key", "hostname = \"h\"\n\nshare_ipc = true\n",
			place{Line: 3, Col: 1, Key: "share_ipc"}, []string{"unknown key"}},
		{"unknown key indented", "hostname = \"h\"\n   bogus = 1\n",
			place{Line: 2, Col: 4, Key: "bogus"}, []string{"unknown key"}},
		{"unknown key in an inline table", "mounts = [\n  { source = \"/a\" },\n  { source = \"/b\", fstyp = \"x\" },\n]\n",
			place{Line: 3, Col: 20, Key: "mounts[1].fstyp"}, []string{"unknown key"}},
		{"unknown key in an [[array]] table", "[[mounts]]\nsource = \"/a\"\n[[mounts]]\nsource = \"/b\"\nfstyp = \"x\"\n",
			place{Line: 5, Col: 1, Key: "mounts[1].fstyp"}, []string{"unknown key"}},
		{"unknown key in a [table]", "[command]\ncmdline = [\"x\"]\nargs = []\n",
			place{Line: 3, Col: 1, Key: "command.args"}, []string{"unknown key"}},
		{"unknown key in a nested [[array]] table", "[[filesystem.dirs]]\ndestination = \"/a\"\n[[filesystem.dirs]]\ndestination = \"/b\"\nowner = 0\n",
			place{Line: 5, Col: 1, Key: "filesystem.dirs[1].owner"}, []string{"unknown key"}},
		{"unknown table", "[namespace]\nnet = true\n",
			place{Line: 1, Col: 2, Key: "namespace"}, []string{"unknown key"}},
		{"unknown 0.5 limit", "[limits]\ncpu = 1\nrss = 2\n",
			place{Line: 3, Col: 1, Key: "limits.rss"}, []string{"unknown key"}},
		{"unknown key in a 0.5 mount", "mounts = [\n  { source = \"/a\", target = \"/a\", mode = \"ro\" },\n]\n",
			place{Line: 2, Col: 35, Key: "mounts[0].mode"}, []string{"unknown key"}},
		// Keys renamed, with what to write.
		{"hint readonly", "mounts = [{ source = \"/a\", readonly = true }]\n",
			place{Line: 1, Col: 28, Key: "mounts[0].readonly"}, []string{"unknown key; write rw = false (the default)"}},
		{"hint uidmap", "uidmap = { container_id = 0 }\n",
			place{Line: 1, Col: 1, Key: "uidmap"}, []string{"unknown key; write uidmaps = [{ container_id = N }]"}},
		{"0.5 key after a 1.x mount", "mounts = [{ source = \"/a\", destination = \"/a\" }, { source = \"/b\" }]\nfiles = 1\n",
			place{Line: 2, Col: 1, Key: "files"}, []string{"a 0.5 policy key, but mounts[0].destination (line 1) is a 1.x config key"}},
		// Values of the wrong type.
		{"string wanted", "\n\nhostname = 5\n",
			place{Line: 3, Col: 12, Key: "hostname"}, []string{"want a string, got a TOML integer"}},
		{"boolean wanted", "\nmounts = [{ rw = \"yes\", source = \"/a\" }]\n",
			place{Line: 2, Col: 18, Key: "mounts[0].rw"}, []string{"want a boolean (true or false), got a TOML string"}},
		{"array wanted", "\nmounts = \"x\"\n",
			place{Line: 2, Col: 10, Key: "mounts"}, []string{"want an array, got a TOML string"}},
		{"array wanted in a table", "\ncommand = { cmdline = \"x\" }\n",
			place{Line: 2, Col: 23, Key: "command.cmdline"}, []string{"want an array, got a TOML string"}},
		{"integer wanted", "uid = \"x\"\n",
			place{Line: 1, Col: 7, Key: "uid"}, []string{"want an integer, got a TOML string"}},
		{"string wanted in an array", "[seccomp]\nsyscalls = [1]\n",
			place{Line: 2, Col: 13, Key: "seccomp.syscalls[0]"}, []string{"want a string, got a TOML integer"}},
		{"string wanted in a 0.5 [env]", "[env]\nA = 1\n",
			place{Line: 2, Col: 5, Key: "env.A"}, []string{"want a string, got a TOML integer"}},
		{"0.5 boolean wanted", "share_net = 1\n",
			place{Line: 1, Col: 13, Key: "share_net"}, []string{"want a boolean (true or false), got a TOML integer"}},
		{"0.5 integer wanted", "\ngid = 1.5\n",
			place{Line: 2, Col: 7, Key: "gid"}, []string{"want an integer, got a TOML float"}},
		{"0.5 limit as a string", "[limits]\n\nnofile = \"64\"",
			place{Line: 3, Col: 10, Key: "limits.nofile"}, []string{"want a number, got a TOML string"}},
		{"0.5 limit too large", "[limits]\nas = 99999999999999999999",
			place{Line: 2, Col: 6, Key: "limits.as"}, []string{"too large"}},
		{"0.5 file contents as an integer", "files = [{ target = \"/a\", contents = 1 }]",
			place{Line: 1, Col: 38, Key: "files[0].contents"}, []string{"want a string, got a TOML integer"}},
		{"0.5 mount source as an integer", "mounts = [{ source = 1, target = \"/a\" }]",
			place{Line: 1, Col: 22, Key: "mounts[0].source"}, []string{"want a string, got a TOML integer"}},
		{"negative limit", "limits = [{ type = \"cpu\", value = -1 }]\n",
			place{Line: 1, Col: 11, Key: "limits[0]"}, []string{"cpu -1: want a number of 0 or more"}},
		{"negative 0.5 limit", "[limits]\ncpu = -1",
			place{Line: 2, Col: 1, Key: "limits.cpu"}, []string{"cpu -1: want a number of 0 or more"}},
		{"fractional limit", "limits = [{ type = \"nofile\", value = 1.5 }]\n",
			place{Line: 1, Col: 11, Key: "limits[0]"}, []string{"nofile 1.5: want a whole number"}},
		{"infinite limit", "[limits]\nas = inf",
			place{Line: 2, Col: 1, Key: "limits.as"}, []string{"as +Inf: want a number of 0 or more"}},
		{"too few cpus", "limits = [{ type = \"cpus\", value = 0.001 }]\n",
			place{Line: 1, Col: 11, Key: "limits[0]"}, []string{"cpus 0.001: want a number of cpus from 0.01"}},
		{"small memory", "[limits]\nmemory = 4096",
			place{Line: 2, Col: 1, Key: "limits.memory"}, []string{"memory 4096: want at least 1048576 (1M) bytes"}},
		{"no pids", "limits = [{ type = \"pids\", value = 0 }]\n",
			place{Line: 1, Col: 11, Key: "limits[0]"}, []string{"pids 0: want 1 or more"}},
		{"negative container_id", "uidmaps = [{ container_id = -1 }]\n",
			place{Line: 1, Col: 29, Key: "uidmaps[0].container_id"}, []string{"negative"}},
		{"port too large", "landlock.net = [{ port = 70000, access = \"tcp.bind\" }]\n",
			place{Line: 1, Col: 26, Key: "landlock.net[0].port"}, []string{"70000"}},
		{"integer too large for TOML", "limits = [{ type = \"as\", value = 18446744073709551615 }]\n",
			place{Line: 1, Col: 34, Key: "limits[0].value"}, []string{"too large"}},
		// Bad TOML.
		{"duplicate key", "\nhostname = \"a\"\nhostname = \"b\"\n",
			place{Line: 3, Col: 1, Key: "hostname"}, []string{"already defined"}},
		{"newline in a basic string", "\nhostname = \"a\n",
			place{Line: 2, Col: 14}, []string{"basic strings cannot have new lines"}},
		{"two values on a line", "hostname = \"a\" \"b\"\n",
			place{Line: 1, Col: 16}, []string{"expected newline"}},
	})
}

// TestMixedFormats checks that a file with keys of both formats is an
// error that names both keys, with the line of the other one and a hint.
func TestMixedFormats(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"0.5 key first", "share_net = true\nnamespaces = [{ type = \"network\" }]\n",
			place{Line: 1, Col: 1, Key: "share_net"},
			[]string{"a 0.5 policy key, but namespaces (line 2) is a 1.x config key; a file is written in one format or the other", `; write namespaces = [{ type = "network", share = true }] in a 1.x file`}},
		{"1.x key first", "envs = []\n\n[env]\nA = \"1\"\n",
			place{Line: 3, Col: 2, Key: "env"},
			[]string{"but envs (line 1) is a 1.x config key", "; write envs = [{ name = ..., value = ... }] in a 1.x file"}},
		{"in one mount", "mounts = [\n  { source = \"/a\", target = \"/a\", type = \"tmpfs\" },\n]\n",
			place{Line: 2, Col: 20, Key: "mounts[0].target"},
			[]string{"but mounts[0].type (line 2) is a 1.x config key", "; write destination in a 1.x file"}},
		{"in two mounts", "mounts = [\n  { type = \"tmpfs\", destination = \"/t\" },\n  { fstype = \"tmpfs\", target = \"/u\" },\n]\n",
			place{Line: 3, Col: 5, Key: "mounts[1].fstype"},
			[]string{"but mounts[0].type (line 2)", "; write type in a 1.x file"}},
		{"limits table with command", "[command]\ncmdline = [\"x\"]\n[limits]\ncpu = 1\n",
			place{Line: 3, Col: 2, Key: "limits"}, []string{"but command (line 1) is a 1.x config key"}},
		{"0.5 seccomp with 1.x path", "[seccomp]\npath = \"unconfined\"\nsyscalls = []\n",
			place{Line: 3, Col: 1, Key: "seccomp.syscalls"}, []string{"but seccomp.path (line 2) is a 1.x config key"}},
		{"@include in a 0.5 policy", "\"@include\" = [\"x.toml\"]\nuid = 0\n",
			place{Line: 2, Col: 1, Key: "uid"}, []string{"but @include (line 1) is a 1.x config key", "; write uidmaps = [{ container_id = N }] in a 1.x file"}},
	})
}

// TestValidateGo checks policies built in Go: the same rules, errors with
// keys and no file.
func TestValidateGo(t *testing.T) {
	good := []*Policy{
		{},
		{Mounts: []Mount{{Source: "/usr"}, {Type: "tmpfs", Destination: "/tmp", Options: "size=1M"}}},
		{Namespaces: []Namespace{{"network", true}}, Network: &Network{Mode: "host"}, Hostname: ptr("h")},
		{Envs: []Env{{Name: "A"}}, Limits: allLimits, Command: &Command{Cmdline: []string{"/bin/true"}}},
	}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", dump(p), err)
		}
	}
	tests := []struct {
		p    *Policy
		want []string // "key: message" prefixes, in order
	}{
		{&Policy{Mounts: []Mount{{Type: "bad"}}}, []string{`mounts[0].type: unknown type "bad"`}},
		{&Policy{Mounts: []Mount{{Source: "rel", Destination: "rel2"}}},
			[]string{`mounts[0].source: "rel" is not an absolute path`, `mounts[0].destination: "rel2" is not an absolute path`}},
		{&Policy{Hostname: ptr(""), Limits: []Limit{{"rss", 1}}},
			[]string{`hostname: "": want 1 to 64 bytes`, `limits[0].type: unknown limit "rss"`}},
		{&Policy{Namespaces: []Namespace{{"uts", true}}, Hostname: ptr("h")},
			[]string{"hostname: the hostname cannot be set with the uts namespace shared"}},
		{&Policy{UIDMaps: []IDMap{{ContainerID: 0, Count: ptr(uint32(0))}}}, []string{"uidmaps[0].count: want a count from 1"}},
		{&Policy{Filesystem: &Filesystem{Dirs: []Dir{{"/d", "9"}}}}, []string{`filesystem.dirs[0].mode: bad mode "9"`}},
		{&Policy{Rootdir: &Rootdir{Path: "r"}, Seccomp: &Seccomp{Path: "x", Syscalls: []string{"read"}}},
			[]string{`rootdir.path: "r" is not an absolute path`, "seccomp.path: a profile (path) or a list (syscalls, dismatch_action), not both"}},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if err == nil {
			t.Errorf("Validate(%s) = nil, want %q", dump(tt.p), tt.want)
			continue
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("Validate error %T is not an ErrorList", err)
		}
		if len(list) != len(tt.want) {
			t.Errorf("Validate(%s) = %v, want %d errors %q", dump(tt.p), err, len(tt.want), tt.want)
			continue
		}
		for i, e := range list {
			if e.File != "" || e.Line != 0 || e.Col != 0 {
				t.Errorf("error %q has a place: %+v", e, placeOf(e))
			}
			if !strings.HasPrefix(e.Error(), tt.want[i]) {
				t.Errorf("error %d = %q, want %q...", i, e.Error(), tt.want[i])
			}
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 1, Col: 2, Key: "k", Msg: "m"}, "f:1:2: k: m"},
		{Error{File: "f", Key: "k", Msg: "m"}, "f: k: m"},
		{Error{File: "f", Msg: "m"}, "f: m"},
		{Error{Key: "k", Msg: "m"}, "k: m"},
		{Error{Msg: "m"}, "m"},
		{Error{Line: 3, Col: 4, Msg: "m"}, ":3:4: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
	a, b := &Error{File: "a", Msg: "1"}, &Error{File: "b", Msg: "2"}
	list := ErrorList{a, b}
	if got := list.Error(); got != "a: 1\nb: 2" {
		t.Errorf("ErrorList.Error() = %q", got)
	}
	var first *Error
	if !errors.As(error(list), &first) || first != a {
		t.Errorf("errors.As(ErrorList) found %v, want the first entry", first)
	}
	if !errors.Is(error(list), b) {
		t.Errorf("errors.Is(ErrorList, second entry) = false")
	}
}

// TestKeysCaseInsensitive: TOML keys are case-sensitive, though go-toml
// matches struct fields without regard to case: a key in another case is
// unknown, and its error has a place.
func TestKeysCaseInsensitive(t *testing.T) {
	t.Run("unknown key", func(t *testing.T) {
		p, err := Parse("p.toml", []byte("HostName = \"x\"\n"))
		if err == nil {
			t.Fatalf("HostName loads as hostname %q, want an unknown key error", *p.Hostname)
		}
		wantOne(t, entries(t, err), place{"p.toml", 1, 1, "HostName"}, "unknown key")
	})
	t.Run("place", func(t *testing.T) {
		errs := parseErr(t, "p.toml", "\n\"@inClude\" = [\"no-such-file-hakoniwa.toml\"]\n")
		if errs[0].Line == 0 {
			t.Fatalf("%q has no place", errs[0])
		}
		wantOne(t, errs, place{"p.toml", 2, 1, "@inClude"}, "unknown key")
	})
}

// TestTableAsArray: go-toml would decode a table into a list as a list of
// one, so `[mounts]` (meant as [[mounts]], or a typo) would load; it is an
// error, like an inline table in the same place.
func TestTableAsArray(t *testing.T) {
	errs := parseErr(t, "p.toml", "envs = { name = \"A\" }\n")
	wantOne(t, errs, place{"p.toml", 1, 1, "envs"}, "want an array of tables, got a table")
	errs = parseErr(t, "p.toml", "hostname = \"h\"\n[mounts]\nsource = \"/a\"\n")
	wantOne(t, errs, place{"p.toml", 2, 2, "mounts"}, "want an array of tables, got a table; write [[mounts]]")
}

// TestHintOutOfContext: a hint about mount keys is given for the keys of
// a mount only, not for a key of the same name elsewhere.
func TestHintOutOfContext(t *testing.T) {
	errs := parseErr(t, "p.toml", "[limits]\ntype = \"cpu\"\n")
	if len(errs) != 1 || errs[0].Key != "limits.type" || !strings.HasPrefix(errs[0].Msg, "unknown key") {
		t.Fatalf("errors %v", ErrorList(errs))
	}
	if strings.Contains(errs[0].Msg, "fstype") {
		t.Fatalf("%q: a 0.5 [limits] table has no fstype", errs[0])
	}
}
