#include "textflag.h"

// func cloneWatchdog(args *cloneArgs, size uintptr, lifeline, pidfd int32, buf *byte) (pid, errno uintptr)
//
// See watchdog_linux_amd64.s. The child keeps its state in R19-R21, which
// system calls preserve, and never touches the stack.
TEXT ·cloneWatchdog(SB),NOSPLIT|NOFRAME,$0-48
	MOVD	args+0(FP), R0
	MOVD	size+8(FP), R1
	MOVW	lifeline+16(FP), R19
	MOVW	pidfd+20(FP), R20
	MOVD	buf+24(FP), R21
	MOVD	$435, R8 // clone3
	SVC
	CBZ	R0, child
	CMN	$4095, R0
	BCS	failed
	MOVD	R0, pid+32(FP)
	MOVD	ZR, errno+40(FP)
	RET
failed:
	NEG	R0, R0
	MOVD	$-1, R4
	MOVD	R4, pid+32(FP)
	MOVD	R0, errno+40(FP)
	RET

child:
	// If any of the set-up calls fails, the watchdog cannot be trusted to
	// wait for the right thing: it kills the sandbox at once.
	MOVD	R19, R0 // dup3(lifeline, 0, 0)
	MOVD	$0, R1
	MOVD	$0, R2
	MOVD	$24, R8
	SVC
	CMN	$4095, R0
	BCS	kill0
	MOVD	R20, R0 // dup3(pidfd, 1, 0)
	MOVD	$1, R1
	MOVD	$0, R2
	MOVD	$24, R8
	SVC
	CMN	$4095, R0
	BCS	kill0
	MOVD	$2, R0 // close_range(2, ~0U, 0)
	MOVD	$0xffffffff, R1
	MOVD	$0, R2
	MOVD	$436, R8
	SVC
	CMN	$4095, R0
	BCS	kill
	MOVD	$157, R8 // setsid()
	SVC
wait:
	MOVD	$0, R0 // read(0, buf, 1)
	MOVD	R21, R1
	MOVD	$1, R2
	MOVD	$63, R8
	SVC
	CMN	$4, R0 // EINTR
	BEQ	wait
kill:
	MOVD	$1, R0 // pidfd_send_signal(1, SIGKILL, NULL, 0)
	MOVD	$9, R1
	MOVD	$0, R2
	MOVD	$0, R3
	MOVD	$424, R8
	SVC
exit:
	MOVD	$0, R0 // exit_group(0)
	MOVD	$94, R8
	SVC
	B	exit // not reached
kill0:
	MOVD	R20, R0 // pidfd_send_signal(pidfd, SIGKILL, NULL, 0)
	MOVD	$9, R1
	MOVD	$0, R2
	MOVD	$0, R3
	MOVD	$424, R8
	SVC
	B	exit
