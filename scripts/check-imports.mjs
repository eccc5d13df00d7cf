#!/usr/bin/env node
// Keeps the import graph honest (STYLE: "imports flow from services to packages, never back"):
// 1. no package under packages/ depends on a service under services/;
// 2. no circular imports between the source files of any workspace (what `madge --circular` checks).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const problems = [];
const workspaces = ['packages', 'services'].flatMap((base) => readdirSync(join(root, base)).map((name) => join(root, base, name)));
const services = new Set(workspaces.filter((dir) => dir.includes(`${join(root, 'services')}`)).map((dir) => `@shadow-replay/${dir.split('/').pop()}`));

for (const dir of workspaces) {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (dir.startsWith(join(root, 'packages'))) {
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      if (services.has(dep)) problems.push(`${relative(root, dir)} depends on the service ${dep}: shared packages must not import services`);
    }
  }
  const files = [];
  const walk = (folder) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(path);
    }
  };
  walk(join(dir, 'src'));
  const graph = new Map();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/gm)]
      .filter((match) => !/^(?:import|export)\s+type\s/.test(match[0]))
      .map((match) => resolve(dirname(file), match[1].replace(/\.js$/, '.ts')));
    graph.set(file, targets);
  }
  const state = new Map();
  const stack = [];
  const visit = (file) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') {
        problems.push(`circular import: ${[...stack.slice(stack.indexOf(next)), next].map((f) => relative(root, f)).join(' → ')}`);
      } else if (!state.has(next) && graph.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
}

if (problems.length > 0) {
  process.stderr.write(`${problems.join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`imports: ${workspaces.length} workspaces, no service imported by a package, no circular imports\n`);
