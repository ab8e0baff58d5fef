/**
 * Google Cloud credentials and project, shared by the Google providers (Compute Engine, Cloud Run).
 *
 * Access token, first found wins:
 *  1. `TETHER_GCP_ACCESS_TOKEN` (automation and tests): used as is, never logged or stored.
 *  2. google-auth-library's Application Default Credentials, in the ecosystem's order:
 *     `GOOGLE_APPLICATION_CREDENTIALS` (a service-account key JSON, or any ADC JSON file),
 *     gcloud's application-default file (`gcloud auth application-default login`:
 *     `$CLOUDSDK_CONFIG/application_default_credentials.json`, else
 *     `~/.config/gcloud/application_default_credentials.json`), then the metadata server (on GCE,
 *     Cloud Run, GKE). The library is loaded with `await import()` on first use (it is heavy and
 *     only the Google providers need it).
 *  3. Nothing: a {@link TetherError} saying what to set.
 *
 * Project, first found wins: the setting / CLI argument, `GOOGLE_CLOUD_PROJECT`,
 * `GCLOUD_PROJECT` (the older name the Google libraries still read), `CLOUDSDK_CORE_PROJECT`,
 * then `gcloud config get-value project` when gcloud is on PATH (with a timeout: gcloud's Python
 * start is slow), else an error with the remedy.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TetherError, UsageError } from '../../core/errors';

export type Env = Record<string, string | undefined>;

/** The scope Compute Engine and Cloud Run accept. */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

export const GCP_TOKEN_ENV = 'TETHER_GCP_ACCESS_TOKEN';

export const NO_GOOGLE_CREDENTIALS_REMEDY =
  'Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key JSON file, ' +
  `or set ${GCP_TOKEN_ENV} to an access token (e.g. \`gcloud auth print-access-token\`); on a Google Cloud VM, give the VM a service account.`;

export interface GoogleTokenOptions {
  /** Default: process.env. */
  env?: Env;
  /** Default: cloud-platform. */
  scopes?: string[];
}

/** The minimal surface of google-auth-library's GoogleAuth that Tether uses. */
interface GoogleAuthLike {
  getAccessToken(): Promise<string | null | undefined>;
}

/** One GoogleAuth per (credentials file, scopes): the library caches and refreshes the token itself. */
const auths = new Map<string, GoogleAuthLike>();

/** Forgets the cached GoogleAuth clients (tests; after the user changed credentials). */
export function resetGoogleAuthCache(): void {
  auths.clear();
}

/**
 * The ADC file google-auth-library would read, resolved from `env` (so a caller's environment,
 * not only process.env, decides): GOOGLE_APPLICATION_CREDENTIALS, else gcloud's
 * application-default file. Undefined: none (the metadata server is next).
 */
