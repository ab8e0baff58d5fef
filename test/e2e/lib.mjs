// Small helpers shared by test/e2e/run.mjs, scripts/start.mjs and the UI tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/harness.mjs';

export const DEMO_DIR = path.join(REPO_ROOT, 'demo');

/**
 * Materialises a workspace template into dest (created if missing):
 *   'demo'            -> copy of demo/
 *   'empty'           -> empty folder
 *   {files: {rel: s}} -> those files (strings, or objects written as JSON)
 */
export function prepareWorkspace(template, dest) {
  fs.mkdirSync(dest, { recursive: true });
  if (template === undefined || template === 'demo') {
    fs.cpSync(DEMO_DIR, dest, { recursive: true });
  } else if (template === 'empty') {
    // nothing
  } else if (template && typeof template === 'object' && template.files) {
    for (const [rel, content] of Object.entries(template.files)) {
      const f = path.join(dest, rel);
      if (!f.startsWith(dest + path.sep)) throw new Error(`workspace file escapes the workspace: ${rel}`);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    }
  } else {
    throw new Error(`unknown workspace template ${JSON.stringify(template)} (use 'demo', 'empty' or {files})`);
  }
  return dest;
}

/**
 * What the UI must show is waited for at least this long: the tests share a loaded 2-core
 * machine, and a wait that passes returns at once (only a failure takes the whole wait).
 * Waits for what may not come at all (acceptPickIfShown, a menu closing) keep their short timeouts.
 */
const MUST_SHOW_MS = 60000;
const must = (ms) => Math.max(ms, MUST_SHOW_MS);

/** Waits for the workbench to be usable (about 4-5 s cold). */
export async function waitForWorkbench(page, { timeout = 60000 } = {}) {
  await page.waitForSelector('.monaco-workbench', { timeout });
  await page.waitForSelector('.part.activitybar', { timeout });
}

/** F1, type the command's title, Enter. */
export async function runCommand(page, title, { timeout = 15000 } = {}) {
  timeout = must(timeout);
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout });
  await input.fill(`>${title}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout });
  await page.keyboard.press('Enter');
}

/**
 * Makes sure the view container whose activity-bar entry's aria-label starts with `label` is open
 * (clicking an already open one would close it, and a reload restores the layout late).
 */
export async function openActivity(page, label, { timeout = 15000 } = {}) {
  timeout = must(timeout);
  const item = page.locator(`.part.activitybar [aria-label^="${label}"]`).first();
  await item.waitFor({ timeout });
  const title = page.locator('.part.sidebar .composite.title');
  const isOpen = async () => (await title.isVisible().catch(() => false)) && (await title.innerText().catch(() => '')).toLowerCase().includes(label.toLowerCase());
  const deadline = Date.now() + timeout;
  while (!(await isOpen())) {
    if (Date.now() > deadline) throw new Error(`could not open the ${label} view`);
    await item.click();
    await page.waitForTimeout(800);
  }
  return item;
}

/** The rows of the Tether tree, as text ("label description"). */
export async function treeRows(page) {
  return page.locator('.part.sidebar .monaco-list-row').evaluateAll((rows) =>
    rows.map((r) => {
      const parts = [...r.querySelectorAll('.label-name, .label-description')].map((e) => e.textContent.trim()).filter(Boolean);
      return (parts.length ? parts.join(' ') : r.innerText).replace(/\s+/g, ' ').trim();
    }));
}

/** Waits until some tree row matches `re`; returns its text. */
export async function waitForRow(page, re, { timeout = 20000 } = {}) {
  timeout = must(timeout);
  const deadline = Date.now() + timeout;
  for (;;) {
    const rows = await treeRows(page);
    const hit = rows.find((r) => re.test(r));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no tree row matches ${re} after ${timeout} ms; rows: ${JSON.stringify(rows)}`);
    await page.waitForTimeout(200);
  }
}

