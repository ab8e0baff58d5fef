/**
 * Azure virtual machines as a Tether cloud provider, over the ARM REST API
 * (https://learn.microsoft.com/en-us/rest/api/compute/virtual-machines), with `@azure/identity`
 * only for credentials — loaded on first use, and not at all when a bearer token is given.
 *
 * Why REST and not `@azure/arm-compute` (measured 2026-12-01, webpack production builds, Node 20):
 * - size: identity alone 383 KB of lazy chunks against 911 KB with arm-compute 24.1.0 (ESM
 *   entries, as `import()` resolves them; as CommonJS single bundles 498 KB against 1,309 KB);
 *   this client's own chunk is 25 KB;
 * - cold start (`node -e` require of the bundle and construct the credential / client, median of
 *   7): 39 ms against 137 ms at load 1 (CommonJS bundles), 115 ms against 168 ms at load 15 (ESM).
 * The handful of ARM calls Tether makes do not need the SDK, and with TETHER_AZURE_ACCESS_TOKEN
 * not even @azure/identity loads.
 *
 * API versions: Microsoft.Compute virtualMachines and sshPublicKeys 2024-11-01 (the request body
 * follows azure-rest-api-specs ComputeRP/stable/2024-11-01/virtualMachine.json); resource SKUs
 * 2021-07-01; Microsoft.Network 2024-05-01.
 *
 * Lifecycle:
 * - launch: one PUT of a VM whose name is the marker (deterministic from the ledger id, so a
 *   retried PUT is idempotent by nature: the same name cannot make a second VM). Its NIC, public
 *   IP (Standard, static) and managed OS disk are created with it through
 *   `networkInterfaceConfigurations`, named from the VM (`<vm>-nic`, `<vm>-ip`, `<vm>-osdisk`),
 *   all with `deleteOption: Delete`. The resource group's Tether network (an NSG allowing SSH and
 *   a VNet, free) is ensured first, waiting on their `Azure-AsyncOperation`.
 * - states: `provisioningState` and the instance view's `PowerState/*` (billing.ts maps them).
 *   A VM that is `PowerState/stopped` is powered off but *allocated*: still billing compute; it is
 *   shown as `stopping` with `metadata.billingWarning`.
 * - stop = deallocate (compute billing ends; the disk and public IP keep billing).
 * - terminate = DELETE the VM, wait for the operation, then check its NIC, public IP and OS disk
 *   are gone and delete any left; whatever cannot be deleted is named in the error as still billing.
 *
 * Credentials, in the ecosystem's order: a bearer token (`TETHER_AZURE_ACCESS_TOKEN`, for
 * automation and tests; never written anywhere, scrubbed from every message), else
 * `ChainedTokenCredential(EnvironmentCredential, AzureCliCredential, ManagedIdentityCredential)`.
 * Like the Azure SDK, the client refuses to send a token over plain http.
 */
import * as https from 'node:https';
import { CloudProviderType } from '../../../core/protocols';
import { JsonHttpClient, parseRetryAfter, remedyFor, type HttpAnswer, type RequestOptions } from '../http';
import { parseMarker, tetherIdOf } from '../marker';
import { CloudApiError, isAmbiguous, markAmbiguous, markedName, type CloudInstance, type CloudProvider, type InstanceType, type LaunchRequest } from '../provider';
import { AZURE_BILLING, STOPPED_ALLOCATED_WARNING, azureStateOf, isStoppedAllocated } from './billing';
import shippedCatalogue from './azure-prices.json';

export { AZURE_BILLING };

export const AZURE_TITLE = 'Azure VMs';
export const AZURE_DEFAULT_ARM_URL = 'https://management.azure.com';
export const AZURE_ARM_SCOPE = 'https://management.azure.com/.default';
export const AZURE_COMPUTE_API_VERSION = '2024-11-01';
export const AZURE_SKUS_API_VERSION = '2021-07-01';
export const AZURE_NETWORK_API_VERSION = '2024-05-01';

/** Tags Tether puts on every VM it launches (Azure tag names may not contain < > % & \ ? /). */
export const AZURE_TAG_LEDGER_ID = 'tether-ledger-id';
export const AZURE_TAG_ORIGIN = 'tether-origin-ledger';
export const AZURE_TAG_MANAGED = 'tether-managed';

/** The admin user Tether creates on its VMs (Azure's conventional name). */
export const AZURE_ADMIN_USER = 'azureuser';
/** Ubuntu 22.04 LTS, Gen2 (runs on every N-series size listed). GPU drivers are not in it. */
export const AZURE_DEFAULT_IMAGE = 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest';

export const AZURE_CREDENTIALS_REMEDY =
  'check the Azure credentials: `az login` (Azure CLI), or AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET, or a managed identity, or TETHER_AZURE_ACCESS_TOKEN; and that they may use this subscription and resource group';

