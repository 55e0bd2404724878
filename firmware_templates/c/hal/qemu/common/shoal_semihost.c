/*
 * shoal_semihost.c - Arm semihosting calls used by the QEMU boards (exit with a status).
 *
 * Responsible for: the bkpt 0xAB calling convention and SYS_EXIT_EXTENDED. QEMU must run with
 * `-semihosting-config enable=on,target=native`; without it the bkpt is a debug exception and
 * the firmware faults instead of exiting. Must not: be linked into firmware for real boards
 * (with no debugger attached a semihosting bkpt locks the core up).
 */
#include "shoal_qemu.h"

#define SEMIHOST_SYS_EXIT_EXTENDED 0x20u
/* ADP_Stopped_ApplicationExit: "the program ended normally"; the subcode is the status. */
#define SEMIHOST_ADP_STOPPED_APPLICATION_EXIT 0x20026u

int shoal_qemu_semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

void shoal_qemu_semihost_exit(int code)
{
    /* SYS_EXIT takes only a reason on 32-bit Arm (QEMU maps it to status 0 or 1); the extended
     * call carries the status itself. */
    const uint32_t block[2] = {SEMIHOST_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    (void)shoal_qemu_semihost_call(SEMIHOST_SYS_EXIT_EXTENDED, block);
    for (;;) {
        /* Only reached when semihosting is disabled: park the core. */
        __asm__ volatile("wfi");
    }
}
