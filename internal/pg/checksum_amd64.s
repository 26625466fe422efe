//go:build amd64 && !purego

#include "textflag.h"

// func checksumRowsAVX2(page *byte, sums *[32]uint32)
// For each of the rows 1..63 of the page and each lane j:
//   t = sums[j] ^ word; sums[j] = t*16777619 ^ t>>17
TEXT ·checksumRowsAVX2(SB), NOSPLIT, $0-16
	MOVQ page+0(FP), SI
	MOVQ sums+8(FP), DI
	VMOVDQU 0(DI), Y0
	VMOVDQU 32(DI), Y1
	VMOVDQU 64(DI), Y2
	VMOVDQU 96(DI), Y3
	MOVL $16777619, AX
	MOVD AX, X15
	VPBROADCASTD X15, Y15
	ADDQ $128, SI
	MOVQ $63, CX

loop:
	VPXOR 0(SI), Y0, Y0
	VPXOR 32(SI), Y1, Y1
	VPXOR 64(SI), Y2, Y2
	VPXOR 96(SI), Y3, Y3
	VPMULLD Y15, Y0, Y4
	VPMULLD Y15, Y1, Y5
	VPMULLD Y15, Y2, Y6
	VPMULLD Y15, Y3, Y7
	VPSRLD $17, Y0, Y0
	VPSRLD $17, Y1, Y1
	VPSRLD $17, Y2, Y2
	VPSRLD $17, Y3, Y3
	VPXOR Y4, Y0, Y0
	VPXOR Y5, Y1, Y1
	VPXOR Y6, Y2, Y2
	VPXOR Y7, Y3, Y3
	ADDQ $128, SI
	DECQ CX
	JNZ loop

	VMOVDQU Y0, 0(DI)
	VMOVDQU Y1, 32(DI)
	VMOVDQU Y2, 64(DI)
	VMOVDQU Y3, 96(DI)
	VZEROUPPER
	RET
