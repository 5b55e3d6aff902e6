// Package seccomp compiles seccomp profiles into classic BPF filters for
// the sandbox's command.
//
// A Profile is a default action and rules: syscalls by name, with an action
// and optional conditions on their arguments, compared over the full 64
// bits. Compile turns it into one program that first checks the
// architecture (on x86_64 also the x32 bit), and then finds the syscall by
// a binary search over ranges of syscall numbers; an architecture the
// profile does not list is killed, so a program cannot step around the
// filter through the i386 (int 0x80) or x32 ABIs.
//
// Profiles come from the seed's policy section (FromSeed), from Docker/OCI
// JSON (ParseJSON, Docker), or are built in (Default, Audit).
package seccomp

//go:generate go run ./internal/gentables
