/**
 * An EC2 instance becomes an SSH host when it is up, and remote plugins run on it: the real
 * @aws-sdk/client-ec2 against moto (an AWS emulator), the real engine, and the real loopback
 * OpenSSH server. moto's instances get fake public addresses that must never be contacted: the
 * test's ssh config maps the instance's address to the loopback server (`Host <address>` →
 * `HostName 127.0.0.1`, `Port`, `User`, `IdentityFile`), which is exactly how a user points
 * Tether at a jump host or a key for their instances.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/workspace/engine';
import { AwsEc2Provider } from '../../src/backends/cloud/aws/aws';
import { findMotoServer, startMoto, type MotoServer } from '../helpers/moto';
import { processesOf, startSshd, sshdUnavailableReason, type TestSshd } from '../helpers/sshd';
import { tmpDir, waitFor } from '../helpers/tmp';
import { skipBecause } from '../helpers/skip';

describe('an EC2 instance (moto) as an SSH host of the engine, mapped to the loopback OpenSSH server', function () {
  this.timeout(90000);
  let moto: MotoServer | undefined;
  let sshd: TestSshd | undefined;
  let aws: AwsEc2Provider;

  before(async function () {
    const found = findMotoServer();
    if (!found.bin) {
      skipBecause(this, `moto_server (the AWS emulator of the machine image) was not found; looked at:\n  ${found.searched.join('\n  ')}`);
    }
    const reason = sshdUnavailableReason();
    if (reason) {
      skipBecause(this, reason);
    }
    moto = await startMoto(found.bin!);
    sshd = await startSshd();
    aws = new AwsEc2Provider({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, defaultImageId: 'ami-1e749f67' });
  });
  after(async () => {
    aws?.dispose();
    await moto?.stop();
    await sshd?.stop();
  });

  it('launch → running → its address is a host (connected, GPUs) → a remote plugin runs there and stops → terminate removes the host', async () => {
    fs.writeFileSync(
      path.join(sshd!.binDir, 'nvidia-smi'),
      "#!/bin/sh\nprintf '0, Tesla T4, 41, 2048, 15360\\n'\n", // hand-written line in nvidia-smi's CSV format (no GPU here)
      { mode: 0o755 },
    );
    const stateDir = tmpDir('tether-ec2-ssh-');
    const ws = tmpDir('tether-ec2-ws-');
    const sshConfig = path.join(stateDir, 'ssh_config');
    fs.writeFileSync(sshConfig, '');
    const engine = new Engine({
      workspace: ws,
      stateDir,
      ownerKind: 'cli',
      cloudProviders: () => [aws],
      ssh: { resolve: { configPath: sshConfig }, knownHostsFiles: [sshd!.knownHosts], agent: null, backoffInitialMs: 200 },
    });
    try {
      const v = await engine.cloud.provision('aws', { name: 'ec2-box', instanceType: 'g4dn.xlarge', region: 'us-east-1' });
      // Polls reconcile the provider's view into the ledger (pending → running, the address).
      const rec = await waitFor(async () => {
        await engine.cloud.status();
        const r = engine.ledger.read().resources.find((x) => x.id === v.ledgerId);
        return r?.state === 'running' && r.remote?.sshHost ? r : undefined;
      }, 15000, 'the instance running with an address');
      const address = rec.remote!.sshHost!;
      assert.ok(!/^127\./.test(address), `moto gave a fake public address (${address}), never contacted`);
      fs.writeFileSync(sshConfig, `Host ${address}\n  HostName 127.0.0.1\n  Port ${sshd!.port}\n  User ${sshd!.user}\n  IdentityFile ${sshd!.userKey}\n`);
      fs.mkdirSync(path.join(ws, '.vscode'));
      fs.writeFileSync(path.join(ws, '.vscode', 'tether.json'), JSON.stringify({ plugins: [{ name: 'job', command: 'sh', args: ['-c', 'sleep 30 & sleep 30; wait'], host: address }] }));

      const st = await waitFor(async () => {
        const s = await engine.status();
        const h = s.hosts.find((x) => x.cloud?.ledgerId === v.ledgerId);
        return h?.state === 'connected' && h.gpus?.length ? { s, h } : undefined;
      }, 20000, 'the instance connected as an SSH host');
      assert.equal(st.h.host, address);
      assert.equal(st.h.target, `${sshd!.user}@127.0.0.1:${sshd!.port}`, 'resolved through the ssh config to the loopback server');
      assert.deepEqual(st.h.gpus!.map((g) => [g.name, g.utilizationPercent]), [['Tesla T4', 41]]);
      assert.equal(st.h.cloud?.name, 'ec2-box');

      const started = await engine.start('job');
      assert.equal(started.host, address);
      const running = await waitFor(async () => {
        const s = await engine.status();
        const p = s.plugins.find((x) => x.name === 'job');
        return p && p.processes.length >= 3 ? p : undefined;
      }, 15000, 'the remote plugin with its children');
      assert.equal(running.kind, 'ssh');
      const pids = running.processes.map((p) => p.pid);
      assert.ok(pids.every((pid) => processesOf(sshd!.uid).includes(pid)), 'its processes run as the test user behind the loopback server');
      await engine.stop('job');
      await waitFor(() => pids.every((pid) => !processesOf(sshd!.uid).includes(pid)), 10000, 'the remote tree gone');

      await engine.cloud.terminate((await engine.cloud.status()).instances.find((i) => i.ledgerId === v.ledgerId)!);
      const after = await engine.status();
      assert.ok(!after.hosts.some((h) => h.cloud?.ledgerId === v.ledgerId), 'a terminated instance is no SSH host any more');
    } finally {
      engine.dispose();
      fs.rmSync(path.join(sshd!.binDir, 'nvidia-smi'), { force: true });
    }
  });
});
