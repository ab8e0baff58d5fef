/**
 * Lambda Cloud (On-Demand Cloud) over its public REST API.
 *
 * Follows the published spec: Lambda Cloud API 1.8.3 (servers https://cloud.lambda.ai/), as
 * copied in test/fixtures/lambda/openapi-1.8.3-excerpt.json from
 * alexandervaneck/lambda-ai-cloud-api-client @ b6023bc07c0933df459426b281c113844f2571f5,
 * openapi-1.8.3.json. Base https://cloud.lambda.ai/api/v1, `Authorization: Bearer <key>`.
 * Endpoints used: `GET /instance-types`, `GET /instances`, `GET /instances/{id}`,
 * `POST /instance-operations/launch`, `POST /instance-operations/terminate`, `GET /ssh-keys`,
 * `POST /ssh-keys`.
 *
 * - A launch names exactly one SSH key ("Currently, exactly one SSH key must be specified";
 *   1.5.1 said minItems 1, maxItems 1): without one it is refused here, before any call.
 * - Instance status `preempted` is an end (the instance no longer runs, nothing bills).
 * - Errors: `{"error": {code, message, suggestion?}}`; the remedy follows the documented code
 *   (401 invalid API key; 403 account inactive or billing address, not a bad key; 404 a launch
 *   resource not found; 400 invalid parameters, no capacity, quota...).
 * - Rate limits (spec): about one request per second, launch one per 12 s. Launches from this
 *   process are paced per account; a refused (429) launch is retried no sooner than the launch
 *   gap. The spec documents no Retry-After (honoured if one ever comes).
 *
 * Lambda has no idempotency token: the instance name carries Tether's marker
 * ({@link markedName}) and a launch lists by name before every (re)try.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAMBDA_BILLING } from '../rules';
import { ExitCode, TetherError } from '../../../core/errors';
import { CloudProviderType } from '../../../core/protocols';
import { bearerClient, isAmbiguous, type JsonHttpClient, type ParsedError, type RestProviderOptions } from '../http';
import { launchIdempotently, parseMarker } from '../marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from '../provider';

export { matchesLedgerId } from '../marker';

export const LAMBDA_DEFAULT_URL = 'https://cloud.lambda.ai/api/v1';

/** Spec: "Requests to the `/instance-operations/launch` endpoint are limited to one request per 12 seconds". */
export const LAMBDA_LAUNCH_GAP_MS = 12_000;
/** Spec: "Requests to the API are generally limited to one request per second": the first retry waits at least that (jitter included). */
export const LAMBDA_RETRY_BACKOFF_MS = 1_400;
/** Where a user manages API keys (named by the spec). */
export const LAMBDA_API_KEYS_URL = 'https://cloud.lambda.ai/api-keys';

export interface LambdaProviderOptions extends RestProviderOptions {
  /** Least time between two launches of one account from this process, ms. Default {@link LAMBDA_LAUNCH_GAP_MS}. */
  launchGapMs?: number;
}

interface LambdaInstance {
  id: string;
  name?: string | null;
  ip?: string | null;
  private_ip?: string | null;
  status: string;
  ssh_key_names?: string[];
  region?: { name: string; description?: string };
  instance_type?: {
    name: string;
    description?: string;
    gpu_description?: string;
    price_cents_per_hour?: number;
    specs?: { vcpus?: number; memory_gib?: number; storage_gib?: number; gpus?: number };
  };
  hostname?: string | null;
}

interface LambdaInstanceTypeEntry {
  instance_type: NonNullable<LambdaInstance['instance_type']>;
  regions_with_capacity_available: { name: string; description?: string }[];
}

export interface LambdaSshKey {
  id: string;
  name: string;
  public_key: string;
}

/** `POST /ssh-keys` without a public key: Lambda generates the pair and returns the private key once. */
export interface LambdaGeneratedSshKey extends LambdaSshKey {
  private_key: string;
}

export function parseLambdaError(body: unknown): ParsedError {
  const e = (body as { error?: { code?: string; message?: string; suggestion?: string } } | undefined)?.error;
  if (!e || typeof e !== 'object') return {};
  return {
    ...(e.message ? { message: e.message } : {}),
    ...(e.code ? { code: e.code } : {}),
    ...(e.suggestion ? { suggestion: e.suggestion } : {}),
  };
}

