// This file lets spawn_linux.go declare the runtime's fork hooks without a
// body; they are provided by go:linkname.
