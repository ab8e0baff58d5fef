/**
 * The id of a ledger (state folder): 8 characters 0-9a-z, made once and kept in the state folder.
 * Markers on cloud instances, containers and jobs carry it, so that two ledgers sharing an account
 * or a daemon leave each other's resources alone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TetherError } from './errors';

/** File in the state folder holding this ledger's id. */
export const LEDGER_ID_FILE = 'ledger-id';
const LEDGER_ID = /^[0-9a-z]{8}$/;

/** This state folder's ledger id, or undefined when it has none yet (reading never writes). */
export function readLedgerIdentity(stateDir: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(stateDir, LEDGER_ID_FILE), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!LEDGER_ID.test(text)) {
    throw new TetherError(`${path.join(stateDir, LEDGER_ID_FILE)} does not hold a ledger id (8 characters 0-9a-z)`, {
      remedy: 'Restore it from a backup. Deleting it makes Tether pick a new id: instances launched from this state folder before then show as "Tether-launched elsewhere" (terminate them with --unmanaged).',
    });
  }
  return text;
}

/**
 * This state folder's ledger id, created once (8 random characters 0-9a-z): written to a
 * temporary file, synced, then linked into place, so concurrent first launches agree on one id
 * and a crash never leaves a partial one.
 */
export function ledgerIdentity(stateDir: string): string {
  const existing = readLedgerIdentity(stateDir);
  if (existing) return existing;
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  const id = [...randomBytes(8)].map((b) => alphabet[b % 36]).join('');
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, LEDGER_ID_FILE);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, `${id}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, file); // fails with EEXIST when another process made it first
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return readLedgerIdentity(stateDir)!;
}
