/*
 * The test guest's ring-0 part. Entered like a Linux vmlinux (64-bit mode, paging on with the
 * loader's identity map, RSI = boot_params). It installs its own GDT/TSS/IDT and page tables and
 * drops to ring 3 at once: on hosts that emulate ring 0 (nested PVM) every instruction here costs
 * about a microsecond, so everything that can be static data is, and the rest is a few dozen
 * instructions. The real work runs in guest_main() at CPL3 with IOPL=3 (so it may use in/out).
 */
	.set KERNEL_CS, 0x08
	.set KERNEL_DS, 0x10
	.set USER_DS, 0x18 | 3
	.set USER_CS, 0x20 | 3
	.set TSS_SEL, 0x28
	.set RFLAGS_USER, 0x3002          /* IOPL=3, reserved bit 1; IF=0: no interrupts wanted */
	.set DEBUG_EXIT_PORT, 0x501
	.set COM1, 0x3f8
	.set EXIT_EXCEPTION_BASE, 0x40    /* exit status = 0x40 + exception vector */
	.set IDT_VECTORS, 32               /* exception vectors with stubs */
	.set IDT_ENTRIES, 256
	.set IRQ_VECTOR, 0x30             /* the virtio interrupt the guest routes through the IOAPIC */
	.set SPURIOUS_VECTOR, 0x3f        /* the LAPIC's spurious vector: nothing to do */
	.set LAPIC_EOI, 0xfee000b0
	.set WAIT_SPINS, 400000           /* bound of the ring-0 wait loop (~1 s where ring 0 is emulated) */

	.section .text.boot, "ax"
	.code64
	.globl _start
_start:
	cli
	mov %rsi, %r12                    /* boot_params, handed to guest_main */
	lea kstack_top(%rip), %rsp

	/* The TSS descriptor's base is split across the descriptor; the linker cannot do that for us. */
	lea tss(%rip), %rax
	lea gdt_tss(%rip), %rdi
	mov %ax, 2(%rdi)
	shr $16, %rax
	mov %al, 4(%rdi)
	mov %ah, 7(%rdi)
	shr $16, %rax
	mov %eax, 8(%rdi)

	/* IDT: one interrupt gate per exception vector, each to a 16-byte stub. */
	lea idt(%rip), %rdi
	lea exception_stubs(%rip), %rax
	mov $IDT_VECTORS, %ecx
1:	mov %ax, (%rdi)
	movw $KERNEL_CS, 2(%rdi)
	movw $0x8e00, 4(%rdi)             /* present, DPL0, 64-bit interrupt gate */
	mov %rax, %rdx
	shr $16, %rdx
	mov %dx, 6(%rdi)
	shr $16, %rdx
	mov %edx, 8(%rdi)
	movl $0, 12(%rdi)
	add $16, %rdi
	add $16, %rax
	dec %ecx
	jnz 1b

	/* The device interrupt and the LAPIC's spurious vector. */
	lea idt + IRQ_VECTOR * 16(%rip), %rdi
	lea irq_handler(%rip), %rax
	mov $0x8e00, %edx
	call set_gate
	lea idt + SPURIOUS_VECTOR * 16(%rip), %rdi
	lea spurious_handler(%rip), %rax
	mov $0x8e00, %edx
	call set_gate

	lgdt gdt_ptr(%rip)
	lidt idt_ptr(%rip)
	lea pml4(%rip), %rax
	mov %rax, %cr3
	mov $KERNEL_DS, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $TSS_SEL, %ax
	ltr %ax

	pushq $USER_DS
	lea ustack_top(%rip), %rax
	push %rax
	pushq $RFLAGS_USER
	pushq $USER_CS
	lea user_entry(%rip), %rax
	push %rax
	iretq

	/* %rdi: IDT entry, %rax: handler, %dx: type/DPL word */
