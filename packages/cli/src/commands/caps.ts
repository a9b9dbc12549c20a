import { CliError } from '../errors.js';
export async function caps(_argv: string[]): Promise<number> {
  throw new CliError('caps: not built yet');
}
