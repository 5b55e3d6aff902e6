package hakoniwa

import "testing"

func TestSeccompKill(t *testing.T) {
	tests := []struct {
		record string
		pid    int
		want   string
	}{
		{`5,1454,9182928889,-;audit: type=1326 audit(1795866162.017:1454): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=26541 comm="mkdir" exe="/bin/mkdir" sig=31 arch=c000003e syscall=83 compat=0 ip=0x7f937376ff37 code=0x80000000`, 26541, "mkdir (83)"},
		{`5,2,3,-;audit: type=1326 audit(1.2:3): auid=1 uid=0 gid=0 ses=1 pid=7 comm="a" exe="/a" sig=31 arch=c000003e syscall=1073741863 compat=0 ip=0x1 code=0x80000000`, 7, "getpid (1073741863)"},
		// A record a program wrote to /dev/kmsg (facility user, 1<<3).
		{`13,2,3,-;audit: type=1326 audit(1.2:3): auid=1 uid=0 gid=0 ses=1 pid=7 comm="a" exe="/a" sig=31 arch=c000003e syscall=83 compat=0 ip=0x1 code=0x80000000`, 7, ""},
		{`5,1,1,-;audit: type=1326 audit(1.2:3): auid=1 uid=0 gid=0 ses=1 pid=7 comm="a" exe="/a" sig=31 arch=40000003 syscall=20 compat=1 ip=0x1 code=0x80000000`, 7, "getpid (20)"},
		{`5,1,1,-;audit: type=1326 audit(1.2:3): auid=1 uid=0 gid=0 ses=1 pid=7 comm="a" exe="/a" sig=31 arch=c000003e syscall=99999 compat=0 ip=0x1 code=0x80000000`, 7, "number 99999 (arch c000003e)"},
		// Another process's kill, a logged call (sig=0), another record.
		{`5,1,1,-;audit: type=1326 audit(1.2:3): auid=1 uid=0 gid=0 ses=1 pid=8 comm="a" exe="/a" sig=31 arch=c000003e syscall=83 compat=0 ip=0x1 code=0x80000000`, 7, ""},
		{`5,1,1,-;audit: type=1326 audit(1.2:3): auid=1 uid=0 gid=0 ses=1 pid=7 comm="a" exe="/a" sig=0 arch=c000003e syscall=83 compat=0 ip=0x1 code=0x7ffc0000`, 7, ""},
		{`6,1,1,-;eth0: link up`, 7, ""},
	}
	for _, tt := range tests {
		got, ok := seccompKill([]byte(tt.record), tt.pid)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("seccompKill(%q, %d) = %q, %v; want %q", tt.record, tt.pid, got, ok, tt.want)
		}
	}
}
