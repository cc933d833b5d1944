'use strict';
// The plain way to diff two heap snapshots, for comparison with `memwatch heap diff`:
// JSON.parse both files, match objects by node id, count new and deleted per class
// (DevTools' class names), sort by size delta. No retaining paths.
//
//   node --max-old-space-size=4096 scripts/heap-diff-plain.js A.heapsnapshot B.heapsnapshot

const fs = require('fs');

function load(file) {
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  const meta = s.snapshot.meta;
  const f = meta.node_fields;
  const at = (name) => f.indexOf(name);
  return {
    nodes: s.nodes,
    strings: s.strings,
    types: meta.node_types[at('type')],
    nf: f.length,
    type: at('type'),
    name: at('name'),
    id: at('id'),
    size: at('self_size'),
  };
}

function className(s, i) {
  const type = s.types[s.nodes[i + s.type]];
  switch (type) {
    case 'object':
    case 'native':
      return s.strings[s.nodes[i + s.name]];
    case 'hidden':
      return '(system)';
    case 'code':
      return '(compiled code)';
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    default:
      return '(' + type + ')';
  }
}

function counted(s, i) {
  return s.nodes[i + s.size] !== 0 || s.types[s.nodes[i + s.type]] === 'native';
}

function ids(s) {
  const set = new Set();
  for (let i = 0; i < s.nodes.length; i += s.nf) set.add(s.nodes[i + s.id]);
  return set;
}

const [fileA, fileB] = process.argv.slice(2);
if (!fileA || !fileB) {
  console.error('usage: heap-diff-plain.js A.heapsnapshot B.heapsnapshot');
  process.exit(2);
}
const a = load(fileA);
const b = load(fileB);
const idsA = ids(a);
const idsB = ids(b);
const rows = new Map();
const row = (name) => {
  let r = rows.get(name);
  if (!r) rows.set(name, (r = { name, added: 0, deleted: 0, alloc: 0, freed: 0 }));
  return r;
};
for (let i = 0; i < b.nodes.length; i += b.nf) {
  if (counted(b, i) && !idsA.has(b.nodes[i + b.id])) {
    const r = row(className(b, i));
    r.added++;
    r.alloc += b.nodes[i + b.size];
  }
}
for (let i = 0; i < a.nodes.length; i += a.nf) {
  if (counted(a, i) && !idsB.has(a.nodes[i + a.id])) {
    const r = row(className(a, i));
    r.deleted++;
    r.freed += a.nodes[i + a.size];
  }
}
const sorted = [...rows.values()].sort((x, y) => (y.alloc - y.freed) - (x.alloc - x.freed));
console.log(['Class', '# New', '# Deleted', '# Delta', 'Alloc. Size', 'Freed Size', 'Size Delta'].join('\t'));
for (const r of sorted.slice(0, 20)) {
  console.log([r.name, r.added, r.deleted, r.added - r.deleted, r.alloc, r.freed, r.alloc - r.freed].join('\t'));
}
