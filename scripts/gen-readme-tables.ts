/**
 * Regenerates the generated tables in README.md (between the marker comments)
 * from the code: the settings table from src/config/settings.ts.
 * `node scripts/gen-readme-tables.ts`; test/docs/readme.test.ts fails when stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { settingsTable } from '../src/config/settings.ts';

const README = new URL('../README.md', import.meta.url);

export function renderReadme(text: string): string {
  return text.replace(/<!-- settings:start -->[\s\S]*?<!-- settings:end -->/, () => `<!-- settings:start -->\n${settingsTable()}\n<!-- settings:end -->`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(README, renderReadme(readFileSync(README, 'utf8')));
}