set_gate:
	mov %ax, (%rdi)
	movw $KERNEL_CS, 2(%rdi)
	mov %dx, 4(%rdi)
	shr $16, %rax
	mov %ax, 6(%rdi)
	shr $16, %rax
	mov %eax, 8(%rdi)
	movl $0, 12(%rdi)
	ret

	.text
user_entry:
	mov %r12, %rdi
	call guest_main
	mov $DEBUG_EXIT_PORT, %dx
	out %al, %dx
2:	pause                             /* only reached if the VMM ignores the exit port */
	jmp 2b

	/*
	 * Exceptions. Vectors without a hardware error code push a dummy one so every stub leaves the
	 * same frame: vector, error code, RIP, CS, RFLAGS, RSP, SS.
	 */
	.balign 16
exception_stubs:
	.set vector, 0
	.rept IDT_VECTORS
	.balign 16
	.if vector == 13
	jmp gp_handler
	.else
	.if !(vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30)
	pushq $0
	.endif
	pushq $vector
	jmp exception_fatal
	.endif
	.set vector, vector + 1
	.endr

	/*
	 * #GP from ring 3 on an in/out instruction means the host does not honour RFLAGS.IOPL for guest
	 * user mode (nested PVM reflects the fault instead). Perform the access here in ring 0 and step
	 * over the instruction, so the same guest works either way; real KVM never gets here.
	 * Frame: rcx, rdx, rsi saved below the error code, RIP at 32(%rsp).
	 */
gp_handler:
	push %rsi
	push %rdx
	push %rcx
	mov 32(%rsp), %rsi
	movzbl (%rsi), %ecx
	cmp $0xf3, %cl
	je 10f
	cmp $0xee, %cl
	je 1f
	cmp $0xec, %cl
	je 2f
	cmp $0xe6, %cl
	je 3f
	cmp $0xe4, %cl
	je 4f
	cmp $0xf4, %cl
	je wait_for_irq
	pop %rcx
	pop %rdx
	pop %rsi
	pushq $13
	jmp exception_fatal
1:	out %al, %dx                      /* out %al, %dx */
	mov $1, %ecx
	jmp 5f
2:	in %dx, %al                       /* in %dx, %al */
	mov $1, %ecx
	jmp 5f
3:	movzbl 1(%rsi), %edx              /* out %al, $imm8 */
	out %al, %dx
	mov $2, %ecx
	jmp 5f
4:	movzbl 1(%rsi), %edx              /* in $imm8, %al */
	in %dx, %al
	mov $2, %ecx
	jmp 5f
10:	cmpb $0x6e, 1(%rsi)               /* rep outsb: the console flood (README) */
	jne 11f
	mov 16(%rsp), %rsi                /* the user's rsi, rcx and dx */
	mov (%rsp), %rcx
	mov 8(%rsp), %rdx
	rep outsb
	mov %rsi, 16(%rsp)                /* what the user sees afterwards: rsi advanced, rcx 0 */
	mov %rcx, (%rsp)
	mov $2, %ecx
5:	add %rcx, 32(%rsp)
	pop %rcx
	pop %rdx
	pop %rsi
	add $8, %rsp                      /* the error code */
	iretq
11:	pop %rcx
	pop %rdx
	pop %rsi
	pushq $13
	jmp exception_fatal

	/*
	 * The virtio interrupt: count it and end it at the LAPIC. Acknowledging the device
	 * (InterruptStatus/InterruptACK) is left to ring 3, which checks that the status was exact.
	 */
spurious_handler:
	iretq

irq_handler:
	push %rax
	lock incl irq_count(%rip)
	mov $LAPIC_EOI, %eax
	movl $0, (%rax)
	pop %rax
	iretq

	/*
	 * `hlt` in ring 3 (privileged, so a #GP on every host) with %eax = the irq_count to wait for:
	 * enables interrupts in ring 0 and spins until irq_count reaches it or WAIT_SPINS pass, and
	 * returns irq_count in %eax. Ring 3 runs with IF=0 and may not halt, and nested PVM refuses
	 * `int n` from ring 3, so this is how its one interrupt-driven completion per device lands.
	 * Entered from gp_handler with its frame (rcx, rdx, rsi, error code, RIP, ...).
	 */