export function adcFile(env: Env = process.env): string | undefined {
  const explicit = env.GOOGLE_APPLICATION_CREDENTIALS?.trim();
  if (explicit) return explicit;
  const dirs: string[] = [];
  if (env.CLOUDSDK_CONFIG) dirs.push(env.CLOUDSDK_CONFIG);
  if (process.platform === 'win32' && env.APPDATA) dirs.push(path.join(env.APPDATA, 'gcloud'));
  if (env.HOME) dirs.push(path.join(env.HOME, '.config', 'gcloud'));
  for (const d of dirs) {
    const f = path.join(d, 'application_default_credentials.json');
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

/** A Google OAuth access token for the Cloud APIs (see the file comment for the order). */
export async function googleAccessToken(opts: GoogleTokenOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const direct = env[GCP_TOKEN_ENV]?.trim();
  if (direct) return direct;
  const scopes = opts.scopes ?? [CLOUD_PLATFORM_SCOPE];
  const keyFilename = adcFile(env);
  if (keyFilename && env.GOOGLE_APPLICATION_CREDENTIALS?.trim() && !fs.existsSync(keyFilename)) {
    throw new TetherError(`GOOGLE_APPLICATION_CREDENTIALS names ${keyFilename}, which does not exist`, {
      remedy: `Point GOOGLE_APPLICATION_CREDENTIALS at a service-account key JSON file, or unset it. ${NO_GOOGLE_CREDENTIALS_REMEDY}`,
    });
  }
  const key = `${keyFilename ?? '(metadata)'}\0${scopes.join(' ')}`;
  let token: string | null | undefined;
  try {
    let auth = auths.get(key);
    if (!auth) {
      const lib = await import('google-auth-library');
      if (keyFilename) {
        auth = new lib.GoogleAuth({ scopes, keyFilename }) as GoogleAuthLike;
      } else {
        // No file: the metadata server is the last step. The library's detection reads
        // process.env (METADATA_SERVER_DETECTION, GCE_METADATA_HOST), as every Google client does.
        if (!(await lib.gcpMetadata.isAvailable())) throw new Error('Could not load the default credentials (no metadata server).');
        const compute = new lib.Compute({ scopes });
        auth = { getAccessToken: async () => (await compute.getAccessToken()).token };
      }
      auths.set(key, auth);
    }
    token = await auth.getAccessToken();
  } catch (err) {
    auths.delete(key);
    const msg = String((err as Error)?.message ?? err);
    if (/Could not load the default credentials/i.test(msg)) {
      throw new TetherError('No Google Cloud credentials found (no GOOGLE_APPLICATION_CREDENTIALS, no gcloud application-default login, no metadata server)', {
        remedy: NO_GOOGLE_CREDENTIALS_REMEDY,
        cause: err,
      });
    }
    throw new TetherError(`Google Cloud credentials${keyFilename ? ` from ${keyFilename}` : ' from the metadata server'} could not give an access token: ${msg.slice(0, 300)}`, {
      remedy: keyFilename
        ? `Check that ${keyFilename} is a valid, non-revoked key (or run \`gcloud auth application-default login\` again). ${NO_GOOGLE_CREDENTIALS_REMEDY}`
        : NO_GOOGLE_CREDENTIALS_REMEDY,
      cause: err,
    });
  }
  if (!token) throw new TetherError('Google Cloud credentials gave no access token', { remedy: NO_GOOGLE_CREDENTIALS_REMEDY });
  return token;
}

/** A project id (6-30 characters: lowercase letters, digits, hyphens; starts with a letter), optionally domain-scoped ("example.com:proj"). */
export const PROJECT_ID_RE = /^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

export interface GcloudRunner {
  /** Runs `gcloud args...`; resolves stdout (trimmed), or undefined when gcloud fails / times out / is absent. */
  (args: string[], env: Env, timeoutMs: number): Promise<string | undefined>;
}

/** Finds an executable on env.PATH. */
export function onPath(name: string, env: Env = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const f = path.join(dir, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      if (fs.statSync(f).isFile()) return f;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The real gcloud, run only when it is on PATH, never prompting, killed after `timeoutMs`. */
export const runGcloud: GcloudRunner = (args, env, timeoutMs) => {
  const exe = onPath('gcloud', env);
  if (!exe) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    execFile(exe, [...args, '--quiet'], { env: { ...env, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' } as NodeJS.ProcessEnv, timeout: timeoutMs, killSignal: 'SIGKILL', windowsHide: true }, (err, stdout) => {
      if (err) return resolve(undefined);
      const out = String(stdout).trim();
      resolve(out === '' || out === '(unset)' ? undefined : out);
    });
  });
};

/** How long `gcloud config get-value` may take (gcloud is a Python program; a cold start on a loaded machine takes seconds). */
export const GCLOUD_TIMEOUT_MS = 20_000;

/** A value of gcloud's configuration (`gcloud config get-value <key>`), or undefined. */
export async function gcloudConfigValue(key: string, opts: { env?: Env; gcloud?: GcloudRunner; timeoutMs?: number } = {}): Promise<string | undefined> {
  const env = opts.env ?? process.env;
  return (opts.gcloud ?? runGcloud)(['config', 'get-value', key], env, opts.timeoutMs ?? GCLOUD_TIMEOUT_MS);
}

export interface GoogleProjectOptions {
  /** From the setting or the CLI argument: wins over everything. */
  project?: string;
  env?: Env;
  /** Default: the real gcloud when on PATH (tests inject one). */
  gcloud?: GcloudRunner;
  timeoutMs?: number;
}

/** Where the project came from (shown by the CLI / wizard). */
export type ProjectSource = 'setting' | 'GOOGLE_CLOUD_PROJECT' | 'GCLOUD_PROJECT' | 'CLOUDSDK_CORE_PROJECT' | 'gcloud config';

/** The Google Cloud project to use, and where it came from (see the file comment for the order). */
export async function googleProjectWithSource(opts: GoogleProjectOptions = {}): Promise<{ project: string; source: ProjectSource }> {
  const env = opts.env ?? process.env;
  const check = (p: string, source: ProjectSource) => {
    if (!PROJECT_ID_RE.test(p)) {
      throw new UsageError(
        `"${p}" (from ${source}) is not a Google Cloud project id`,
        'A project id is 6-30 characters: lowercase letters, digits and hyphens, starting with a letter (the id, not the display name or number; see `gcloud projects list`).',
      );
    }
    return { project: p, source };
  };
  if (opts.project?.trim()) return check(opts.project.trim(), 'setting');
  for (const k of ['GOOGLE_CLOUD_PROJECT', 'GCLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT'] as const) {
    const v = env[k]?.trim();
    if (v) return check(v, k);
  }
  const fromGcloud = await gcloudConfigValue('project', { env, ...(opts.gcloud ? { gcloud: opts.gcloud } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
  if (fromGcloud) return check(fromGcloud, 'gcloud config');
  throw new UsageError(
    'No Google Cloud project given',
    'Pass --project P (or the setting tether.cloud.gcp.project), set GOOGLE_CLOUD_PROJECT, or run `gcloud config set project P`.',
  );
}

/** The Google Cloud project id (setting/argument → GOOGLE_CLOUD_PROJECT / GCLOUD_PROJECT / CLOUDSDK_CORE_PROJECT → gcloud config → error). */
export async function googleProject(opts: GoogleProjectOptions = {}): Promise<string> {
  return (await googleProjectWithSource(opts)).project;
}
