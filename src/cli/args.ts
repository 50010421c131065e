/** Small flag parser shared by the subcommands (node:util parseArgs with friendly errors). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PalisadeError } from '../errors/codes.ts';

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, command: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new PalisadeError('CONFIG_INVALID', `${command}: ${(err as Error).message}`);
  }
}
