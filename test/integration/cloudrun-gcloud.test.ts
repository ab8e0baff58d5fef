// The image's real gcloud (Cloud SDK) as the referee of the Cloud Run fake: `gcloud run jobs
// list / execute / executions list / executions cancel / executions describe` against the same
// jobs and executions that Tether's client drives through run/v2.
//
// What gcloud needs, and how the test gives it (all on 127.0.0.1, nothing resolved or reached
// elsewhere): gcloud 528's `run jobs` speak the v1 (Knative-style) API at the *regional* endpoint,
// `https://{region}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{project}/…`, and it
// derives that host by prefixing the region to CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN's host — an
// override of `http://127.0.0.1:PORT/` becomes the unresolvable `us-central1-127.0.0.1`. So the
// override names a host that is never resolved (`run.fake.invalid`) and gcloud's own proxy
// settings (CLOUDSDK_PROXY_TYPE/ADDRESS/PORT) send every request to the fake, which serves the v1
// view of its objects (the region taken from the Host). The token comes from
// CLOUDSDK_AUTH_ACCESS_TOKEN_FILE; CLOUDSDK_CONFIG is a fresh folder.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { CloudRunProvider } from '../../src/backends/cloud/cloudrun/cloudrun';
import { matchesLedgerId } from '../../src/backends/cloud/marker';
import { FakeCloudRunServer } from '../fakes/cloudRunFake';
import { tmpDir, waitFor } from '../helpers/tmp';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function gcloudOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const f = path.join(dir, 'gcloud');
    if (dir && fs.existsSync(f)) return f;
  }
  return undefined;
}

