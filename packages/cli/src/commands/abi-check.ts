import { CliError } from '../errors.js';
export async function check(_argv: string[]): Promise<number> { throw new CliError('not built yet'); }
