// The Debian packages the test tiers and the real-VS-Code harness need, and their installation
// (as root with apt; otherwise a clear error naming the exact command). Plain Node ESM (Node 20).
//
//   node scripts/system-packages.mjs            prints what is missing and the command (exit 0/3)
//   node scripts/system-packages.mjs --install  installs what is missing (as root with apt)
//
// Env (for tests of this module): TETHER_SYSTEM_ROOT=DIR looks for the files below DIR;
// TETHER_APT_DRY_RUN=1 prints the apt-get command instead of running it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What each package is for, and what "present" means: a package is present when one of its
 * `files` exists (the binaries the tests run), or — for those without files that tell — when
 * dpkg says it is installed.
 */
export const SYSTEM_PACKAGES = [
  { pkg: 'openssh-server', why: 'the SSH tier runs its own sshd', files: ['/usr/sbin/sshd'] },
  { pkg: 'tini', why: 'the SSH tier runs sshd behind tini (a subreaper)', files: ['/usr/bin/tini'] },
  { pkg: 'docker.io', why: 'the Docker tier starts its own dockerd', files: ['/usr/sbin/dockerd', '/usr/bin/dockerd'] },
  { pkg: 'busybox-static', why: 'the Docker tier imports a busybox image (no registry)', dpkg: true },
  { pkg: 'chromium', why: 'the end-to-end tests drive a real VS Code in Chromium', files: ['/usr/bin/chromium'] },
  { pkg: 'libkrb5-dev', why: "code-server's kerberos module compiles against it", dpkg: true, files: ['/usr/include/krb5.h'] },
];

/** dpkg's view of a package (false when dpkg-query is missing or says otherwise). */
export function dpkgInstalled(pkg, env = process.env) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8', env });
  return r.status === 0 && /install ok installed/.test(r.stdout);
}

/**
 * The packages of `wanted` (names) that are missing. Probes are injectable:
 * `exists(file)` and `installed(pkg)`.
 */
export function missingPackages(wanted, { exists = (f) => fs.existsSync(f), installed = (p) => dpkgInstalled(p) } = {}) {
  return wanted.filter((name) => {
    const spec = SYSTEM_PACKAGES.find((s) => s.pkg === name) ?? { pkg: name, dpkg: true };
    if (spec.files?.some((f) => exists(f))) return false;
    if (spec.dpkg && installed(name)) return false;
    return true;
  });
}

export const aptInstallCommand = (pkgs) => `apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;

function onPath(cmd, env) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', env }).status === 0;
}

/**
 * Installs the missing ones of `wanted` with apt when root, else throws with the exact command.
 * Options (for tests): root (a folder the file probes are relative to), isRoot, dryRun, env, log.
 * Returns the packages it installed (or would install, when dryRun).
 */
export function ensureSystemPackages(wanted = SYSTEM_PACKAGES.map((s) => s.pkg), {
  log = (...a) => console.log('[system]', ...a),
  root = process.env.TETHER_SYSTEM_ROOT || '',
  isRoot = typeof process.getuid === 'function' && process.getuid() === 0,
  dryRun = process.env.TETHER_APT_DRY_RUN === '1',
  env = process.env,
} = {}) {
  const probes = {
    exists: (f) => fs.existsSync(root ? path.join(root, f) : f),
    installed: (p) => dpkgInstalled(p, env),
  };
  const missing = missingPackages(wanted, probes);
  if (!missing.length) return [];
  const cmd = aptInstallCommand(missing);
  const why = missing.map((p) => `  ${p}: ${SYSTEM_PACKAGES.find((s) => s.pkg === p)?.why ?? 'needed'}`).join('\n');
  const hasApt = onPath('apt-get', env);
  if (!isRoot || !hasApt) {
    throw new Error(`Missing system packages:\n${why}\nInstall them with:\n  sudo ${cmd}` +
      (hasApt ? '' : '\n(apt-get not found: install the equivalent packages of your distribution)'));
  }
  if (dryRun) {
    log(`would run: ${cmd}`);
    return missing;
  }
  log(`installing Debian packages:\n${why}\n$ ${cmd}`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  const args = ['install', '-y', '--no-install-recommends', ...missing];
  const apt = (a) => {
    // Another run (a second clone's npm test) may hold dpkg's lock: wait for it instead of failing.
    const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...a], { env: aptEnv, stdio: 'inherit' });
    if (r.error) throw r.error;
    return r.status;
  };
  if (apt(args) !== 0) {
    log('apt-get install failed; running apt-get update and retrying');
    if (apt(['update']) !== 0) throw new Error(`apt-get update failed; then run: ${cmd}`);
    if (apt(args) !== 0) throw new Error(`"${cmd}" failed`);
  }
  const still = missingPackages(missing, probes);
  if (still.length) throw new Error(`still missing after "${cmd}": ${still.join(', ')}`);
  return missing;
}

// CLI
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const install = process.argv.includes('--install');
  try {
    if (install) {
      const done = ensureSystemPackages();
      console.log(done.length ? `installed: ${done.join(' ')}` : 'all system packages present');
    } else {
      const missing = missingPackages(SYSTEM_PACKAGES.map((s) => s.pkg), {
        exists: (f) => fs.existsSync(process.env.TETHER_SYSTEM_ROOT ? path.join(process.env.TETHER_SYSTEM_ROOT, f) : f),
      });
      if (!missing.length) console.log('all system packages present');
      else {
        console.log(`missing: ${missing.join(' ')}\n  sudo ${aptInstallCommand(missing)}`);
        process.exitCode = 3;
      }
    }
  } catch (e) {
    console.error(String(e.message ?? e));
    process.exitCode = 2;
  }
}