/** Waits until `fn(rows)` is truthy. */
export async function waitForRows(page, fn, what, { timeout = 20000 } = {}) {
  timeout = must(timeout);
  const deadline = Date.now() + timeout;
  for (;;) {
    const rows = await treeRows(page);
    if (fn(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; rows: ${JSON.stringify(rows)}`);
    await page.waitForTimeout(200);
  }
}

/** The status bar's text. */
export async function statusBarText(page) {
  return (await page.locator('.part.statusbar').innerText()).replace(/\s+/g, ' ');
}

/** Waits until the status bar text matches `re`. */
export async function waitForStatusBar(page, re, { timeout = 20000 } = {}) {
  timeout = must(timeout);
  const deadline = Date.now() + timeout;
  for (;;) {
    const t = await statusBarText(page);
    if (re.test(t)) return t;
    if (Date.now() > deadline) throw new Error(`status bar never matched ${re}; it shows: ${t}`);
    await page.waitForTimeout(200);
  }
}

/** Right-clicks a tree row and picks a context-menu entry. */
export async function contextMenu(page, rowText, entry) {
  const row = page.locator('.part.sidebar .monaco-list-row', { hasText: rowText }).first();
  const item = page.locator('.context-view .action-item', { hasText: entry }).first();
  // A right-click that lands while the tree re-renders the row opens no menu (a hover tooltip
  // shows instead): try again a few times before giving up.
  for (let attempt = 1; ; attempt++) {
    await row.click({ button: 'right' });
    try {
      await item.waitFor({ timeout: attempt < 3 ? 3000 : must(10000) });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
      await page.keyboard.press('Escape');
      await page.waitForTimeout(300);
    }
  }
  // The menu can ignore a click that lands while it is still being laid out: hover first, and
  // if it is still open afterwards, activate the highlighted entry with Enter.
  await item.hover();
  await page.waitForTimeout(100);
  await item.click();
  const menu = page.locator('.context-view .monaco-menu');
  try {
    await menu.waitFor({ state: 'hidden', timeout: 1500 });
  } catch {
    await item.hover();
    await page.keyboard.press('Enter');
    await menu.waitFor({ state: 'hidden', timeout: 5000 });
  }
}

/** Clicks a button of the modal dialog. */
export async function clickDialogButton(page, label, { timeout = 10000 } = {}) {
  timeout = must(timeout);
  // A string matches the whole button text ("Launch" is not "Launch with Dead Man's Switch").
  const text = typeof label === 'string' ? new RegExp(`^\\s*${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) : label;
  const button = page.locator('.monaco-dialog-box .monaco-button', { hasText: text }).first();
  await button.waitFor({ timeout });
  await button.click();
}

/**
 * After a context-menu action on a tree row that a poll may have re-rendered in between, VS Code
 * can hand the command no node; Tether then asks with a quick pick. Accept `text` there if so.
 */
export async function acceptPickIfShown(page, text, { timeout = 1500 } = {}) {
  const input = page.locator('.quick-input-widget input');
  try {
    await input.waitFor({ state: 'visible', timeout });
  } catch {
    return false;
  }
  await input.fill(text);
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: text }).first().waitFor({ timeout: must(10000) });
  await page.keyboard.press('Enter');
  return true;
}

/** Picks in the open quick pick by filtering for `text` and accepting the match. */
export async function pick(page, text, title) {
  if (title) await page.locator('.quick-input-widget .quick-input-title', { hasText: title }).waitFor({ timeout: must(15000) });
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: must(15000) });
  await input.fill(text);
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: text }).first().waitFor({ timeout: must(15000) });
  await page.keyboard.press('Enter');
}

/** Types into the open input box and presses Enter. */
export async function typeInput(page, text) {
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: must(15000) });
  await input.fill(text);
  await page.keyboard.press('Enter');
}

/**
 * A HOME for code-server whose ~/.ssh holds `config`, `known_hosts` and the test sshd's user key
 * as the default identity; the SSH agent is off. Returns the env to pass and a cleanup.
 */
export function sshHome(sshd, { config, knownHosts = '' }) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-e2e-home-'));
  fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
  fs.writeFileSync(path.join(home, '.ssh', 'config'), config);
  fs.writeFileSync(path.join(home, '.ssh', 'known_hosts'), knownHosts);
  fs.copyFileSync(sshd.userKey, path.join(home, '.ssh', 'id_ed25519'));
  fs.chmodSync(path.join(home, '.ssh', 'id_ed25519'), 0o600);
  return { home, env: { HOME: home, SSH_AUTH_SOCK: '' }, remove: () => fs.rmSync(home, { recursive: true, force: true }) };
}
