// `npm test` installs the Debian packages every tier needs (scripts/system-packages.mjs): what
// counts as missing, the exact apt-get command (run as root, printed otherwise), and the retry
// after `apt-get update`. apt-get and dpkg-query are stand-ins on PATH that record their calls,
// and the probed files live under a temporary root: this machine already has the packages.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';

const ALL = ['openssh-server', 'tini', 'docker.io', 'busybox-static', 'chromium', 'libkrb5-dev'];

describe('system packages for every test tier (npm test installs them)', () => {
  let dir = '';
  afterEach(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  /** A PATH with stand-in apt-get and dpkg-query; `failFirstInstall` makes the first install fail. */
  function fakeApt(o: { failFirstInstall?: boolean } = {}) {
    dir = tmpDir('tether-apt-');
    const bin = path.join(dir, 'bin');
    const root = path.join(dir, 'root');
    fs.mkdirSync(bin);
    fs.mkdirSync(root);
    const calls = path.join(dir, 'calls');
    const installed = path.join(dir, 'installed');
    fs.writeFileSync(installed, '');
    // dpkg-query -W -f=${Status} PKG: "install ok installed" for what the fake apt-get installed.
    fs.writeFileSync(path.join(bin, 'dpkg-query'), `#!/bin/sh\nfor p; do :; done\nif grep -qx "$p" '${installed}'; then printf 'install ok installed'; exit 0; fi\nexit 1\n`, { mode: 0o755 });
    // apt-get: records "DEBIAN_FRONTEND args"; install creates the files the probes look for.
    fs.writeFileSync(
      path.join(bin, 'apt-get'),
      `#!/bin/sh
echo "$DEBIAN_FRONTEND $*" >> '${calls}'
# -o DPkg::Lock::Timeout=600: wait for another run's dpkg lock (dropped here like apt's own options).
if [ "$1" = -o ]; then shift 2; fi
if [ "$1" = install ]; then
  ${o.failFirstInstall ? `if [ ! -e '${dir}/failed-once' ]; then touch '${dir}/failed-once'; exit 100; fi` : ':'}
  shift
  for p; do
    case "$p" in -*) continue;; esac
    echo "$p" >> '${installed}'
    case "$p" in
      openssh-server) mkdir -p '${root}/usr/sbin' && touch '${root}/usr/sbin/sshd';;
      tini) mkdir -p '${root}/usr/bin' && touch '${root}/usr/bin/tini';;
      docker.io) mkdir -p '${root}/usr/sbin' && touch '${root}/usr/sbin/dockerd';;
      chromium) mkdir -p '${root}/usr/bin' && touch '${root}/usr/bin/chromium';;
    esac
  done
fi
exit 0
`,
      { mode: 0o755 },
    );
    const env = { ...process.env, PATH: `${bin}:/usr/bin:/bin` };
    return { root, env, calls: () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n') : []) };
  }

  it('missingPackages: present when a file the tests use exists, or (for busybox-static, libkrb5-dev) when dpkg says so', async () => {
    const { missingPackages } = await import('../../scripts/system-packages.mjs');
    assert.deepEqual(missingPackages(ALL, { exists: () => false, installed: () => false }), ALL);
    assert.deepEqual(missingPackages(ALL, { exists: () => true, installed: () => false }), ['busybox-static']);
    assert.deepEqual(missingPackages(ALL, { exists: () => false, installed: () => true }), ['openssh-server', 'tini', 'docker.io', 'chromium']);
    assert.deepEqual(missingPackages(ALL, { exists: (f) => f === '/usr/bin/dockerd', installed: (p) => p === 'busybox-static' }), ['openssh-server', 'tini', 'chromium', 'libkrb5-dev']);
  });

  it('as root: one apt-get install of exactly the missing packages, noninteractive; nothing when all are present', async () => {
    const { ensureSystemPackages } = await import('../../scripts/system-packages.mjs');
    const f = fakeApt();
    const logs: string[] = [];
    const done = ensureSystemPackages(ALL, { root: f.root, isRoot: true, dryRun: false, env: f.env, log: (...a) => logs.push(a.join(' ')) });
    assert.deepEqual(done, ALL);
    assert.deepEqual(f.calls(), [`noninteractive -o DPkg::Lock::Timeout=600 install -y --no-install-recommends ${ALL.join(' ')}`]);
    assert.match(logs.join('\n'), /openssh-server: the SSH tier runs its own sshd/);
    assert.deepEqual(ensureSystemPackages(ALL, { root: f.root, isRoot: true, dryRun: false, env: f.env, log: () => {} }), []);
    assert.equal(f.calls().length, 1, 'no second apt-get');
  });

  it('as root: a failed install runs apt-get update and retries', async () => {
    const { ensureSystemPackages } = await import('../../scripts/system-packages.mjs');
    const f = fakeApt({ failFirstInstall: true });
    ensureSystemPackages(['tini'], { root: f.root, isRoot: true, dryRun: false, env: f.env, log: () => {} });
    assert.deepEqual(f.calls(), ['noninteractive -o DPkg::Lock::Timeout=600 install -y --no-install-recommends tini', 'noninteractive -o DPkg::Lock::Timeout=600 update', 'noninteractive -o DPkg::Lock::Timeout=600 install -y --no-install-recommends tini']);
  });

  it('not root: stops with the exact command and runs nothing; dry run prints it', async () => {
    const { ensureSystemPackages } = await import('../../scripts/system-packages.mjs');
    const f = fakeApt();
    assert.throws(
      () => ensureSystemPackages(ALL, { root: f.root, isRoot: false, dryRun: false, env: f.env, log: () => {} }),
      (e: Error) => e.message.includes(`sudo apt-get install -y --no-install-recommends ${ALL.join(' ')}`) && /tini: the SSH tier/.test(e.message),
    );
    const logs: string[] = [];
    assert.deepEqual(ensureSystemPackages(['chromium'], { root: f.root, isRoot: true, dryRun: true, env: f.env, log: (...a) => logs.push(a.join(' ')) }), ['chromium']);
    assert.deepEqual(logs, ['would run: apt-get install -y --no-install-recommends chromium']);
    assert.deepEqual(f.calls(), []);
  });
});