/** The shipped price snapshot (see azure-prices.json). */
export interface AzurePriceCatalogue {
  asOf: string;
  source: string;
  query?: string;
  currency: string;
  terms?: string;
  note?: string;
  sizes: Record<string, { gpuType: string; gpuCount: number; vcpus: number; memoryGiB: number }>;
  /** region (armRegionName) → size → USD per hour. */
  regions: Record<string, Record<string, number>>;
  /** When each region's prices were read, where it differs from `asOf` (a refreshed catalogue). */
  regionAsOf?: Record<string, string>;
}

export const AZURE_SHIPPED_CATALOGUE: AzurePriceCatalogue = shippedCatalogue as AzurePriceCatalogue;

/** What `@azure/identity` credentials offer (and tests inject). */
export interface AzureTokenSource {
  getToken(scope: string): Promise<{ token: string; expiresOnTimestamp: number } | null>;
}

export interface AzureVmOptions {
  subscriptionId: string;
  resourceGroup: string;
  /** Region for launches and the catalogue (armRegionName, "eastus"). */
  location?: string;
  /** ARM endpoint (default https://management.azure.com; `TETHER_AZURE_API_URL`). */
  baseUrl?: string;
  /** A bearer token (`TETHER_AZURE_ACCESS_TOKEN`): used as is, no credential chain. */
  accessToken?: string;
  /** Default: the chain environment → Azure CLI → managed identity, loaded on first use. */
  credential?: AzureTokenSource;
  /** Extra CA certificate(s) trusted for the ARM endpoint (PEM); default: Node's store + NODE_EXTRA_CA_CERTS. */
  ca?: string | Buffer;
  /** OpenSSH public key put on launched VMs when the launch names no Azure SSH key resource. */
  sshPublicKey?: string;
  /** Source allowed to reach port 22 on Tether's VMs (NSG rule). Default '*'. */
  sshSource?: string;
  /** Image URN (publisher:offer:sku:version) when a launch names none. */
  defaultImage?: string;
  catalogue?: AzurePriceCatalogue;
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
  /** Polling interval for long-running operations without Retry-After, ms. Default 2000. */
  pollMs?: number;
  /** How long a long-running operation (network setup, delete) may take, ms. Default 20 min. */
  operationTimeoutMs?: number;
  log?: (line: string) => void;
}

interface ArmResource {
  id?: string;
  name?: string;
  location?: string;
  tags?: Record<string, string>;
  properties?: Record<string, unknown> & { provisioningState?: string };
}

interface ArmVm extends ArmResource {
  properties?: {
    provisioningState?: string;
    timeCreated?: string;
    hardwareProfile?: { vmSize?: string };
    osProfile?: { adminUsername?: string };
    storageProfile?: { osDisk?: { name?: string } };
    networkProfile?: {
      networkInterfaces?: Array<{ id?: string }>;
      networkInterfaceConfigurations?: Array<{ name?: string; properties?: { ipConfigurations?: Array<{ properties?: { publicIPAddressConfiguration?: { name?: string } } }> } }>;
    };
    instanceView?: { statuses?: Array<{ code?: string; displayStatus?: string }> };
  };
}

interface ArmList<T> {
  value?: T[];
  nextLink?: string;
}

interface ArmSku {
  resourceType?: string;
  name?: string;
  locations?: string[];
  capabilities?: Array<{ name?: string; value?: string }>;
  restrictions?: Array<{ type?: string; values?: string[]; reasonCode?: string }>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** ARM's "this resource does not exist" (and nothing wider: not a missing resource group or subscription). */
function isResourceNotFound(err: unknown): err is CloudApiError {
  return err instanceof CloudApiError && err.status === 404 && (err.code === 'ResourceNotFound' || err.code === 'NotFound');
}

/** ARM's error body: `{"error":{"code","message","details"}}`. */
function armError(body: unknown): { message?: string; code?: string } {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (!e || typeof e !== 'object') return {};
  return { ...(typeof e.message === 'string' ? { message: e.message } : {}), ...(typeof e.code === 'string' ? { code: e.code } : {}) };
}

/**
 * `fetch` over node:https, so that a CA can be given per client (an https.Agent) — the global
 * fetch only trusts what the process started with. Never speaks plain http.
 */
export function httpsFetch(agent?: https.Agent): typeof fetch {
  return ((input: string | URL | Request, init?: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      if (url.protocol !== 'https:') {
        reject(new TypeError(`refusing to send an Azure token over ${url.protocol} (https only)`));
        return;
      }
      const headers: Record<string, string> = {};
      new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
      const req = https.request(url, { method: init?.method ?? 'GET', headers, ...(agent ? { agent } : {}), ...(init?.signal ? { signal: init.signal } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : String(v));
          const empty = status === 204 || status === 205 || status === 304;
          resolve(new Response(empty ? null : Buffer.concat(chunks), { status, headers: h }));
        });
      });
      req.on('error', reject);
      if (typeof init?.body === 'string') req.write(init.body);
      req.end();
    })) as typeof fetch;
}

