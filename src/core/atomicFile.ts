/**
 * Writes a small state file so that a reader sees the old contents or the new, never a mix:
 * a private temporary file (mode 0600, unique name), fsynced, then renamed over the target.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';

export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
