// Google Cloud credentials and project resolution shared by the Google providers (issue 15).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { TetherError, UsageError } from '../../src/core/errors';
import { adcFile, googleAccessToken, googleProject, googleProjectWithSource, resetGoogleAuthCache, runGcloud, type GcloudRunner } from '../../src/backends/cloud/googleAuth';
import { tmpDir } from '../helpers/tmp';

/** Sets process.env keys for the duration of fn (google-auth-library's metadata detection reads process.env). */
async function withProcessEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('Google Cloud credentials (googleAccessToken)', () => {
  let home: string;
  beforeEach(() => {
    home = tmpDir('tether-gauth-');
    resetGoogleAuthCache();
  });
  afterEach(() => {
    fs.rmSync(home, { recursive: true, force: true });
    resetGoogleAuthCache();
  });

  it('TETHER_GCP_ACCESS_TOKEN wins over every other source and is returned as given', async () => {
    const env = { TETHER_GCP_ACCESS_TOKEN: 'ya29.test-token', GOOGLE_APPLICATION_CREDENTIALS: path.join(home, 'missing.json'), HOME: home };
    assert.equal(await googleAccessToken({ env }), 'ya29.test-token');
  });

  it('no credentials anywhere: a TetherError naming every way to log in', async () => {
    const env = { HOME: home, PATH: process.env.PATH };
    const err = await withProcessEnv({ METADATA_SERVER_DETECTION: 'none', GOOGLE_APPLICATION_CREDENTIALS: undefined }, () => googleAccessToken({ env }).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof TetherError, String(err));
    assert.match(err.message, /No Google Cloud credentials found/);
    assert.match(err.remedy, /gcloud auth application-default login/);
    assert.match(err.remedy, /GOOGLE_APPLICATION_CREDENTIALS/);
    assert.match(err.remedy, /TETHER_GCP_ACCESS_TOKEN/);
  });

  it('GOOGLE_APPLICATION_CREDENTIALS naming a missing file: an error that says so (not a silent fall-through to the next source)', async () => {
    const f = path.join(home, 'nope.json');
    const err = await googleAccessToken({ env: { HOME: home, GOOGLE_APPLICATION_CREDENTIALS: f } }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TetherError);
    assert.ok(err.message.includes(f), err.message);
  });

  it('the ADC file order: GOOGLE_APPLICATION_CREDENTIALS, then $CLOUDSDK_CONFIG, then ~/.config/gcloud', () => {
    const cfg = path.join(home, 'cfg');
    const homeAdc = path.join(home, '.config', 'gcloud', 'application_default_credentials.json');
    fs.mkdirSync(path.dirname(homeAdc), { recursive: true });
    fs.writeFileSync(homeAdc, '{}');
    assert.equal(adcFile({ HOME: home }), homeAdc);
    fs.mkdirSync(cfg);
    fs.writeFileSync(path.join(cfg, 'application_default_credentials.json'), '{}');
    assert.equal(adcFile({ HOME: home, CLOUDSDK_CONFIG: cfg }), path.join(cfg, 'application_default_credentials.json'));
    assert.equal(adcFile({ HOME: home, CLOUDSDK_CONFIG: cfg, GOOGLE_APPLICATION_CREDENTIALS: '/x/sa.json' }), '/x/sa.json');
    assert.equal(adcFile({ HOME: path.join(home, 'empty') }), undefined);
  });

  it('the metadata server is the last step: a token from it through google-auth-library (a fake metadata server on 127.0.0.1)', async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.url} ${req.headers['metadata-flavor']}`);
      res.setHeader('Metadata-Flavor', 'Google');
      if (req.headers['metadata-flavor'] !== 'Google') {
        res.statusCode = 403;
        return res.end('missing header');
      }
      if (req.url?.startsWith('/computeMetadata/v1/instance/service-accounts/default/token')) {
        res.setHeader('Content-Type', 'application/json');
        return res.end(JSON.stringify({ access_token: 'ya29.from-metadata', expires_in: 3599, token_type: 'Bearer' }));
      }
      res.statusCode = 404;
      res.end('not found');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const token = await withProcessEnv({ METADATA_SERVER_DETECTION: 'assume-present', GCE_METADATA_HOST: `127.0.0.1:${port}`, GOOGLE_APPLICATION_CREDENTIALS: undefined }, () =>
        googleAccessToken({ env: { HOME: home } }),
      );
      assert.equal(token, 'ya29.from-metadata');
      assert.ok(seen.some((s) => s.startsWith('/computeMetadata/v1/instance/service-accounts/default/token') && s.endsWith(' Google')), seen.join('\n'));
    } finally {
      server.close();
    }
  });
});

describe('Google Cloud project (googleProject)', () => {
  const noGcloud: GcloudRunner = async () => undefined;

  it('order: argument, GOOGLE_CLOUD_PROJECT, GCLOUD_PROJECT, CLOUDSDK_CORE_PROJECT, gcloud config', async () => {
    const calls: string[][] = [];
    const gcloud: GcloudRunner = async (args) => {
      calls.push(args);
      return 'from-gcloud-1';
    };
    const env = { GOOGLE_CLOUD_PROJECT: 'from-env-1', GCLOUD_PROJECT: 'from-legacy-1', CLOUDSDK_CORE_PROJECT: 'from-sdk-1' };
    assert.deepEqual(await googleProjectWithSource({ project: 'from-arg-1', env, gcloud }), { project: 'from-arg-1', source: 'setting' });
    assert.deepEqual(await googleProjectWithSource({ env, gcloud }), { project: 'from-env-1', source: 'GOOGLE_CLOUD_PROJECT' });
    assert.deepEqual(await googleProjectWithSource({ env: { ...env, GOOGLE_CLOUD_PROJECT: '' }, gcloud }), { project: 'from-legacy-1', source: 'GCLOUD_PROJECT' });
    assert.deepEqual(await googleProjectWithSource({ env: { CLOUDSDK_CORE_PROJECT: 'from-sdk-1' }, gcloud }), { project: 'from-sdk-1', source: 'CLOUDSDK_CORE_PROJECT' });
    assert.deepEqual(calls, [], 'gcloud not asked while a cheaper source answers');
    assert.deepEqual(await googleProjectWithSource({ env: {}, gcloud }), { project: 'from-gcloud-1', source: 'gcloud config' });
    assert.deepEqual(calls, [['config', 'get-value', 'project']]);
  });

  it('nothing anywhere: a usage error with the remedy', async () => {
    const err = await googleProject({ env: {}, gcloud: noGcloud }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UsageError);
    assert.match(err.remedy, /--project/);
    assert.match(err.remedy, /GOOGLE_CLOUD_PROJECT/);
    assert.match(err.remedy, /gcloud config set project/);
  });

  it('a malformed project id is refused before anything is asked of the API', async () => {
    for (const bad of ['My Project', 'ab', 'UPPER-case-1', '1starts-with-digit', 'x'.repeat(31)]) {
      await assert.rejects(googleProject({ project: bad, gcloud: noGcloud }), UsageError, bad);
    }
    assert.equal(await googleProject({ project: 'example.com:my-proj', gcloud: noGcloud }), 'example.com:my-proj');
  });

  it('the real gcloud: reads `gcloud config get-value project` from its own config dir (never the user one), nothing when unset or absent', async function () {
    this.timeout(180_000);
    const cfg = tmpDir('tether-gcloud-cfg-');
    try {
      const env = { PATH: process.env.PATH, HOME: cfg, CLOUDSDK_CONFIG: cfg };
      assert.equal(await googleProject({ env, gcloud: runGcloud, timeoutMs: 120_000 }).catch((e: unknown) => e instanceof UsageError), true, 'unset: usage error');
      fs.mkdirSync(path.join(cfg, 'configurations'), { recursive: true });
      fs.writeFileSync(path.join(cfg, 'active_config'), 'default');
      fs.writeFileSync(path.join(cfg, 'configurations', 'config_default'), '[core]\nproject = tether-from-gcloud\n');
      assert.deepEqual(await googleProjectWithSource({ env, gcloud: runGcloud, timeoutMs: 120_000 }), { project: 'tether-from-gcloud', source: 'gcloud config' });
      // gcloud not on PATH: not run, the usual error.
      const err = await googleProject({ env: { ...env, PATH: path.join(cfg, 'nothing') }, gcloud: runGcloud }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof UsageError);
    } finally {
      fs.rmSync(cfg, { recursive: true, force: true });
    }
  });
});