wait_for_irq:
	mov $WAIT_SPINS, %ecx
	sti
10:	cmp irq_count(%rip), %eax
	jbe 11f
	pause
	dec %ecx
	jnz 10b
11:	cli
	mov irq_count(%rip), %eax
	mov $1, %ecx
	jmp 5b

	/* Report "guest: exception V error E rip R" on COM1, then exit with 0x40 + V. */
exception_fatal:
	mov $COM1, %dx
	lea exception_msg(%rip), %rsi
	call put_string
	mov (%rsp), %rax
	call put_hex
	lea error_msg(%rip), %rsi
	call put_string
	mov 8(%rsp), %rax
	call put_hex
	lea rip_msg(%rip), %rsi
	call put_string
	mov 16(%rsp), %rax
	call put_hex
	mov $'\r', %al
	out %al, %dx
	mov $'\n', %al
	out %al, %dx
	mov (%rsp), %rax
	add $EXIT_EXCEPTION_BASE, %al
	mov $DEBUG_EXIT_PORT, %dx
	out %al, %dx
6:	hlt
	jmp 6b

put_string:                           /* %rsi: NUL-terminated, %dx: port */
	lodsb
	test %al, %al
	jz 7f
	out %al, %dx
	jmp put_string
7:	ret

put_hex:                              /* %rax: value, 16 digits */
	mov $16, %ecx
8:	rol $4, %rax
	mov %al, %bl
	and $0xf, %bl
	add $'0', %bl
	cmp $'9', %bl
	jbe 9f
	add $('a' - '9' - 1), %bl
9:	xchg %al, %bl
	out %al, %dx
	xchg %al, %bl
	dec %ecx
	jnz 8b
	ret

	.section .rodata
exception_msg:
	.asciz "\r\nguest: exception 0x"
error_msg:
	.asciz " error 0x"
rip_msg:
	.asciz " rip 0x"

	.data
	/* Identity map of 4 GiB with 2 MiB pages, user-accessible, built by the assembler. */
	.balign 4096
pml4:
	.quad pdpt + 0x7                  /* present | writable | user */
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + 0x7
	.quad pd + 0x1000 + 0x7
	.quad pd + 0x2000 + 0x7
	.quad pd + 0x3000 + 0x7
	.fill 508, 8, 0
pd:
	.set addr, 0
	.rept 2048
	.quad addr + 0x87                 /* present | writable | user | 2 MiB page */
	.set addr, addr + 0x200000
	.endr

	.balign 16
gdt:
	.quad 0
	.quad 0x00af9a000000ffff          /* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff          /* 0x10 kernel data */
	.quad 0x00cff2000000ffff          /* 0x18 user data, DPL3 */
	.quad 0x00affa000000ffff          /* 0x20 user code, 64-bit, DPL3 */
gdt_tss:
	.quad 0x0000890000000067          /* 0x28 available 64-bit TSS, limit 103; base patched at boot */
	.quad 0
gdt_end:

	.balign 8
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt
idt_ptr:
	.word IDT_ENTRIES * 16 - 1
	.quad idt

	.balign 16
tss:
	.long 0
	.quad kstack_top                  /* rsp0: where exceptions from ring 3 land */
	.quad 0, 0                        /* rsp1, rsp2 */
	.quad 0
	.fill 7, 8, 0                     /* ist1-7 */
	.quad 0
	.word 0
	.word 104                         /* I/O bitmap offset past the limit: none; IOPL=3 grants ports */

	.globl irq_count
	.balign 4
irq_count:
	.long 0

	.bss
	.balign 16
idt:
	.skip IDT_ENTRIES * 16
	.balign 16
kstack:
	.skip 4096
kstack_top:
	.balign 16
ustack:
	.skip 16384
ustack_top:

	.section .note.GNU-stack, "", @progbits