/**
 * The VM name for a launch: the marker (markedName) with the user's name made legal for Azure
 * (letters, digits, '_', '.', '-'; at most 64; not ending in '.' or '-').
 */
export function azureVmName(req: Pick<LaunchRequest, 'ledgerId' | 'name' | 'owner'>): string {
  const safe = req.name.replace(/[^A-Za-z0-9_.-]+/g, '-');
  let n = markedName({ ...req, name: safe }).replace(/[.-]+$/, '');
  if (!parseMarker(n)) n = markedName({ ...req, name: 'vm' });
  return n;
}

/** The credential chain in the ecosystem's order: environment, Azure CLI login, managed identity. */
export async function defaultAzureCredential(): Promise<AzureTokenSource> {
  const id = await import('@azure/identity');
  return new id.ChainedTokenCredential(new id.EnvironmentCredential(), new id.AzureCliCredential(), new id.ManagedIdentityCredential());
}

export class AzureVmProvider implements CloudProvider {
  readonly type = CloudProviderType.AZURE;
  readonly title = AZURE_TITLE;
  readonly billing = AZURE_BILLING;
  private readonly baseUrl: string;
  private readonly catalogue: AzurePriceCatalogue;
  private readonly transport: typeof fetch;
  private credential: AzureTokenSource | undefined;
  private token: { value: string; until: number } | undefined;
  private http: JsonHttpClient | undefined;
  private readonly networkReady = new Map<string, Promise<string>>();

  constructor(private readonly opts: AzureVmOptions) {
    this.baseUrl = (opts.baseUrl ?? AZURE_DEFAULT_ARM_URL).replace(/\/+$/, '');
    this.catalogue = opts.catalogue ?? AZURE_SHIPPED_CATALOGUE;
    this.transport = httpsFetch(opts.ca ? new https.Agent({ ca: opts.ca, keepAlive: false }) : undefined);
    this.credential = opts.credential;
  }

  private get rg(): string {
    return `/subscriptions/${encodeURIComponent(this.opts.subscriptionId)}/resourceGroups/${encodeURIComponent(this.opts.resourceGroup)}`;
  }
  private vmPath(name: string): string {
    return `${this.rg}/providers/Microsoft.Compute/virtualMachines/${encodeURIComponent(name)}`;
  }
  private netPath(kind: 'networkInterfaces' | 'publicIPAddresses' | 'networkSecurityGroups' | 'virtualNetworks', name: string): string {
    return `${this.rg}/providers/Microsoft.Network/${kind}/${encodeURIComponent(name)}`;
  }
  private diskPath(name: string): string {
    return `${this.rg}/providers/Microsoft.Compute/disks/${encodeURIComponent(name)}`;
  }

  /** Removes the token from a text (for errors raised outside the HTTP client). */
  private scrub(text: string): string {
    const t = this.opts.accessToken ?? this.token?.value;
    return t ? text.split(t).join('***') : text;
  }