describe('gcloud run jobs against the Cloud Run fake (the Cloud SDK as referee)', function () {
  this.timeout(600_000);
  let fake: FakeCloudRunServer;
  let cfg: string;
  let gcloudEnv: NodeJS.ProcessEnv;
  const gcloud = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(gcloudOnPath()!, [...args, '--region', 'us-central1', '--quiet'], { env: gcloudEnv, timeout: 240_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout: String(stdout), stderr: String(stderr) }),
      );
    });

  before(async function () {
    assert.ok(gcloudOnPath(), 'gcloud (Cloud SDK) must be on PATH: it ships with the machine image (see /work/shared/notes/machine-facts.md)');
    fake = new FakeCloudRunServer({ bootMs: 300, terminateMs: 1500 });
    await fake.start();
    cfg = tmpDir('tether-gcloud-cfg-');
    const tokenFile = path.join(cfg, 'token');
    fs.writeFileSync(tokenFile, fake.apiKey, { mode: 0o600 });
    gcloudEnv = {
      PATH: process.env.PATH,
      HOME: cfg,
      CLOUDSDK_CONFIG: cfg,
      CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
      CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: '1',
      CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: '1',
      CLOUDSDK_CORE_PROJECT: fake.project,
      CLOUDSDK_AUTH_ACCESS_TOKEN_FILE: tokenFile,
      CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: 'http://run.fake.invalid/',
      CLOUDSDK_PROXY_TYPE: 'http',
      CLOUDSDK_PROXY_ADDRESS: '127.0.0.1',
      CLOUDSDK_PROXY_PORT: new URL(fake.url).port,
    };
  });
  after(async () => {
    await fake?.stop();
    if (cfg) fs.rmSync(cfg, { recursive: true, force: true });
  });

  it('lists the job Tether created, executes it, lists and cancels the execution; Tether sees what gcloud did and gcloud sees what Tether did', async () => {
    const p = new CloudRunProvider({ project: fake.project, region: 'us-central1', token: async () => fake.apiKey, baseUrl: fake.url, defaultImage: 'us-docker.pkg.dev/tether-test/jobs/train:1', operationPollMs: 20 });
    const ledgerId = randomUUID();
    const first = await p.launch({ ledgerId, name: 'trainer', instanceType: 'l4-4vcpu-16gib', owner: 'ab12cd34' });
    const job = first.id.split('/')[1]!;

    const list = await gcloud(['run', 'jobs', 'list', '--format=json']);
    assert.equal(list.code, 0, list.stderr);
    const jobs = JSON.parse(list.stdout) as Array<{ metadata: { name: string; labels: Record<string, string> }; spec: { template: { spec: { template: { spec: { containers: Array<{ resources: { limits: Record<string, string> } }>; nodeSelector?: Record<string, string> } } } } } }>;
    const mine = jobs.find((j) => j.metadata.name === job);
    assert.ok(mine, `gcloud lists ${job}: ${list.stdout}`);
    assert.equal(mine.metadata.labels['tether-id'], `${ledgerId.slice(0, 8)}ab12cd34`);
    assert.deepEqual(mine.spec.template.spec.template.spec.containers[0]!.resources.limits, { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' });
    assert.deepEqual(mine.spec.template.spec.template.spec.nodeSelector, { 'run.googleapis.com/accelerator': 'nvidia-l4' });

    // gcloud starts a second execution (and waits until it has started).
    const exec = await gcloud(['run', 'jobs', 'execute', job]);
    assert.equal(exec.code, 0, exec.stderr);
    assert.match(exec.stderr, /Execution \[.*(tether-[0-9a-z-]+-[a-z0-9]{5}).*\] has successfully started running/);
    const second = /Execution \[\S*?(tether-[0-9a-z-]+-[a-z0-9]{5})\S*?\]/.exec(exec.stderr)![1]!;
    const seen = await p.listInstances();
    const ids = seen.filter((i) => i.id.split('/')[1] === job).map((i) => i.id.split('/')[2]);
    assert.deepEqual(ids.sort(), [first.id.split('/')[2], second].sort(), 'Tether lists the execution gcloud started');
    const viaGcloud = seen.find((i) => i.id.endsWith(`/${second}`))!;
    assert.ok(matchesLedgerId(viaGcloud, ledgerId, 'ab12cd34'), 'it carries the job\'s marker');
    assert.equal(viaGcloud.status, 'running');

    const execs = await gcloud(['run', 'jobs', 'executions', 'list', '--job', job, '--format=value(metadata.name)']);
    assert.equal(execs.code, 0, execs.stderr);
    assert.deepEqual(execs.stdout.trim().split('\n').sort(), [first.id.split('/')[2], second].sort());

    // gcloud cancels it and waits until it is cancelled (it checks the Completed condition's reason).
    const cancel = await gcloud(['run', 'jobs', 'executions', 'cancel', second]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stderr, new RegExp(`Cancelled execution \\[${second}\\]`));
    const cancelled = await p.describe(viaGcloud.id);
    assert.deepEqual([cancelled?.status, cancelled?.rawStatus], ['terminated', 'Cancelled']);

    // Tether terminates its own execution (v2 cancel, then the job deleted): gcloud no longer finds either.
    await p.terminate(first.id);
    const gone = await gcloud(['run', 'jobs', 'executions', 'describe', first.id.split('/')[2]!]);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, new RegExp(`Cannot find execution \\[${first.id.split("/")[2]}\\]`));
    const after = await gcloud(['run', 'jobs', 'list', '--format=value(metadata.name)']);
    assert.equal(after.code, 0, after.stderr);
    assert.ok(!after.stdout.includes(job), `the job is gone: ${after.stdout}`);

    // Every gcloud request was the v1 API with the token; every v2 answer matched the discovery document.
    const v1 = fake.requests.filter((r) => r.path.startsWith('/apis/run.googleapis.com/v1/'));
    assert.ok(v1.length >= 5);
    assert.ok(v1.every((r) => r.authorization === `Bearer ${fake.apiKey}`));
    assert.deepEqual(fake.specViolations, []);
    await waitFor(async () => (await p.listInstances()).every((i) => i.status === 'terminated' || i.id.split('/')[1] !== job), 60_000, 'nothing of the job running');
  });
});