/** Provider status (spec `InstanceStatus`) onto Tether's words; the raw word stays in `rawStatus`. */
export function lambdaState(s: string): InstanceState {
  switch (s) {
    case 'booting':
      return 'provisioning';
    case 'active':
    case 'unhealthy':
      return 'running';
    case 'terminating':
      return 'terminating';
    case 'terminated':
    // Preempted: Lambda took the instance back; it no longer runs and no longer bills.
    case 'preempted':
      return 'terminated';
    default:
      return 'unknown';
  }
}

const KEY_HELP = 'add one to your Lambda Cloud account (dashboard: SSH keys; API: POST /api/v1/ssh-keys; in VS Code "Tether: Provision Cloud Instance…" offers to add one)';

/** The remedy for a Lambda Cloud error, by its documented code (the spec: rely on `code`, not on message or suggestion). */
export function lambdaRemedy(status: number | undefined, code: string | undefined, during: 'launch' | 'other' = 'other'): string | undefined {
  if (status === 401 || code === 'global/invalid-api-key') {
    return `the Lambda Cloud API key is invalid, expired or deleted: create one at ${LAMBDA_API_KEYS_URL} and set it ("Tether: Set Cloud API Key…", or LAMBDA_API_KEY for the CLI)`;
  }
  if (code === 'global/invalid-address') return 'your Lambda Cloud billing address is invalid (the API key is fine): correct it in the Lambda Cloud dashboard\'s billing settings, or contact Lambda Support';
  if (status === 403 || code === 'global/account-inactive') {
    return 'your Lambda Cloud account is inactive (the API key is fine): verify your email address and add a valid payment method in the Lambda Cloud dashboard, or contact Lambda Support';
  }
  if (code === 'instance-operations/launch/insufficient-capacity') return 'Lambda Cloud has no capacity for this instance type in this region right now: pick another region or type (the type list shows regions with capacity)';
  if (code === 'global/quota-exceeded') return 'your Lambda Cloud quota is used up: terminate an instance, or ask Lambda Support to raise the quota';
  if (code === 'instance-operations/launch/file-system-in-wrong-region') return 'the file system is in another region: launch in the file system\'s region';
  if (status === 404 && during === 'launch') return `something the launch names does not exist at Lambda Cloud (see the message): check the SSH key name (it must be one of your account's keys), the instance type and the region`;
  if (status === 404) return 'it does not exist (any more) at Lambda Cloud: refresh the list';
  if (status === 400 || code === 'global/invalid-parameters') return 'Lambda Cloud refused the request\'s parameters (see the message): check the instance type, the region, the SSH key name and the instance name (at most 64 characters)';
  if (status === 429) return 'rate limited by Lambda Cloud (about 1 request per second, 1 launch per 12 seconds): wait a few seconds and try again';
  if ((status !== undefined && status >= 500) || code?.startsWith('provider/')) {
    return `Lambda Cloud failed on its side${code ? ` (${code})` : ''}: try again shortly; if it persists, contact Lambda Support`;
  }
  return undefined;
}

