package seccomp

import "testing"

// BenchmarkCompileDocker compiles Docker's profile (three ABIs, about
// 1100 instructions with trampolines); the target is under 1 ms.
func BenchmarkCompileDocker(b *testing.B) {
	p, err := Docker()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		filter, err := Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		n = len(filter)
	}
	b.ReportMetric(float64(n), "insns")
}

// BenchmarkDockerProfile resolves Docker's profile and compiles it, as
// a sandbox start with --seccomp=docker does.
func BenchmarkDockerProfile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p, err := Docker()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileDefault compiles hakoniwa's default profile.
func BenchmarkCompileDefault(b *testing.B) {
	p, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileBig compiles a profile near the kernel's limit, with
// many trampolines.
func BenchmarkCompileBig(b *testing.B) {
	p := bigProfile(len(tableX86_64), false, X86_64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}
