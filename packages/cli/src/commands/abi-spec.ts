import { CliError } from '../errors.js';
const todo = async (_argv: string[]): Promise<number> => { throw new CliError('not built yet'); };
export const show = todo, list = todo, generate = todo;
