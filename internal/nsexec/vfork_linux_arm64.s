#include "textflag.h"

// func vforkSyscall(trap, a1, a2, a3 uintptr) (r1, errno uintptr)
//
// A system call for a clone with CLONE_VM|CLONE_VFORK. On arm64 the return
// address stays in the link register of a frameless function, so a child
// running on the parent's stack cannot overwrite it.
TEXT ·vforkSyscall(SB),NOSPLIT|NOFRAME,$0-48
	MOVD	a1+8(FP), R0
	MOVD	a2+16(FP), R1
	MOVD	a3+24(FP), R2
	MOVD	$0, R3
	MOVD	$0, R4
	MOVD	$0, R5
	MOVD	trap+0(FP), R8
	SVC
	CMN	$4095, R0
	BCS	failed
	MOVD	R0, r1+32(FP)
	MOVD	ZR, errno+40(FP)
	RET
failed:
	NEG	R0, R0
	MOVD	$-1, R4
	MOVD	R4, r1+32(FP)
	MOVD	R0, errno+40(FP)
	RET