/** Gives a Lambda error its documented remedy, in place (the error keeps its identity, so an ambiguous outcome stays ambiguous). */
function withLambdaRemedy(err: unknown, during: 'launch' | 'other' = 'other'): unknown {
  if (!(err instanceof CloudApiError) || err.status === undefined) return err;
  const remedy = lambdaRemedy(err.status, err.code, during);
  // A launch that failed with 5xx may have happened: keep the remedy that says Tether checks first.
  if (remedy && !(isAmbiguous(err) && during === 'launch')) (err as unknown as { remedy: string }).remedy = remedy;
  return err;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Earliest time of the next launch, per account (base URL + key hash), in this process. */
const nextLaunchAt = new Map<string, number>();

/** `ssh_key_names` must name exactly one key: the launch is refused before any call without one. */
export function sshKeyRequired(title = 'Lambda Cloud'): CloudApiError {
  return new CloudApiError(title, 'a launch needs exactly one SSH key (Lambda: "exactly one SSH key must be specified"), and none was given', {
    remedy: `pick one of your Lambda Cloud SSH keys (CLI: --ssh-key NAME), or ${KEY_HELP}`,
    code: 'tether/ssh-key-required',
  });
}

export { LAMBDA_BILLING };

export class LambdaCloudProvider implements CloudProvider {
  readonly billing = LAMBDA_BILLING;
  readonly type = CloudProviderType.LAMBDA_LABS;
  readonly title = 'Lambda Cloud';
  private readonly http: JsonHttpClient;
  /** For calls not to repeat blindly (launch: a 429 waits the launch gap, here; adding a key). */
  private readonly onceHttp: JsonHttpClient;
  private readonly launchGapMs: number;
  private readonly paceKey: string;

  constructor(private readonly opts: LambdaProviderOptions) {
    const base = opts.baseUrl ?? LAMBDA_DEFAULT_URL;
    const o = { ...opts, backoffMs: opts.backoffMs ?? LAMBDA_RETRY_BACKOFF_MS };
    this.http = bearerClient(this.title, o, base, parseLambdaError);
    this.onceHttp = bearerClient(this.title, { ...o, retries: 0 }, base, parseLambdaError);
    this.launchGapMs = opts.launchGapMs ?? LAMBDA_LAUNCH_GAP_MS;
    this.paceKey = `${base.replace(/\/+$/, '')}\n${createHash('sha256').update(opts.apiKey).digest('hex')}`;
  }

  private async call<T>(during: 'launch' | 'other', f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw withLambdaRemedy(err, during);
    }
  }

  async listInstanceTypes(): Promise<InstanceType[]> {
    const { body } = await this.call('other', () => this.http.get<{ data: Record<string, LambdaInstanceTypeEntry> }>('/instance-types'));
    return Object.values(body?.data ?? {}).map(({ instance_type: t, regions_with_capacity_available: r }) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      ...(t.gpu_description ? { gpuType: t.gpu_description } : {}),
      gpuCount: t.specs?.gpus ?? 0,
      ...(t.specs?.vcpus !== undefined ? { vcpus: t.specs.vcpus } : {}),
      ...(t.specs?.memory_gib !== undefined ? { memoryGiB: t.specs.memory_gib } : {}),
      pricePerHour: (t.price_cents_per_hour ?? 0) / 100,
      regionsWithCapacity: (r ?? []).map((x) => x.name),
    }));
  }

  async listInstances(): Promise<CloudInstance[]> {
    const { body } = await this.call('other', () => this.http.get<{ data: LambdaInstance[] }>('/instances'));
    return (body?.data ?? []).map((i) => this.toInstance(i));
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    try {
      const { body } = await this.call('other', () => this.http.get<{ data: LambdaInstance }>(`/instances/${encodeURIComponent(id)}`));
      return body?.data ? this.toInstance(body.data) : undefined;
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Waits for this account's next launch slot (and takes it): launches from this process are at least `launchGapMs` apart. */
  private async launchSlot(extraWaitMs = 0): Promise<void> {
    const now = Date.now();
    const at = Math.max(now + extraWaitMs, nextLaunchAt.get(this.paceKey) ?? 0);
    nextLaunchAt.set(this.paceKey, at + this.launchGapMs);
    if (at > now) {
      this.opts.log?.(`${this.title}: waiting ${at - now} ms for the launch rate limit (one launch per ${this.launchGapMs / 1000} s)`);
      await sleep(at - now);
    }
  }

  /** What a launch needs, checked without any call (CloudInstancePlugin asks before writing its intent). */
  checkLaunch(req: Pick<LaunchRequest, 'region' | 'sshKeyName'>): void {
    if (!req.region) throw new CloudApiError(this.title, 'a region is required to launch', { remedy: 'pick a region with capacity from the instance type list', code: 'tether/region-required' });
    if (!req.sshKeyName?.trim()) throw sshKeyRequired(this.title);
  }

  async launch(req: LaunchRequest): Promise<CloudInstance> {
    this.checkLaunch(req);
    const key = req.sshKeyName!.trim();
    const name = markedName(req);
    const attempts = this.http.retries + 1;
    return launchIdempotently({
      ledgerId: req.ledgerId,
      list: () => this.listInstances(),
      mayHaveCreated: isAmbiguous,
      attempts,
      backoffMs: this.http.backoffMs,
      ...(this.opts.log ? { log: this.opts.log } : {}),
      create: async () => {
        let body: { data: { instance_ids: string[] } } | undefined;
        for (let attempt = 1, wait = 0; ; attempt++) {
          await this.launchSlot(wait);
          try {
            // The spec's InstanceLaunchRequest (1.8.3): region_name, instance_type_name, ssh_key_names (exactly one), name (≤ 64).
            ({ body } = await this.onceHttp.post<{ data: { instance_ids: string[] } }>('/instance-operations/launch', {
              body: { region_name: req.region, instance_type_name: req.instanceType, ssh_key_names: [key], name },
            }));
            break;
          } catch (err) {
            // 429: nothing was launched; try again in the next launch slot (never sooner than the documented gap).
            if (err instanceof CloudApiError && err.status === 429 && attempt < attempts) {
              wait = err.retryAfterMs ?? 0;
              this.opts.log?.(`${this.title}: launch rate limited (429); retry ${attempt}/${attempts - 1} in the next launch slot`);
              continue;
            }
            throw withLambdaRemedy(err, 'launch');
          }
        }
        const id = body?.data?.instance_ids?.[0];
        if (!id) throw new CloudApiError(this.title, 'launch answered without an instance id', { remedy: 'refresh the instance list; Tether reconciles by name' });
        return (
          (await this.describe(id)) ?? {
            id,
            provider: this.type,
            name,
            region: req.region,
            instanceType: req.instanceType,
            gpuCount: 0,
            status: 'provisioning',
            rawStatus: 'booting',
            tetherId: req.ledgerId.slice(0, 8),
            metadata: {},
          }
        );
      },
    });
  }

  // No `stop`: Lambda Cloud cannot stop an instance, only restart or terminate it (instance operations: https://docs-api.lambda.ai/api/cloud).
  async terminate(id: string): Promise<void> {
    try {
      // Terminating twice is harmless, so retries are safe.
      await this.call('other', () => this.http.post('/instance-operations/terminate', { body: { instance_ids: [id] }, retrySafe: true }));
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) return; // already gone
      throw err;
    }
  }

  async listSshKeys(): Promise<LambdaSshKey[]> {
    const { body } = await this.call('other', () => this.http.get<{ data: LambdaSshKey[] }>('/ssh-keys'));
    return body?.data ?? [];
  }

  /**
   * Adds an SSH key to the account (`POST /ssh-keys`, spec AddSSHKeyRequest): with `publicKey`
   * it uploads that key; without, Lambda generates a pair and returns the private key once
   * (it does not keep it) — the caller must save it ({@link savePrivateKey}).
   */
  async addSshKey(name: string, publicKey?: string): Promise<LambdaSshKey | LambdaGeneratedSshKey> {
    const problem = sshKeyNameProblem(name) ?? (publicKey === undefined ? undefined : publicKeyProblem(publicKey));
    if (problem) throw new TetherError(`${this.title}: ${problem}`, { remedy: 'fix it and try again', exitCode: ExitCode.USAGE });
    // Adding is not idempotent (a second add of the same name is refused): no blind retry.
    const { body } = await this.call('other', () =>
      this.onceHttp.post<{ data: LambdaSshKey | LambdaGeneratedSshKey }>('/ssh-keys', { body: { name, ...(publicKey !== undefined ? { public_key: publicKey.trim() } : {}) } }),
    );
    if (!body?.data?.name) throw new CloudApiError(this.title, 'adding the SSH key answered without the key', { remedy: 'list your keys in the Lambda Cloud dashboard and try again' });
    return body.data;
  }

  consoleUrl(_instance: CloudInstance): string {
    return 'https://cloud.lambda.ai/instances';
  }

  private toInstance(i: LambdaInstance): CloudInstance {
    const t = i.instance_type;
    const tetherId = parseMarker(i.name);
    return {
      id: i.id,
      provider: this.type,
      ...(i.name ? { name: i.name } : {}),
      ...(i.region?.name ? { region: i.region.name } : {}),
      ...(t?.name ? { instanceType: t.name } : {}),
      ...(t?.gpu_description ? { gpuType: t.gpu_description } : {}),
      gpuCount: t?.specs?.gpus ?? 0,
      status: lambdaState(i.status),
      rawStatus: i.status,
      ...(t?.price_cents_per_hour !== undefined ? { pricePerHour: t.price_cents_per_hour / 100 } : {}),
      ...(i.ip ? { sshHost: i.ip, sshPort: 22, sshUser: 'ubuntu' } : {}),
      ...(tetherId ? { tetherId } : {}),
      metadata: { hostname: i.hostname ?? undefined, sshKeyNames: i.ssh_key_names ?? [], ...(i.status === 'preempted' ? { endedBy: 'preempted by Lambda Cloud' } : {}) },
    };
  }
}

