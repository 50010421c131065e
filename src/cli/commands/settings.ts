/** `palisade settings [--markdown]`: the settings table, or the effective settings as JSON. */
import { loadSettings, settingsTable } from '../../config/settings.ts';
import { parseFlags } from '../args.ts';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { markdown: { type: 'boolean' } }, 'palisade settings');
  if (values.markdown) process.stdout.write(settingsTable() + '\n');
  else process.stdout.write(JSON.stringify(loadSettings(), null, 2) + '\n');
  return 0;
}