  private async bearer(): Promise<string> {
    if (this.opts.accessToken) return this.opts.accessToken;
    if (this.token && this.token.until > Date.now()) return this.token.value;
    try {
      this.credential ??= await defaultAzureCredential();
      const t = await this.credential.getToken(AZURE_ARM_SCOPE);
      if (!t?.token) throw new Error('the credential chain returned no token');
      // Renewed five minutes before it expires.
      this.token = { value: t.token, until: t.expiresOnTimestamp - 5 * 60_000 };
      return t.token;
    } catch (err) {
      if (err instanceof CloudApiError) throw err;
      // ChainedTokenCredential's AggregateAuthenticationError: what each credential said, one line each.
      const parts = ((err as { errors?: unknown[] }).errors ?? [err]).map((e) => `${(e as Error)?.name ?? 'Error'}: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
      throw new CloudApiError(AZURE_TITLE, `no Azure credentials (${this.scrub(parts.join('; '))})`, { remedy: AZURE_CREDENTIALS_REMEDY, status: 401, code: 'CredentialUnavailable' });
    }
  }

  private async client(): Promise<JsonHttpClient> {
    if (!this.baseUrl.startsWith('https://')) {
      throw new CloudApiError(AZURE_TITLE, `refusing to send an Azure token over plain http (${this.baseUrl})`, { remedy: 'point TETHER_AZURE_API_URL at an https:// endpoint (ARM is https only)' });
    }
    const token = await this.bearer();
    if (this.http && this.httpToken === token) return this.http;
    this.httpToken = token;
    this.http = new JsonHttpClient({
      provider: AZURE_TITLE,
      baseUrl: this.baseUrl,
      headers: { Authorization: `Bearer ${token}` },
      secrets: [token],
      parseError: armError,
      fetch: this.transport,
      ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {}),
      ...(this.opts.retries !== undefined ? { retries: this.opts.retries } : {}),
      ...(this.opts.backoffMs !== undefined ? { backoffMs: this.opts.backoffMs } : {}),
      ...(this.opts.log ? { log: this.opts.log } : {}),
    });
    return this.http;
  }
  private httpToken: string | undefined;

  /** One ARM call; 401/403 get Azure's remedy (ambiguity kept). */
  private async call<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, o: RequestOptions = {}): Promise<HttpAnswer<T>> {
    const c = await this.client();
    try {
      return await c.request<T>(method, path, o);
    } catch (err) {
      if (err instanceof CloudApiError && (err.code === 'ResourceGroupNotFound' || err.code === 'SubscriptionNotFound')) {
        const what = err.code === 'ResourceGroupNotFound' ? `resource group ${this.opts.resourceGroup}` : `subscription ${this.opts.subscriptionId}`;
        throw new CloudApiError(AZURE_TITLE, err.message.replace(/^Azure VMs: /, ''), {
          remedy: `check the ${what} (--resource-group / --subscription, TETHER_AZURE_RESOURCE_GROUP / AZURE_SUBSCRIPTION_ID, or the tether.azure settings)${err.code === 'ResourceGroupNotFound' ? `; create it with \`az group create -n ${this.opts.resourceGroup} -l LOCATION\`` : ''}`,
          status: 404,
          code: err.code,
        });
      }
      if (err instanceof CloudApiError && (err.status === 401 || err.status === 403)) {
        const e = new CloudApiError(AZURE_TITLE, err.message.replace(/^Azure VMs: /, ''), { remedy: AZURE_CREDENTIALS_REMEDY, status: err.status, ...(err.code ? { code: err.code } : {}) });
        throw isAmbiguous(err) ? markAmbiguous(e) : e;
      }
      throw err;
    }
  }

  private get<T>(path: string, query: Record<string, string>): Promise<HttpAnswer<T>> {
    return this.call<T>('GET', path, { query });
  }

  /**
   * A GET that answers undefined when ARM says the resource does not exist (404 ResourceNotFound).
   * Any other 404 — ResourceGroupNotFound, SubscriptionNotFound, a proxy's page — is an error: a
   * mistyped resource group must not make Tether believe its VMs are gone.
   */
  private async getOrUndefined<T>(path: string, query: Record<string, string>): Promise<T | undefined> {
    try {
      return (await this.get<T>(path, query)).body;
    } catch (err) {
      if (isResourceNotFound(err)) return undefined;
      throw err;
    }
  }

  /** An absolute link from ARM (nextLink, Azure-AsyncOperation, Location) as a path: only on the ARM endpoint itself. */
  private relative(link: string): string {
    if (link.startsWith(`${this.baseUrl}/`)) return link.slice(this.baseUrl.length);
    throw new CloudApiError(AZURE_TITLE, `refusing to follow a link to another host (${link.split('?')[0]})`, { remedy: 'the ARM endpoint answered with a link outside itself; check TETHER_AZURE_API_URL' });
  }

  /** Every item of a paged ARM list (`nextLink`). */
  private async pages<T>(path: string, query: Record<string, string>): Promise<T[]> {
    const out: T[] = [];
    let page = (await this.get<ArmList<T>>(path, query)).body;
    for (let n = 0; ; n++) {
      out.push(...(page?.value ?? []));
      if (!page?.nextLink) return out;
      if (n > 1000) throw new CloudApiError(AZURE_TITLE, `${path}: more than 1000 pages`, { remedy: 'report this: ARM kept answering with a nextLink' });
      page = (await this.call<ArmList<T>>('GET', this.relative(page.nextLink))).body;
    }
  }

  /**
   * Waits for a long-running operation from its answer: `Azure-AsyncOperation` (status
   * InProgress → Succeeded | Failed | Canceled) or else `Location` (202 until done), polling as
   * ARM's Retry-After says (else `pollMs`).
   */
  private async waitForOperation(answer: HttpAnswer<unknown>, what: string): Promise<void> {
    const asyncUrl = answer.headers?.get('azure-asyncoperation');
    const location = answer.headers?.get('location');
    if (!asyncUrl && !location) return;
    const deadline = Date.now() + (this.opts.operationTimeoutMs ?? 20 * 60_000);
    let retryAfter = parseRetryAfter(answer.headers?.get('retry-after') ?? null);
    for (;;) {
      await sleep(Math.min(retryAfter ?? this.opts.pollMs ?? 2000, 60_000));
      if (asyncUrl) {
        const a = await this.call<{ status?: string; error?: { code?: string; message?: string } }>('GET', this.relative(asyncUrl));
        const st = a.body?.status ?? '';
        if (st === 'Succeeded') return;
        if (st === 'Failed' || st === 'Canceled') {
          throw new CloudApiError(AZURE_TITLE, `${what}: ${st}${a.body?.error?.message ? `: ${a.body.error.message}` : ''}`, {
            remedy: 'see the activity log of the resource group in the Azure portal',
            status: 409,
            ...(a.body?.error?.code ? { code: a.body.error.code } : {}),
          });
        }
        retryAfter = parseRetryAfter(a.headers?.get('retry-after') ?? null);
      } else {
        const a = await this.call<unknown>('GET', this.relative(location!));
        if (a.status !== 202) return;
        retryAfter = parseRetryAfter(a.headers?.get('retry-after') ?? null);
      }
      if (Date.now() > deadline) {
        throw markAmbiguous(new CloudApiError(AZURE_TITLE, `${what}: still running after ${Math.round((this.opts.operationTimeoutMs ?? 20 * 60_000) / 1000)} s`, { remedy: 'it may finish later: refresh in a while', code: 'timeout' }));
      }
    }
  }

  private location(region?: string): string {
    const l = region ?? this.opts.location;
    if (!l) throw new CloudApiError(AZURE_TITLE, 'no Azure location (region) given', { remedy: 'pass --region (e.g. eastus) or set TETHER_AZURE_LOCATION / the tether.cloud.azure.location setting' });
    return l;
  }

  // ---- catalogue ---------------------------------------------------------------------------

  /**
   * The GPU sizes offered in the configured location: the resource SKUs ARM lists for it
   * (capabilities, restrictions) joined with the shipped price snapshot. A GPU size without a
   * catalogued price is listed with NaN and says so.
   */
  async listInstanceTypes(): Promise<InstanceType[]> {
    const location = this.location();
    const skus = await this.pages<ArmSku>(`/subscriptions/${encodeURIComponent(this.opts.subscriptionId)}/providers/Microsoft.Compute/skus`, { 'api-version': AZURE_SKUS_API_VERSION, $filter: `location eq '${location}'` });
    const prices = this.catalogue.regions[location] ?? {};
    const out: InstanceType[] = [];
    for (const s of skus) {
      if (s.resourceType !== 'virtualMachines' || !s.name) continue;
      const cap = (n: string) => {
        const v = s.capabilities?.find((c) => c.name === n)?.value;
        return v === undefined ? undefined : Number(v);
      };
      const known = this.catalogue.sizes[s.name];
      const gpus = cap('GPUs') ?? known?.gpuCount ?? 0;
      if (!known && !(gpus > 0)) continue;
      const price = prices[s.name];
      const restricted = (s.restrictions ?? []).some((r) => r.type === 'Location' && (r.values ?? []).some((v) => v.toLowerCase() === location.toLowerCase()));
      out.push({
        name: s.name,
        description:
          price === undefined
            ? `${s.name}: no price in Tether's Azure catalogue for ${location} (as of ${this.catalogue.asOf})`
            : `${s.name} (${known?.gpuType ?? 'GPU'}), $${price}/h pay-as-you-go Linux in ${location} (Azure Retail Prices, ${this.catalogue.asOf})${restricted ? ' — not available to this subscription here' : ''}`,
        ...(known?.gpuType ? { gpuType: known.gpuType } : {}),
        gpuCount: known?.gpuCount ?? gpus,
        ...(cap('vCPUs') ?? known?.vcpus ? { vcpus: cap('vCPUs') ?? known?.vcpus } : {}),
        ...(cap('MemoryGB') ?? known?.memoryGiB ? { memoryGiB: cap('MemoryGB') ?? known?.memoryGiB } : {}),
        pricePerHour: price ?? NaN,
        regionsWithCapacity: restricted ? [] : [location],
      });
    }
    return out.sort((a, b) => (a.pricePerHour || Infinity) - (b.pricePerHour || Infinity));
  }

  // ---- instances ---------------------------------------------------------------------------

  private toInstance(vm: ArmVm, publicIp?: string): CloudInstance {
    const tags = vm.tags ?? {};
    const props = vm.properties ?? {};
    const power = props.instanceView?.statuses?.find((s) => s.code?.startsWith('PowerState/'))?.code;
    const prov = props.provisioningState;
    const status = azureStateOf(prov, power);
    const size = props.hardwareProfile?.vmSize;
    const spec = size ? this.catalogue.sizes[size] : undefined;
    const price = size && vm.location ? this.catalogue.regions[vm.location]?.[size] : undefined;
    const ledgerTag = tags[AZURE_TAG_LEDGER_ID];
    const tetherId = ledgerTag ? tetherIdOf(ledgerTag, tags[AZURE_TAG_ORIGIN]) : parseMarker(vm.name);
    return {
      id: vm.name ?? '',
      provider: CloudProviderType.AZURE,
      ...(vm.name ? { name: vm.name } : {}),
      ...(vm.location ? { region: vm.location } : {}),
      ...(size ? { instanceType: size } : {}),
      ...(spec ? { gpuType: spec.gpuType } : {}),
      gpuCount: spec?.gpuCount ?? 0,
      status,
      rawStatus: power ?? `ProvisioningState/${prov ?? 'unknown'}`,
      ...(price !== undefined ? { pricePerHour: price } : {}),
      ...(publicIp ? { sshHost: publicIp, sshPort: 22, sshUser: props.osProfile?.adminUsername ?? AZURE_ADMIN_USER } : {}),
      ...(props.timeCreated ? { launchedAt: props.timeCreated } : {}),
      ...(tetherId ? { tetherId } : {}),
      metadata: {
        resourceId: vm.id,
        provisioningState: prov ?? null,
        powerState: power ?? null,
        managed: tags[AZURE_TAG_MANAGED] === 'true',
        ...(isStoppedAllocated(power) ? { billingWarning: STOPPED_ALLOCATED_WARNING } : {}),
        ...(prov === 'Failed' ? { problem: 'provisioning failed: the VM exists but is not usable; terminate it (its disk and IP bill until then)' } : {}),
      },
    };
  }

  /** The public IP names of a VM's NIC configurations (the ones Tether created with it). */
  private static publicIpNames(vm: ArmVm): string[] {
    const names: string[] = [];
    for (const n of vm.properties?.networkProfile?.networkInterfaceConfigurations ?? []) {
      for (const ip of n.properties?.ipConfigurations ?? []) {
        const name = ip.properties?.publicIPAddressConfiguration?.name;
        if (name) names.push(name);
      }
    }
    return names;
  }

  private async withInstanceView(vm: ArmVm): Promise<ArmVm> {
    if (vm.properties?.instanceView || !vm.name) return vm;
    const iv = await this.getOrUndefined<{ statuses?: Array<{ code?: string }> }>(`${this.vmPath(vm.name)}/instanceView`, { 'api-version': AZURE_COMPUTE_API_VERSION });
    return iv ? { ...vm, properties: { ...vm.properties, instanceView: iv } } : vm;
  }

  /** Every VM in the resource group, Tether's (with `tetherId`) and the user's own. */
  async listInstances(): Promise<CloudInstance[]> {
    const vms = await this.pages<ArmVm>(`${this.rg}/providers/Microsoft.Compute/virtualMachines`, { 'api-version': AZURE_COMPUTE_API_VERSION, $expand: 'instanceView' });
    if (!vms.length) return [];
    const ips = new Map<string, string>();
    for (const ip of await this.pages<ArmResource>(`${this.rg}/providers/Microsoft.Network/publicIPAddresses`, { 'api-version': AZURE_NETWORK_API_VERSION })) {
      const addr = ip.properties?.ipAddress;
      if (ip.name && typeof addr === 'string') ips.set(ip.name, addr);
    }
    const out: CloudInstance[] = [];
    for (const vm of vms) {
      const full = await this.withInstanceView(vm);
      const ip = AzureVmProvider.publicIpNames(full).map((n) => ips.get(n)).find((x) => x);
      out.push(this.toInstance(full, ip));
    }
    return out;
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    const vm = await this.getOrUndefined<ArmVm>(this.vmPath(id), { 'api-version': AZURE_COMPUTE_API_VERSION, $expand: 'instanceView' });
    if (!vm) return undefined;
    const full = await this.withInstanceView(vm);
    let ip: string | undefined;
    for (const n of AzureVmProvider.publicIpNames(full)) {
      const r = await this.getOrUndefined<ArmResource>(this.netPath('publicIPAddresses', n), { 'api-version': AZURE_NETWORK_API_VERSION });
      if (typeof r?.properties?.ipAddress === 'string') ip = r.properties.ipAddress;
    }
    return this.toInstance(full, ip);
  }

  // ---- launch ------------------------------------------------------------------------------

  /** Refused before any ledger intent: no location, no SSH key. (A size ARM does not know is ARM's to refuse.) */
  checkLaunch(c: { instanceType?: string; region?: string; sshKeyName?: string }): void {
    this.location(c.region);
    if (!c.sshKeyName && !this.opts.sshPublicKey) {
      throw new CloudApiError(AZURE_TITLE, 'no SSH key for the VM', { remedy: 'pass --ssh-key NAME (an SSH key resource in the resource group, `az sshkey create`) or set TETHER_AZURE_SSH_PUBLIC_KEY to an OpenSSH public key' });
    }
  }

  private async publicKey(req: LaunchRequest): Promise<string> {
    if (req.sshKeyName) {
      const k = await this.getOrUndefined<{ properties?: { publicKey?: string } }>(`${this.rg}/providers/Microsoft.Compute/sshPublicKeys/${encodeURIComponent(req.sshKeyName)}`, { 'api-version': AZURE_COMPUTE_API_VERSION });
      if (!k?.properties?.publicKey) throw new CloudApiError(AZURE_TITLE, `no SSH public key "${req.sshKeyName}" in resource group ${this.opts.resourceGroup}`, { remedy: 'create it (`az sshkey create`) or name another', status: 404 });
      return k.properties.publicKey;
    }
    if (this.opts.sshPublicKey) return this.opts.sshPublicKey;
    throw new CloudApiError(AZURE_TITLE, 'no SSH key for the VM', { remedy: 'pass --ssh-key NAME or set TETHER_AZURE_SSH_PUBLIC_KEY' });
  }

  /** Creates (or finds) a resource with one PUT and waits until it is provisioned. */
  private async ensure(path: string, apiVersion: string, body: unknown, what: string): Promise<string> {
    const have = await this.getOrUndefined<ArmResource>(path, { 'api-version': apiVersion });
    if (have?.properties?.provisioningState === 'Succeeded' && have.id) return have.id;
    const a = await this.call<ArmResource>('PUT', path, { query: { 'api-version': apiVersion }, body, retrySafe: true });
    await this.waitForOperation(a, what);
    return a.body?.id ?? path;
  }

  /** Tether's network in the resource group for a location (NSG allowing SSH, VNet with one subnet); returns the subnet id. */
  private network(location: string): Promise<string> {
    let p = this.networkReady.get(location);
    if (!p) {
      p = (async () => {
        const tags = { [AZURE_TAG_MANAGED]: 'true' };
        const nsgId = await this.ensure(this.netPath('networkSecurityGroups', `tether-nsg-${location}`), AZURE_NETWORK_API_VERSION, {
          location,
          tags,
          properties: {
            securityRules: [
              { name: 'tether-ssh', properties: { protocol: 'Tcp', sourcePortRange: '*', destinationPortRange: '22', sourceAddressPrefix: this.opts.sshSource ?? '*', destinationAddressPrefix: '*', access: 'Allow', priority: 1000, direction: 'Inbound' } },
            ],
          },
        }, 'creating the network security group');
        const vnetId = await this.ensure(this.netPath('virtualNetworks', `tether-vnet-${location}`), AZURE_NETWORK_API_VERSION, {
          location,
          tags,
          properties: { addressSpace: { addressPrefixes: ['10.87.0.0/16'] }, subnets: [{ name: 'default', properties: { addressPrefix: '10.87.0.0/24', networkSecurityGroup: { id: nsgId } } }] },
        }, 'creating the virtual network');
        return `${vnetId}/subnets/default`;
      })();
      p.catch(() => this.networkReady.delete(location));
      this.networkReady.set(location, p);
    }
    return p;
  }

  /**
   * One VM for the ledger id. Its name is the marker, so a PUT that is retried (timeout, 5xx)
   * or repeated after a crash finds the same VM instead of making a second one; an existing VM
   * with the marker is returned as is.
   */
  async launch(req: LaunchRequest): Promise<CloudInstance> {
    const location = this.location(req.region);
    const name = azureVmName(req);
    const existing = await this.describe(name);
    if (existing && existing.status !== 'terminating' && existing.status !== 'terminated') {
      this.opts.log?.(`Azure VM ${name} already exists for ${req.ledgerId.slice(0, 8)}: not launching again`);
      return existing;
    }
    const keyData = await this.publicKey(req);
    const subnetId = await this.network(location);
    const [publisher, offer, sku, version] = (req.image ?? this.opts.defaultImage ?? AZURE_DEFAULT_IMAGE).split(':');
    if (!publisher || !offer || !sku) throw new CloudApiError(AZURE_TITLE, `image "${req.image}" is not a URN (publisher:offer:sku[:version])`, { remedy: 'e.g. Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest' });
    const body = {
      location,
      tags: { [AZURE_TAG_LEDGER_ID]: req.ledgerId, [AZURE_TAG_MANAGED]: 'true', ...(req.owner ? { [AZURE_TAG_ORIGIN]: req.owner } : {}) },
      properties: {
        hardwareProfile: { vmSize: req.instanceType },
        storageProfile: {
          imageReference: { publisher, offer, sku, version: version ?? 'latest' },
          osDisk: { name: `${name}-osdisk`, createOption: 'FromImage', deleteOption: 'Delete', managedDisk: { storageAccountType: 'StandardSSD_LRS' } },
        },
        osProfile: {
          computerName: name.replace(/[_.]/g, '-').slice(0, 64).replace(/-+$/, ''),
          adminUsername: AZURE_ADMIN_USER,
          linuxConfiguration: { disablePasswordAuthentication: true, ssh: { publicKeys: [{ path: `/home/${AZURE_ADMIN_USER}/.ssh/authorized_keys`, keyData }] } },
        },
        networkProfile: {
          networkApiVersion: '2020-11-01',
          networkInterfaceConfigurations: [
            {
              name: `${name}-nic`,
              properties: {
                primary: true,
                deleteOption: 'Delete',
                ipConfigurations: [
                  {
                    name: 'ipconfig1',
                    properties: {
                      subnet: { id: subnetId },
                      primary: true,
                      publicIPAddressConfiguration: { name: `${name}-ip`, properties: { deleteOption: 'Delete', publicIPAllocationMethod: 'Static' }, sku: { name: 'Standard', tier: 'Regional' } },
                    },
                  },
                ],
              },
            },
          ],
        },
      },
    };
    // PUT on a deterministic name: repeating it cannot create a second VM, so the client may retry it.
    let a: HttpAnswer<ArmVm>;
    try {
      a = await this.call<ArmVm>('PUT', this.vmPath(name), { query: { 'api-version': AZURE_COMPUTE_API_VERSION }, body, retrySafe: true });
    } catch (err) {
      // A retried PUT can be refused because the first one is still creating the VM
      // (409 AnotherOperationInProgress): if the VM with this marker exists, that is the launch.
      const made = await this.describe(name).catch(() => undefined);
      if (made && made.tetherId && made.status !== 'terminating') {
        this.opts.log?.(`Azure: the PUT of ${name} ended with "${(err as Error).message}", but the VM exists: launched`);
        return made;
      }
      throw err;
    }
    return this.toInstance(a.body ?? { name, location, tags: body.tags, properties: { provisioningState: 'Creating' } });
  }

  // ---- stop / terminate ----------------------------------------------------------------------

  private goneError(id: string, err: CloudApiError): CloudApiError {
    return new CloudApiError(AZURE_TITLE, `VM ${id} no longer exists (${err.code ?? 'ResourceNotFound'})`, { remedy: remedyFor(404, 1), status: 404, ...(err.code ? { code: err.code } : {}) });
  }

  /**
   * Stop = deallocate: compute billing ends; the OS disk and public IP keep billing until
   * terminated. (A powerOff would leave it allocated and billing.)
   */
  async stop(id: string): Promise<void> {
    try {
      await this.call('POST', `${this.vmPath(id)}/deallocate`, { query: { 'api-version': AZURE_COMPUTE_API_VERSION }, retrySafe: true });
    } catch (err) {
      if (isResourceNotFound(err)) throw this.goneError(id, err);
      throw err;
    }
  }

  /**
   * Deletes the VM, waits for it, then makes sure its NIC, public IP and OS disk went with it
   * (deleting any left). Already gone counts as terminated. Whatever is left is named in the
   * error, as still billing.
   */
  async terminate(id: string): Promise<void> {
    const vm = await this.getOrUndefined<ArmVm>(this.vmPath(id), { 'api-version': AZURE_COMPUTE_API_VERSION });
    const ours = Boolean(vm?.tags?.[AZURE_TAG_LEDGER_ID] || parseMarker(id));
    const parts: Array<{ what: string; path: string; apiVersion: string }> = [];
    if (ours) {
      const nics = vm?.properties?.networkProfile?.networkInterfaceConfigurations?.map((n) => n.name).filter((n): n is string => !!n) ?? [`${id}-nic`];
      const ips = vm ? AzureVmProvider.publicIpNames(vm) : [`${id}-ip`];
      const disk = vm?.properties?.storageProfile?.osDisk?.name ?? `${id}-osdisk`;
      for (const n of nics) parts.push({ what: `network interface ${n}`, path: this.netPath('networkInterfaces', n), apiVersion: AZURE_NETWORK_API_VERSION });
      for (const n of ips) parts.push({ what: `public IP ${n}`, path: this.netPath('publicIPAddresses', n), apiVersion: AZURE_NETWORK_API_VERSION });
      parts.push({ what: `OS disk ${disk}`, path: this.diskPath(disk), apiVersion: AZURE_COMPUTE_API_VERSION });
    }
    if (vm) {
      const a = await this.call('DELETE', this.vmPath(id), { query: { 'api-version': AZURE_COMPUTE_API_VERSION } });
      await this.waitForOperation(a, `deleting VM ${id}`);
    }
    // The NIC goes before its public IP (an IP in use cannot be deleted), the disk last.
    const left: string[] = [];
    for (const p of parts) {
      try {
        const have = await this.getOrUndefined<ArmResource>(p.path, { 'api-version': p.apiVersion });
        if (!have) continue;
        this.opts.log?.(`Azure: ${p.what} outlived VM ${id}: deleting it`);
        const a = await this.call('DELETE', p.path, { query: { 'api-version': p.apiVersion } });
        await this.waitForOperation(a, `deleting ${p.what}`);
      } catch (err) {
        left.push(`${p.what} (${this.scrub((err as Error).message)})`);
      }
    }
    if (left.length) {
      throw new CloudApiError(AZURE_TITLE, `VM ${id} is deleted, but these still bill: ${left.join('; ')}`, {
        remedy: `delete them in the Azure portal (resource group ${this.opts.resourceGroup}), or run the terminate again`,
        status: 409,
        code: 'LeftoversStillBilling',
      });
    }
  }

  consoleUrl(instance: CloudInstance): string {
    const id = typeof instance.metadata.resourceId === 'string' ? instance.metadata.resourceId : this.vmPath(instance.id);
    return `https://portal.azure.com/#resource${id}/overview`;
  }
}
