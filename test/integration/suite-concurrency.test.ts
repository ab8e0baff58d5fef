// Two runs of the suite on one machine (two clones, two CI jobs) must not touch each other's
// test servers: the SSH test user, its home, its processes, the servers' ports, the Docker
// bridges' subnets. These tests start what two concurrent runs would start, in one process.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { freeSubnet } from '../helpers/dockerd';
import { findMotoServer, startMoto } from '../helpers/moto';
import { skipBecause } from '../helpers/skip';
import {
  processesOf,
  removeStaleTestUsers,
  sshdUnavailableReason,
  startSshd,
  TEST_USER_PREFIX,
  testUserComment,
  type TestSshd,
} from '../helpers/sshd';

const userExists = (name: string) => spawnSync('getent', ['passwd', name]).status === 0;
const alive = (pid: number) => {
  try {
    return !/^State:\s+[ZX]/m.test(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
  } catch {
    return false;
  }
};
/** `id -un` over a real ssh client to the alias `tether-test` of this server's config. */
const sshWhoami = (s: TestSshd) =>
  execFileSync('ssh', ['-F', s.sshConfig, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${s.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', 'tether-test', 'id -un'], {
    encoding: 'utf8',
    timeout: 60_000,
  }).trim();
/** A process (sleep 300) running as uid, started here, as a remote job of that user would be. */
const runAs = (uid: number) => {
  const p = spawn('sleep', ['300'], { uid, gid: uid, stdio: 'ignore', detached: true });
  p.unref();
  return p.pid!;
};

describe('test servers stay private to their run (two runs of the suite on one machine)', function () {
  this.timeout(180_000);

  describe('SSH test server (test/helpers/sshd.ts)', function () {
    const made: string[] = [];
    const strays: number[] = [];
    before(function () {
      const reason = sshdUnavailableReason();
      if (reason) skipBecause(this, reason);
    });
    after(() => {
      for (const pid of strays) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      for (const u of made) if (userExists(u)) spawnSync('userdel', ['-f', '-r', u]);
    });

    it("two servers have their own users and homes; stopping one leaves the other's processes and files alone, and removes its user", async () => {
      const a = await startSshd();
      let b: TestSshd | undefined;
      try {
        b = await startSshd();
        made.push(a.user, b.user);
        assert.notEqual(a.user, b.user, 'one Unix user per server');
        assert.notEqual(a.uid, b.uid);
        assert.notEqual(a.home, b.home);
        assert.ok(a.user.startsWith(TEST_USER_PREFIX) && a.user.length <= 32, a.user);
        assert.equal(sshWhoami(a), a.user);
        assert.equal(sshWhoami(b), b.user);
        const envB = fs.readFileSync(path.join(b.home, '.ssh', 'environment'), 'utf8');
        assert.ok(envB.includes(b.binDir), envB);
        fs.writeFileSync(path.join(b.home, 'argv.bin'), 'b');
        const jobB = runAs(b.uid);
        const jobA = runAs(a.uid);
        strays.push(jobA, jobB);

        await a.stop();
        assert.ok(!alive(jobA), "the stopped server's own job was ended");
        assert.ok(!userExists(a.user), `${a.user} was removed`);
        assert.ok(!fs.existsSync(a.home), `${a.home} was removed`);
        assert.ok(alive(jobB), "the other server's job still runs");
        assert.equal(fs.readFileSync(path.join(b.home, 'argv.bin'), 'utf8'), 'b');
        assert.equal(fs.readFileSync(path.join(b.home, '.ssh', 'environment'), 'utf8'), envB);
        assert.equal(sshWhoami(b), b.user, 'the other server still serves its user');

        await b.stop();
        assert.ok(!alive(jobB));
        assert.deepEqual(processesOf(b.uid), []);
        assert.ok(!userExists(b.user) && !fs.existsSync(b.home));
      } finally {
        await a.stop();
        await b?.stop();
      }
    });

    it('removes the users of crashed runs only: prefix, creator gone, nothing running, old enough', async () => {
      const dead = spawnSync('true').pid!; // exited and reaped: a creator that is gone
      const myStart = fs.readFileSync(`/proc/${process.pid}/stat`, 'latin1').split(') ')[1]!.split(' ')[19]!;
      const old = Date.now() - 3 * 3600_000;
      const mk = (tag: string, creator: { pid: number; startTime: string; atMs: number }) => {
        const name = `${TEST_USER_PREFIX}${tag}`;
        if (userExists(name)) spawnSync('userdel', ['-f', '-r', name]);
        made.push(name);
        execFileSync('useradd', ['-m', '-d', `/home/${name}`, '-s', '/bin/sh', '-c', testUserComment(creator), name]);
        return { name, uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' })) };
      };
      const hex = () => Math.floor(Math.random() * 0xfffffff).toString(16).padStart(7, '0');
      const crashed = mk(`c${hex()}`, { pid: dead, startTime: '1', atMs: old });
      const running = mk(`a${hex()}`, { pid: process.pid, startTime: myStart, atMs: old }); // a live run (this one)
      const busy = mk(`b${hex()}`, { pid: dead, startTime: '1', atMs: old }); // creator gone, a job still runs
      const young = mk(`d${hex()}`, { pid: dead, startTime: '1', atMs: Date.now() });
      const job = runAs(busy.uid);
      strays.push(job);

      const removed = await removeStaleTestUsers(3600_000);
      // (Another run's clean-up, at its own start, may have removed it first: it is stale for it too.)
      assert.ok(!userExists(crashed.name) && !fs.existsSync(`/home/${crashed.name}`), `${crashed.name} is still there (removed: ${removed.join(', ')})`);
      for (const kept of [running, busy, young]) {
        assert.ok(!removed.includes(kept.name) && userExists(kept.name), `${kept.name} kept (removed: ${removed.join(', ')})`);
      }
      assert.ok(alive(job), 'a running job is never ended by the clean-up');
      assert.ok(removed.every((n) => n.startsWith(TEST_USER_PREFIX)));
    });

    it("a port that another run's server took before sshd could bind is not mistaken for this server's", async () => {
      // Another "sshd" (a banner is all a readiness probe sees) holds the port freePort() gave us.
      const taken = net.createServer((s) => s.end('SSH-2.0-OpenSSH_other_run\r\n'));
      await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
      const port = (taken.address() as net.AddressInfo).port;
      let s: TestSshd | undefined;
      try {
        s = await startSshd({ port });
        made.push(s.user);
        assert.notEqual(s.port, port);
        assert.equal(sshWhoami(s), s.user);
      } finally {
        await s?.stop();
        taken.close();
      }
    });
  });

  describe('moto (test/helpers/moto.ts)', function () {
    it("a port that another process took before moto could bind is not mistaken for this moto's", async function () {
      const bin = findMotoServer().bin;
      if (!bin) skipBecause(this, 'moto_server is missing');
      // Answers like a moto of another run: 200 to everything.
      const taken = http.createServer((_req, res) => res.end('{}'));
      await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
      const port = (taken.address() as net.AddressInfo).port;
      const m = await startMoto(bin!, { port });
      try {
        assert.notEqual(m.port, port);
        const res = await fetch(`${m.endpoint}/moto-api/data.json`);
        assert.equal(res.status, 200);
        assert.ok(typeof (await res.json()) === 'object');
      } finally {
        await m.stop();
        taken.close();
      }
    });
  });

  describe('Docker test bridges (test/helpers/dockerd.ts)', function () {
    it("picks a subnet that no route of the machine (another run's bridge) covers", () => {
      const ip = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
      const route = (cidr: string) => {
        const [a, bits] = cidr.split('/');
        return { dest: ip(a!), mask: Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0 };
      };
      // Everything in 10.100.0.0–10.199.255.0 is routed except 10.150.7.0/24.
      const routes = [
        '10.100.0.0/14', '10.104.0.0/13', '10.112.0.0/12', '10.128.0.0/12', '10.144.0.0/14', '10.148.0.0/15', '10.151.0.0/16',
        '10.152.0.0/13', '10.160.0.0/11', '10.192.0.0/13', '10.150.0.0/22', '10.150.4.0/23', '10.150.6.0/24', '10.150.8.0/21',
        '10.150.16.0/20', '10.150.32.0/19', '10.150.64.0/18', '10.150.128.0/17', '0.0.0.0/0', '192.0.2.0/24',
      ].map(route);
      for (let i = 0; i < 20; i++) assert.equal(freeSubnet(routes), '10.150.7.0/24');
      // A narrower route inside a /24 (a smaller bridge) also makes that /24 taken.
      assert.throws(() => freeSubnet([...routes, route('10.150.7.128/25')]), /every \/24/);
    });
  });
});
