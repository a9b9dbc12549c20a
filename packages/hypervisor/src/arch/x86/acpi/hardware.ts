/**
 * The ACPI fixed hardware of the machine (ACPI 6.5 §4.8): where its PM1 event and control blocks
 * and its reset register are, and which values mean "S5" and "reset". The tables describe these
 * and the PM device (devices/legacy/acpi-pm.ts) decodes them, so both take them from here. These
 * are our own choices, not KVM ABI: ports no other device of ours (or of a PC) uses.
 */

/** PM1a_EVT_BLK: PM1_STS (2 bytes) then PM1_EN (2 bytes). */
export const PM1A_EVT_PORT = 0x600;
export const PM1_EVT_LEN = 4;
/** PM1a_CNT_BLK: PM1_CNT, 2 bytes. */
export const PM1A_CNT_PORT = 0x604;
export const PM1_CNT_LEN = 2;
/** RESET_REG: one byte in system I/O space; writing RESET_VALUE resets the machine. */
export const RESET_PORT = 0x608;
export const RESET_VALUE = 0x0e;
/** The SCI's ISA IRQ (FADT SCI_INT), level-triggered and active high per the MADT's override. */
export const SCI_IRQ = 9;
/** SLP_TYP of S5 (soft off), as the DSDT's \_S5_ package gives it; nonzero, so a stray SLP_EN with SLP_TYP 0 is not one. */
export const SLP_TYP_S5 = 5;

/** §4.8.3.1 PM1_STS / PM1_EN bits. */
export const PM1_TMR = 1 << 0;
export const PM1_BM_STS = 1 << 4;
export const PM1_GBL = 1 << 5;
export const PM1_PWRBTN = 1 << 8;
export const PM1_SLPBTN = 1 << 9;
export const PM1_RTC = 1 << 10;
export const PM1_PCIEXP_WAKE = 1 << 14;
export const PM1_WAK_STS = 1 << 15;
/** §4.8.3.2 PM1_CNT bits. */
export const PM1_CNT_SCI_EN = 1 << 0;
export const PM1_CNT_BM_RLD = 1 << 1;
export const PM1_CNT_GBL_RLS = 1 << 2;
export const PM1_CNT_SLP_TYP_SHIFT = 10;
export const PM1_CNT_SLP_TYP_MASK = 0x7 << PM1_CNT_SLP_TYP_SHIFT;
export const PM1_CNT_SLP_EN = 1 << 13;
