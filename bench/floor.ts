/**
 * The floor for a steady poll (issue #14 item 8): a bare walk of a tree's `/proc` entries with
 * nothing else — from the root, read /proc/PID/task/TID/children of every thread of every member,
 * and /proc/PID/stat of each member (what any poll must at least read to know the tree and its
 * members' start times). No caching, no marker sweep, no ledger. Same synchronous reads as
 * src/core/procfs.ts.
 */
import * as fs from 'node:fs';

export function procWalk(root: number): number[] {
  const out: number[] = [];
  const queue = [root];
  for (let i = 0; i < queue.length; i++) {
    const pid = queue[i]!;
    try {
      fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // gone
    }
    out.push(pid);
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const txt = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim();
        if (txt) for (const c of txt.split(' ')) queue.push(Number(c));
      } catch {
        // thread gone
      }
    }
  }
  return out;
}

/**
 * The /proc files (and task folders) `fn` reads, counted by wrapping node's fs for the call:
 * `stat` files, `children` files, task-folder listings and others. Bench only (timings are taken
 * without it).
 */
export async function countProcReads(fn: () => unknown): Promise<{ stat: number; children: number; taskDirs: number; other: number }> {
  const realFs = require('node:fs') as typeof fs;
  const c = { stat: 0, children: 0, taskDirs: 0, other: 0 };
  const readFile = realFs.readFileSync;
  const readdir = realFs.readdirSync;
  const tally = (p: unknown, dir: boolean) => {
    const s = String(p);
    if (!s.startsWith('/proc')) return;
    if (dir && /\/task$/.test(s)) c.taskDirs++;
    else if (/\/stat$/.test(s) && s !== '/proc/stat') c.stat++;
    else if (/\/children$/.test(s)) c.children++;
    else c.other++;
  };
  (realFs as { readFileSync: unknown }).readFileSync = (p: fs.PathOrFileDescriptor, ...a: unknown[]) => (tally(p, false), (readFile as (...x: unknown[]) => unknown)(p, ...a));
  (realFs as { readdirSync: unknown }).readdirSync = (p: fs.PathLike, ...a: unknown[]) => (tally(p, true), (readdir as (...x: unknown[]) => unknown)(p, ...a));
  try {
    await fn();
  } finally {
    realFs.readFileSync = readFile;
    realFs.readdirSync = readdir;
  }
  return c;
}
