import { CliError } from '../errors.js';
export async function run(_argv: string[]): Promise<number> {
  throw new CliError('run: not built yet');
}
