#include "textflag.h"

// func cloneWatchdog(args *cloneArgs, size uintptr, lifeline, pidfd int32, buf *byte) (pid, errno uintptr)
//
// Clones a process that shares our memory (CLONE_VM) but runs only the few
// system calls below, from registers, without touching the stack or any Go
// memory but buf: it becomes fd 0 = lifeline, fd 1 = pidfd, closes every
// other fd, starts a session, waits for EOF on the lifeline, kills the
// sandbox through the pidfd and exits. Signals must be blocked by the
// caller, so that none is ever delivered to it.
TEXT ·cloneWatchdog(SB),NOSPLIT|NOFRAME,$0-48
	MOVQ	args+0(FP), DI
	MOVQ	size+8(FP), SI
	MOVLQSX	lifeline+16(FP), R12
	MOVLQSX	pidfd+20(FP), R13
	MOVQ	buf+24(FP), R9
	MOVQ	$435, AX // clone3
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JCC	failed
	MOVQ	AX, pid+32(FP)
	MOVQ	$0, errno+40(FP)
	RET
failed:
	NEGQ	AX
	MOVQ	$-1, pid+32(FP)
	MOVQ	AX, errno+40(FP)
	RET

child:
	// If any of the set-up calls fails, the watchdog cannot be trusted to
	// wait for the right thing: it kills the sandbox at once.
	MOVQ	R12, DI // dup3(lifeline, 0, 0)
	MOVQ	$0, SI
	MOVQ	$0, DX
	MOVQ	$292, AX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JCC	kill0
	MOVQ	R13, DI // dup3(pidfd, 1, 0)
	MOVQ	$1, SI
	MOVQ	$0, DX
	MOVQ	$292, AX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JCC	kill0
	MOVQ	$2, DI // close_range(2, ~0U, 0)
	MOVQ	$0xffffffff, SI
	MOVQ	$0, DX
	MOVQ	$436, AX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JCC	kill
	MOVQ	$112, AX // setsid()
	SYSCALL
wait:
	MOVQ	$0, DI // read(0, buf, 1)
	MOVQ	R9, SI
	MOVQ	$1, DX
	MOVQ	$0, AX
	SYSCALL
	CMPQ	AX, $-4 // EINTR
	JEQ	wait
kill:
	MOVQ	$1, DI // pidfd_send_signal(1, SIGKILL, NULL, 0)
	MOVQ	$9, SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$424, AX
	SYSCALL
exit:
	MOVQ	$0, DI // exit_group(0)
	MOVQ	$231, AX
	SYSCALL
	JMP	exit // not reached
kill0:
	MOVQ	R13, DI // pidfd_send_signal(pidfd, SIGKILL, NULL, 0)
	MOVQ	$9, SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$424, AX
	SYSCALL
	JMP	exit
