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
