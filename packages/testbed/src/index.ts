export { main, parseArgs, innerEnv, machineDeath, USAGE, TIME_LIMIT_EXIT, SETUP_EXIT, type TestbedArgs } from './main.js';
export { fetchEmulator, cachedEmulator, missingPackages, EMULATOR_PACKAGES, type Emulator } from './emulator.js';
export { fetchKernel, cachedKernel, moduleDepends, moduleLoadOrder, WANTED_MODULES, GUEST_MODULES, type TestbedKernel } from './kernel.js';
export { cpioArchive, type CpioEntry } from './cpio.js';
export { busyboxInitramfs, type BusyboxInitramfs } from './initramfs.js';
export { commandScript, qemuArgs, runMachine, kernelPanic, EXIT_MARKER, type MachineEnd } from './machine.js';
export { timeScale, scaled } from './time-scale.js';
