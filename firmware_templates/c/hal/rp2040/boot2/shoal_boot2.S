/*
 * shoal_boot2.S - Shoal's RP2040 second-stage boot: flash execute-in-place with plain 03h reads.
 *
 * Responsible for: what the boot ROM runs from the first 252 bytes of flash (copied to SRAM at
 * 0x20041F00 and entered once its CRC32 matches, RP2040 datasheet 2.8.1.3): configure the SSI
 * (the QSPI controller behind XIP, datasheet 4.10) for serial reads with the 03h command, which
 * every SPI NOR flash answers, then set VTOR to the vector table at 0x10000100, load its stack
 * pointer and jump to its reset handler. Must not: use absolute addresses of its own code (it
 * runs from SRAM, not where it was linked) or exceed 252 bytes; shoal_boot2.py checks both and
 * appends the CRC. Standard reads at clk_sys / 4 are slower than quad mode (a known trade:
 * simple and flash-independent); the XIP cache hides most of it.
 *
 * SSI registers (datasheet 4.10.13, base XIP_SSI 0x18000000): CTRLR0 0x00, CTRLR1 0x04,
 * SSIENR 0x08, BAUDR 0x14, SPI_CTRLR0 0xF4.
 */
    .syntax unified
    .cpu cortex-m0plus
    .thumb

    .equ SSI_BASE, 0x18000000
    .equ SSI_CTRLR0, 0x00
    .equ SSI_CTRLR1, 0x04
    .equ SSI_SSIENR, 0x08
    .equ SSI_BAUDR, 0x14
    .equ SSI_SPI_CTRLR0, 0xF4
    /* CTRLR0: DFS_32 (bits 20:16) = 31 -> 32-bit frames; TMOD (9:8) = 3 EEPROM read;
     * SPI_FRF (22:21) = 0 standard one-bit SPI. */
    .equ CTRLR0_VALUE, (31 << 16) | (3 << 8)
    /* SPI_CTRLR0: XIP_CMD (31:24) = 0x03 read; INST_L (9:8) = 2 -> 8-bit instruction;
     * ADDR_L (5:2) = 6 -> 24-bit address; TRANS_TYPE (1:0) = 0 both sent in standard SPI. */
    .equ SPI_CTRLR0_VALUE, (0x03 << 24) | (2 << 8) | (6 << 2)
    .equ CLOCK_DIVIDER, 4
    .equ IMAGE_VECTORS, 0x10000100
    .equ M0PLUS_VTOR, 0xE000ED08

    .section .text.shoal_boot2, "ax"
    .global shoal_boot2_entry
    .type shoal_boot2_entry, %function
    .thumb_func
shoal_boot2_entry:
    ldr r3, =SSI_BASE
    movs r1, #0
    str r1, [r3, #SSI_SSIENR]       @ disable the SSI while it is reconfigured
    movs r1, #CLOCK_DIVIDER
    str r1, [r3, #SSI_BAUDR]        @ SCK = clk_sys / 4
    ldr r1, =CTRLR0_VALUE
    str r1, [r3, #SSI_CTRLR0]
    movs r1, #0
    str r1, [r3, #SSI_CTRLR1]       @ NDF = 0: one 32-bit data frame per XIP access
    ldr r1, =SPI_CTRLR0_VALUE
    movs r2, #SSI_SPI_CTRLR0        @ offset beyond the 5-bit immediate: use a register
    str r1, [r3, r2]
    movs r1, #1
    str r1, [r3, #SSI_SSIENR]       @ enable: XIP reads now go out as 03h commands

    ldr r0, =IMAGE_VECTORS
    ldr r1, =M0PLUS_VTOR
    str r0, [r1]                    @ exceptions now use the image's vector table
    ldmia r0!, {r1, r2}             @ r1 = initial stack pointer, r2 = reset handler
    msr msp, r1
    bx r2
    .ltorg
    .size shoal_boot2_entry, . - shoal_boot2_entry
