#!/usr/bin/env node
// Entry point of the `shadow-replay` command; the code lives in dist/ after `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('shadow-replay is not built yet: run `npm run build` in the repository root.\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