/**
 * Before a launch (CLI, wizard): the SSH key the launch will name, checked against the account's
 * keys — so bad input is refused before any ledger intent. Without a name, says which keys there
 * are, or how to add one when there are none.
 */
export async function checkLambdaSshKey(p: Pick<LambdaCloudProvider, 'listSshKeys' | 'title'>, name: string | undefined, flag = '--ssh-key NAME'): Promise<LambdaSshKey> {
  const keys = await p.listSshKeys();
  const names = keys.map((k) => k.name);
  const usage = (message: string, remedy: string) => new TetherError(`${p.title}: ${message}`, { remedy, exitCode: ExitCode.USAGE });
  if (!keys.length) throw usage('your account has no SSH key, and a launch needs exactly one', `${KEY_HELP}, then pass ${flag}`);
  if (!name?.trim()) throw usage('a launch needs exactly one SSH key, and none was given', `pass ${flag}; your keys: ${names.join(', ')}`);
  const key = keys.find((k) => k.name === name.trim());
  if (!key) throw usage(`your account has no SSH key named "${name}"`, `pass one of your keys (${names.join(', ')}), or ${KEY_HELP}`);
  return key;
}

/** Why an SSH key name is not acceptable (spec AddSSHKeyRequest.name: 1 to 64 characters), or undefined. */
export function sshKeyNameProblem(name: string): string | undefined {
  if (!name || !name.trim()) return 'the SSH key needs a name';
  if (name.length > 64) return `the SSH key name has ${name.length} characters; at most 64`;
  return undefined;
}

