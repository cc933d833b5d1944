// The figures Chrome DevTools computes for heap snapshots, by DevTools' own code run in Node:
// its snapshot loader and HeapSnapshot worker (npm `chrome-devtools-frontend`, bundled by
// scripts/heap-devtools-check.sh), then compared with `memwatch heap summary|diff --json`.
//
//   node heap-devtools-reference.mjs BUNDLE MEMWATCH A.heapsnapshot [B.heapsnapshot]
//
// One file: per class, count, self size and retained size (the Summary view). Two files:
// also per class, # New, # Deleted, Alloc. Size and Freed Size (the Comparison view) of B
// against A. Prints each difference and exits 1 if there is one.
//
// Two DevTools passes that only change how objects are presented are turned off, because
// memwatch does not make them (it says so in docs/heap.md): moving the size of arrays an
// object owns into the object (calculateShallowSizes), and naming plain objects after their
// properties in the class list (interface definitions). Everything else is DevTools' as is:
// class names and keys (with constructor locations), distances, dominators, retained sizes.
// For the Comparison, objects whose ids V8 makes per snapshot (even ids: the embedder's
// nodes) are left out of DevTools' figures too, as memwatch compares them by count.

import {execFileSync} from 'node:child_process';
import fs from 'node:fs';

// Node 20 lacks Promise.withResolvers, which the worker code uses.
Promise.withResolvers ??= function() {
  let resolve;
  let reject;
  const promise = new Promise((a, b) => {
    resolve = a;
    reject = b;
  });
  return {promise, resolve, reject};
};

const [bundle, memwatch, fileA, fileB] = process.argv.slice(2);
if (!memwatch || !fileA) {
  console.error('usage: heap-devtools-reference.mjs BUNDLE MEMWATCH A.heapsnapshot [B.heapsnapshot]');
  process.exit(2);
}
const {HeapSnapshotLoader, HeapSnapshot} = await import(bundle);
HeapSnapshot.JSHeapSnapshot.prototype.calculateShallowSizes = function() {};
HeapSnapshot.HeapSnapshot.prototype.inferInterfaceDefinitions = function() {
  return [];
};

async function load(file) {
  const loader = new HeapSnapshotLoader({sendEvent() {}});
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 24);
  const decoder = new TextDecoder();
  let n;
  while ((n = fs.readSync(fd, buf, 0, buf.length)) > 0) {
    loader.write(decoder.decode(buf.subarray(0, n), {stream: true}));
  }
  fs.closeSync(fd);
  loader.close();
  const channel = new MessageChannel();
  new HeapSnapshot.SecondaryInitManager(channel.port2);
  const snapshot = await loader.buildSnapshot(channel.port1);
  channel.port1.close();
  channel.port2.close();
  return snapshot;
}

// DevTools' class key: ",Name" or "scriptId,line,column,Name"; memwatch's: the name and,
// for split classes, "path:line:column" 1-based.
function devtoolsName(key) {
  const m = key.match(/^(\d+),(\d+),(\d+),(.*)$/s);
  return m ? {name: m[4], line: Number(m[2]) + 1, column: Number(m[3]) + 1} : {name: key.slice(1)};
}
function memwatchKey(row) {
  const base = row.location ? row.class.replace(/ \([^()]*\)$/, '') : row.class;
  if (!row.location) return base;
  const m = row.location.match(/:(\d+):(\d+)$/);
  return `${base}@${m[1]}:${m[2]}`;
}
function referenceKey(key, splitNames) {
  const d = devtoolsName(key);
  return splitNames.has(d.name) && d.line ? `${d.name}@${d.line}:${d.column}` : d.name;
}
// Names DevTools splits into several classes; other names are one class whatever their keys.
function splitNames(keys) {
  const seen = new Map();
  for (const key of new Set(keys)) {
    const d = devtoolsName(key);
    seen.set(d.name, (seen.get(d.name) || 0) + 1);
  }
  return new Set([...seen].filter(([, k]) => k > 1).map(([name]) => name));
}
function merge(map, key, values) {
  const row = map.get(key) || Object.fromEntries(Object.keys(values).map(k => [k, 0]));
  for (const [k, v] of Object.entries(values)) row[k] += v;
  map.set(key, row);
}

let differences = 0;
function compare(what, reference, ours, fields) {
  let compared = 0;
  for (const [key, ref] of reference) {
    const mine = ours.get(key);
    compared++;
    const diff = fields.filter(f => !mine || mine[f] !== ref[f]);
    if (diff.length) {
      differences++;
      if (differences <= 40) {
        console.log(`${what} '${key}': DevTools ${JSON.stringify(ref)}, memwatch ${mine ? JSON.stringify(mine) : 'no row'}`);
      }
    }
    ours.delete(key);
  }
  for (const [key, mine] of ours) {
    differences++;
    if (differences <= 40) console.log(`${what} '${key}': memwatch ${JSON.stringify(mine)}, DevTools has no row`);
  }
  console.log(`${what}: ${compared} classes compared`);
}

function run(args) {
  return JSON.parse(execFileSync(memwatch, args, {maxBuffer: 1 << 30}));
}

const t0 = Date.now();
const last = await load(fileB || fileA);
const aggregates = last.aggregatesWithFilter({});
const split = splitNames(Object.keys(aggregates));
const reference = new Map();
for (const [key, a] of Object.entries(aggregates)) {
  merge(reference, referenceKey(key, split), {count: a.count, self_size: a.self, retained_size: a.maxRet});
}
console.log(`DevTools loaded ${fileB || fileA} in ${Date.now() - t0} ms`);
const summary = run(['heap', 'summary', fileB || fileA, '--top', '0', '--json', '-']);
const ours = new Map();
for (const row of summary.rows) {
  merge(ours, memwatchKey(row), {count: row.count, self_size: row.self_size, retained_size: row.retained_size});
}
compare('summary', reference, ours, ['count', 'self_size', 'retained_size']);
if (summary.total_size !== last.totalSize) {
  differences++;
  console.log(`total size: DevTools ${last.totalSize}, memwatch ${summary.total_size}`);
}

if (fileB) {
  const first = await load(fileA);
  const base = first.aggregatesForDiff('[]');
  const diff = last.calculateSnapshotDiff('A', base);
  const diffSplit = splitNames([...Object.keys(diff), ...Object.keys(base)]);
  const ref = new Map();
  for (const [key, d] of Object.entries(diff)) {
    const row = {new_count: 0, deleted_count: 0, alloc_size: 0, freed_size: 0};
    d.addedIds.forEach((id, i) => {
      if (id % 2) {
        row.new_count++;
        row.alloc_size += d.addedSelfSizes[i];
      }
    });
    d.deletedIds.forEach((id, i) => {
      if (id % 2) {
        row.deleted_count++;
        row.freed_size += d.deletedSelfSizes[i];
      }
    });
    if (row.new_count || row.deleted_count) merge(ref, referenceKey(key, diffSplit), row);
  }
  const ourDiff = new Map();
  const json = run(['heap', 'diff', fileA, fileB, '--top', '0', '--paths', '0', '--json', '-']);
  for (const row of json.rows) {
    merge(ourDiff, memwatchKey(row), {
      new_count: row.new_count,
      deleted_count: row.deleted_count,
      alloc_size: row.alloc_size,
      freed_size: row.freed_size,
    });
  }
  compare('diff', ref, ourDiff, ['new_count', 'deleted_count', 'alloc_size', 'freed_size']);
}
console.log(differences ? `${differences} differences` : 'no differences');
process.exit(differences ? 1 : 0);
