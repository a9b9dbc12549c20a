import { CliError } from '../errors.js';
export async function diff(_argv: string[]): Promise<number> { throw new CliError('not built yet'); }