/** Why a text is not an OpenSSH public key line that Lambda accepts (1 to 4096 characters), or undefined. */
export function publicKeyProblem(text: string): string | undefined {
  const t = text.trim();
  if (/PRIVATE KEY/.test(t)) return 'that is a private key; upload the public key (the .pub file)';
  if (!t) return 'the public key is empty';
  if (t.length > 4096) return `the public key has ${t.length} characters; at most 4096`;
  if (t.includes('\n')) return 'the public key must be one line (one key)';
  if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,2}( .*)?$/.test(t)) {
    return 'not an OpenSSH public key line ("ssh-ed25519 AAAA… comment")';
  }
  return undefined;
}

/**
 * Saves a private key Lambda generated (it keeps no copy) next to the user's keys: mode 0600,
 * never over an existing file; the public key beside it as `.pub`. Returns the private key's path.
 */
export function savePrivateKey(dir: string, keyName: string, key: LambdaGeneratedSshKey): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = `lambda-${keyName.replace(/[^A-Za-z0-9._-]/g, '-')}`;
  let file = path.join(dir, base);
  for (let n = 2; fs.existsSync(file) || fs.existsSync(`${file}.pub`); n++) file = path.join(dir, `${base}-${n}`);
  const text = key.private_key.endsWith('\n') ? key.private_key : `${key.private_key}\n`;
  fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
  fs.writeFileSync(`${file}.pub`, `${key.public_key.trim()}\n`, { mode: 0o644, flag: 'wx' });
  return file;
}
