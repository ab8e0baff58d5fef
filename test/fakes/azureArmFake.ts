/**
 * Fake Azure Resource Manager (the real ARM cannot be called from tests), served over **HTTPS**
 * with a throwaway test CA made at test time (openssl): the Azure SDK refuses to send a token over
 * plain http, and so does Tether's Azure client. In-process clients trust the CA through their
 * `ca` option; child processes (the CLI) through NODE_EXTRA_CA_CERTS={@link AzureArmFake.caFile}.
 *
 * As strict as the published spec where it has one (test/fixtures/azure/, excerpt of
 * Azure/azure-rest-api-specs ComputeRP/stable/2024-11-01, see its README):
 * - every request needs a known `api-version` (400 MissingApiVersionParameter / a malformed one
 *   InvalidApiVersionParameter / a well-formed unknown one NoRegisteredProviderFound, as ARM
 *   answers) and `Authorization: Bearer <token>` (401 AuthenticationFailed / InvalidAuthenticationToken);
 * - a VM PUT body is validated against the spec's VirtualMachine definition (Ajv): required
 *   members (InvalidParameter "Required parameter ... is missing"), types and enums, and unknown
 *   members where the excerpt has the whole definition (InvalidRequestContent "Could not find
 *   member"), plus what ARM checks beyond the schema: location, the VM name and computerName
 *   rules, the size (InvalidParameter for an unknown one), imageReference with FromImage,
 *   `networkApiVersion` with networkInterfaceConfigurations, an existing subnet, the Linux key path;
 * - a second PUT while the VM is still being created: 409 AnotherOperationInProgress;
 * - long-running operations: PUT 201 / POST 202 / DELETE 202 with `Azure-AsyncOperation` (and
 *   `Location`), the operation resource `{status: InProgress → Succeeded | Failed}`;
 *   `provisioningState` Creating → Succeeded, Deleting; instance view `PowerState/*` advancing
 *   with time: starting → running; deallocate: deallocating → deallocated; powerOff:
 *   stopping → stopped (allocated); start;
 * - the VM's NIC, public IP and OS disk are created with it (networkInterfaceConfigurations) and
 *   deleted with it when their deleteOption is Delete (unless a test keeps one: {@link AzureArmFake.keepOnDelete});
 * - ARM error bodies `{"error":{"code","message"}}`, `nextLink` paging (small pages), 429 with
 *   Retry-After, injected faults (fakeBase.ts).
 * Microsoft.Network bodies (NSG, VNet) are checked for shape only (no spec excerpt), and said so.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import SPEC from '../fixtures/azure/virtualMachine-2024-11-01-excerpt.json';
import { readBody } from '../helpers/net';
import { takeFault, type Answer, type Fault, type LoggedRequest, type ProviderFake } from './fakeBase';

// ---- the test CA -----------------------------------------------------------------------------

export interface TestTls {
  dir: string;
  caFile: string;
  ca: string;
  key: string;
  cert: string;
}

let tls: TestTls | undefined;

/** A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it (made once per process with openssl). */
export function testTls(): TestTls {
  if (tls) return tls;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-azure-ca-'));
  // The CA's key must not outlive the test run.
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const f = (n: string) => path.join(dir, n);
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=Tether test CA (throwaway)', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  ossl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf')]);
  tls = { dir, caFile: f('ca.pem'), ca: fs.readFileSync(f('ca.pem'), 'utf8'), key: fs.readFileSync(f('server.key'), 'utf8'), cert: fs.readFileSync(f('server.pem'), 'utf8') };
  return tls;
}

// ---- the spec --------------------------------------------------------------------------------

type Def = { properties?: Record<string, unknown>; allOf?: Array<{ $ref: string }>; additionalProperties?: unknown; 'x-complete'?: boolean };

/** The excerpt, with `additionalProperties: false` where it holds the whole published definition (ARM refuses unknown members). */
function strictSpec(): object {
  const spec = JSON.parse(JSON.stringify(SPEC)) as { definitions: Record<string, Def> };
  for (const d of Object.values(spec.definitions)) {
    if (!d['x-complete']) continue;
    // Members inherited through allOf (VirtualMachine ← Resource) are members too.
    for (const a of d.allOf ?? []) {
      const base = spec.definitions[a.$ref.replace('#/definitions/', '')];
      d.properties = { ...(base?.properties ?? {}), ...(d.properties ?? {}) };
    }
    d.additionalProperties = false;
  }
  return spec;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(strictSpec(), 'azure-compute-2024-11-01');
const vmSchema: ValidateFunction = ajv.getSchema('azure-compute-2024-11-01#/definitions/VirtualMachine')!;
const cloudErrorSchema: ValidateFunction = ajv.getSchema('azure-compute-2024-11-01#/definitions/CloudError')!;

/** Whether a body is a CloudError as the spec defines it (tests check the fake's own error bodies with it). */
export function isCloudError(body: unknown): boolean {
  return typeof body === 'object' && body !== null && cloudErrorSchema(body) === true && typeof (body as { error?: { code?: unknown } }).error?.code === 'string';
}

/** ARM's answer to a body the schema refuses (the first problem, in ARM's words). */
function schemaError(errors: ErrorObject[]): Answer {
  const at = (e: ErrorObject) => e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown) {
    const member = (unknown.params as { additionalProperty: string }).additionalProperty;
    const p = [at(unknown), member].filter(Boolean).join('.');
    return armErr(400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: 'Could not find member '${member}' on object of type '${at(unknown).split('.').pop() || 'VirtualMachine'}'. Path '${p}'.'.`);
  }
  const req = errors.find((e) => e.keyword === 'required');
  if (req) {
    const p = [at(req), (req.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.');
    return armErr(400, 'InvalidParameter', `Required parameter '${p}' is missing (null).`, p);
  }
  const e = errors[0]!;
  return armErr(400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: '${at(e)} ${e.message}'.`);
}

// ---- ARM's answers ---------------------------------------------------------------------------

const armErr = (status: number, code: string, message: string, target?: string, headers?: Record<string, string>): Answer => ({
  status,
  body: { error: { code, message, ...(target ? { target } : {}) } },
  ...(headers ? { headers } : {}),
});

const notFound = (type: string, name: string, rg: string) =>
  armErr(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);

/** api-versions the fake serves, per resource provider / type (ARM answers NoRegisteredProviderFound for others). */
const API_VERSIONS: Record<string, string[]> = {
  compute: ['2023-03-01', '2023-07-01', '2023-09-01', '2024-03-01', '2024-07-01', '2024-11-01'],
  skus: ['2019-04-01', '2021-07-01'],
  network: ['2023-09-01', '2023-11-01', '2024-01-01', '2024-03-01', '2024-05-01'],
};

/** Sizes the fake's region offers (the N-series Tether catalogues, a few others, one restricted). */
const SIZES: Record<string, { vcpus: number; memGB: number; gpus: number; restricted?: boolean }> = {
  Standard_NC4as_T4_v3: { vcpus: 4, memGB: 28, gpus: 1 },
  Standard_NC8as_T4_v3: { vcpus: 8, memGB: 56, gpus: 1 },
  Standard_NC24ads_A100_v4: { vcpus: 24, memGB: 220, gpus: 1 },
  Standard_ND96asr_v4: { vcpus: 96, memGB: 900, gpus: 8, restricted: true },
  Standard_NV36ads_A10_v5: { vcpus: 36, memGB: 440, gpus: 1 },
  Standard_NC6s_v3: { vcpus: 6, memGB: 112, gpus: 1 },
  Standard_B2s: { vcpus: 2, memGB: 4, gpus: 0 },
  Standard_D2s_v5: { vcpus: 2, memGB: 8, gpus: 0 },
  Standard_D4s_v5: { vcpus: 4, memGB: 16, gpus: 0 },
};

/** adminUsername values ARM refuses (computeRPCommon.json OSProfile.adminUsername). */
const DISALLOWED_ADMINS = new Set('administrator admin user user1 test user2 test1 user3 admin1 1 123 a actuser adm admin2 aspnet backup console david guest john owner root server sql support support_388945a0 sys test2 test3 user4 user5'.split(' '));

interface Vm {
  name: string;
  location: string;
  tags: Record<string, string>;
  properties: Record<string, unknown>;
  createdAt: number;
  /** Last power action and when. */
  power: { action: 'create' | 'start' | 'deallocate' | 'powerOff'; at: number };
  deletedAt?: number;
  foreign?: boolean;
}

interface Res {
  kind: string;
  name: string;
  location: string;
  tags?: Record<string, string>;
  properties: Record<string, unknown>;
}

interface Op {
  doneAt: number;
  fail?: { code: string; message: string };
}

export interface AzureFakeOptions {
  token?: string;
  subscriptionId?: string;
  resourceGroup?: string;
  location?: string;
  /** Creating → Succeeded / starting → running after this long, ms. */
  bootMs?: number;
  /** deallocating, stopping, Deleting last this long, ms. */
  transitionMs?: number;
  /** Items per page of a list (to exercise nextLink). Default 2. */
  pageSize?: number;
  /** Retry-After (seconds) sent with accepted long-running operations. Default 0. */
  pollAfterSec?: number;
}

export class AzureArmFake implements ProviderFake {
  readonly apiKey: string;
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly location: string;
  readonly bootMs: number;
  readonly transitionMs: number;
  readonly pageSize: number;
  readonly pollAfterSec: number;
  readonly requests: LoggedRequest[] = [];
  readonly hookErrors: unknown[] = [];
  onCreate: (() => void) | undefined;
  url = '';
  /** NIC / public IP / disk kinds kept (not deleted) when their VM goes, to test the cleanup. */
  readonly keepOnDelete = new Set<'networkInterfaces' | 'publicIPAddresses' | 'disks'>();
  /** Kinds whose DELETE fails (409), to test "still billing". */
  readonly refuseDelete = new Set<string>();
  private readonly vms = new Map<string, Vm>();
  private readonly res = new Map<string, Res>();
  private readonly ops = new Map<string, Op>();
  private readonly sshKeys = new Map<string, string>();
  private faults: Fault[] = [];
  private created = 0;
  private server: https.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(o: AzureFakeOptions = {}) {
    this.apiKey = o.token ?? `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-arm-token-${randomUUID()}`;
    this.subscriptionId = o.subscriptionId ?? '00000000-0000-0000-0000-0000000000aa';
    this.resourceGroup = o.resourceGroup ?? 'tether-rg';
    this.location = o.location ?? 'eastus';
    this.bootMs = o.bootMs ?? 150;
    this.transitionMs = o.transitionMs ?? 150;
    this.pageSize = o.pageSize ?? 2;
    this.pollAfterSec = o.pollAfterSec ?? 0;
    this.sshKeys.set('laptop', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTetherTestsOnly0000000000000000000 laptop');
  }

  /** The CA file child processes trust with NODE_EXTRA_CA_CERTS. */
  static get caFile(): string {
    return testTls().caFile;
  }
  /** The CA in-process clients trust (their `ca` option). */
  static get ca(): string {
    return testTls().ca;
  }

  async start(): Promise<string> {
    const t = testTls();
    this.server = https.createServer({ key: t.key, cert: t.cert }, (req, res) => void this.handle(req, res));
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `https://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }

  inject(f: Fault): void {
    this.faults.push({ times: 1, ...f });
  }
  clearFaults(): void {
    this.faults = [];
  }

  instanceCount(): number {
    return this.created;
  }

  private get rgPath(): string {
    return `/subscriptions/${this.subscriptionId}/resourceGroups/${this.resourceGroup}`;
  }

  /** A VM made outside Tether (the portal, az), running, with no Tether tags. */
  addForeign(name: string): string {
    const now = Date.now() - 3_600_000;
    this.vms.set(name.toLowerCase(), {
      name,
      location: this.location,
      tags: {},
      createdAt: now,
      power: { action: 'create', at: now },
      foreign: true,
      properties: {
        hardwareProfile: { vmSize: 'Standard_D2s_v5' },
        storageProfile: { osDisk: { name: `${name}_OsDisk_1`, createOption: 'FromImage', deleteOption: 'Detach' } },
        osProfile: { computerName: name.slice(0, 15), adminUsername: 'someone' },
        networkProfile: { networkInterfaces: [{ id: `${this.rgPath}/providers/Microsoft.Network/networkInterfaces/${name}123` }] },
      },
    });
    this.created += 1;
    return name;
  }

  /** The guest shuts itself down (or someone calls powerOff): Stopped, still allocated, still billed. */
  powerOffFromInside(name: string): void {
    const vm = this.vms.get(name.toLowerCase());
    if (!vm) throw new Error(`no VM ${name}`);
    vm.power = { action: 'powerOff', at: Date.now() - this.transitionMs };
  }

  /** Resources (NIC, public IP, disk, NSG, VNet) the fake holds now, as `kind/name`. */
  resources(): string[] {
    return [...this.res.values()].map((r) => `${r.kind}/${r.name}`).sort();
  }

  // ---- state ---------------------------------------------------------------------------------

  private provisioningState(vm: Vm, now = Date.now()): string {
    if (vm.deletedAt !== undefined) return 'Deleting';
    return now - vm.createdAt < this.bootMs ? 'Creating' : 'Succeeded';
  }

  private powerState(vm: Vm, now = Date.now()): string {
    const t = now - vm.power.at;
    switch (vm.power.action) {
      case 'create':
      case 'start':
        return t < this.bootMs ? 'PowerState/starting' : 'PowerState/running';
      case 'deallocate':
        return t < this.transitionMs ? 'PowerState/deallocating' : 'PowerState/deallocated';
      case 'powerOff':
        return t < this.transitionMs ? 'PowerState/stopping' : 'PowerState/stopped';
    }
  }

  /** Removes VMs whose delete finished (and what was to go with them). */
  private sweep(now = Date.now()): void {
    for (const [k, vm] of this.vms) {
      if (vm.deletedAt === undefined || now - vm.deletedAt < this.transitionMs) continue;
      this.vms.delete(k);
      const np = vm.properties.networkProfile as { networkInterfaceConfigurations?: Array<{ name: string; properties: { deleteOption?: string; ipConfigurations: Array<{ properties?: { publicIPAddressConfiguration?: { name: string; properties?: { deleteOption?: string } } } }> } }> } | undefined;
      for (const nic of np?.networkInterfaceConfigurations ?? []) {
        if (nic.properties.deleteOption === 'Delete' && !this.keepOnDelete.has('networkInterfaces')) this.res.delete(this.key('networkInterfaces', nic.name));
        for (const ipc of nic.properties.ipConfigurations ?? []) {
          const pip = ipc.properties?.publicIPAddressConfiguration;
          if (pip && pip.properties?.deleteOption === 'Delete' && !this.keepOnDelete.has('publicIPAddresses')) this.res.delete(this.key('publicIPAddresses', pip.name));
        }
      }
      const disk = (vm.properties.storageProfile as { osDisk?: { name?: string; deleteOption?: string } }).osDisk;
      if (disk?.name && disk.deleteOption === 'Delete' && !this.keepOnDelete.has('disks')) this.res.delete(this.key('disks', disk.name));
    }
  }

  private key(kind: string, name: string): string {
    return `${kind}/${name}`.toLowerCase();
  }

  private vmView(vm: Vm, expand: boolean): Record<string, unknown> {
    const now = Date.now();
    const ps = this.provisioningState(vm, now);
    const props: Record<string, unknown> = { ...vm.properties, provisioningState: ps, timeCreated: new Date(vm.createdAt).toISOString(), vmId: `vmid-${vm.name}` };
    const osProfile = props.osProfile as Record<string, unknown> | undefined;
    if (osProfile) props.osProfile = { ...osProfile, adminPassword: undefined };
    if (expand) props.instanceView = this.instanceView(vm, now);
    return {
      id: `${this.rgPath}/providers/Microsoft.Compute/virtualMachines/${vm.name}`,
      name: vm.name,
      type: 'Microsoft.Compute/virtualMachines',
      location: vm.location,
      ...(Object.keys(vm.tags).length ? { tags: vm.tags } : {}),
      properties: JSON.parse(JSON.stringify(props)) as unknown,
    };
  }

  private instanceView(vm: Vm, now = Date.now()): Record<string, unknown> {
    const ps = this.provisioningState(vm, now);
    const power = this.powerState(vm, now);
    return {
      computerName: (vm.properties.osProfile as { computerName?: string } | undefined)?.computerName,
      statuses: [
        { code: `ProvisioningState/${ps.toLowerCase()}`, level: 'Info', displayStatus: ps === 'Succeeded' ? 'Provisioning succeeded' : ps },
        ...(ps === 'Creating' && now - vm.createdAt < this.bootMs / 3 ? [] : [{ code: power, level: 'Info', displayStatus: power.replace('PowerState/', 'VM ') }]),
      ],
    };
  }

  private operation(location: string, ns: 'Microsoft.Compute' | 'Microsoft.Network', doneInMs: number, fail?: Op['fail']): Record<string, string> {
    const id = randomUUID();
    this.ops.set(id, { doneAt: Date.now() + doneInMs, ...(fail ? { fail } : {}) });
    const apiVersion = ns === 'Microsoft.Compute' ? '2024-11-01' : '2024-05-01';
    const base = `${this.url}/subscriptions/${this.subscriptionId}/providers/${ns}/locations/${location}/operations/${id}`;
    return {
      'Azure-AsyncOperation': `${base}?api-version=${apiVersion}`,
      Location: `${base}?monitor=true&api-version=${apiVersion}`,
      'Retry-After': String(this.pollAfterSec),
    };
  }

  // ---- requests ------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const method = req.method ?? 'GET';
    const p = url.pathname;
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      this.requests.push({ method, path: p, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(url.search ? { search: url.search } : {}) });
      return this.send(res, armErr(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.'));
    }
    this.requests.push({ method, path: p, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), body, ...(url.search ? { search: url.search } : {}) });

    const auth = req.headers.authorization;
    if (!auth) return this.send(res, armErr(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing."));
    if (!/^Bearer /.test(auth)) return this.send(res, armErr(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is provided in an invalid format."));
    if (auth !== `Bearer ${this.apiKey}`) return this.send(res, armErr(401, 'InvalidAuthenticationToken', 'The access token is invalid.'));

    const fault = takeFault(this.faults, method, p);
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'rate-limit') {
      return this.send(res, armErr(429, 'TooManyRequests', 'The request is being throttled as the limit has been reached for operation type - Read_30Min. For more information, see - https://aka.ms/throttling', undefined, fault.retryAfterSec !== undefined ? { 'Retry-After': String(fault.retryAfterSec) } : undefined));
    }
    if (fault?.kind === 'error-500') return this.send(res, armErr(500, 'InternalServerError', 'An internal execution error occurred. Please retry later.'));

    let answer: Answer;
    try {
      answer = this.route(method, p, url, body);
    } catch (err) {
      answer = armErr(500, 'InternalServerError', String(err));
    }
    if (fault?.kind === 'create-then-hang') return;
    if (fault?.kind === 'create-then-fail') return this.send(res, armErr(500, 'InternalServerError', 'An internal execution error occurred. Please retry later.'));
    this.send(res, answer);
  }

  private send(res: http.ServerResponse, a: Answer): void {
    const text = a.text ?? (a.body === undefined ? '' : JSON.stringify(a.body));
    res.writeHead(a.status, { ...(text ? { 'Content-Type': 'application/json; charset=utf-8' } : {}), 'x-ms-request-id': randomUUID(), ...(a.headers ?? {}) });
    res.end(text);
  }

  /** The api-version check ARM makes before anything else. */
  private apiVersion(url: URL, family: keyof typeof API_VERSIONS, type: string): Answer | undefined {
    const v = url.searchParams.get('api-version');
    if (v === null || v === '') return armErr(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
    const supported = API_VERSIONS[family]!;
    if (!/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(v)) return armErr(400, 'InvalidApiVersionParameter', `The api-version '${v}' is invalid. The supported versions are '${supported.join(',')}'.`);
    if (!supported.includes(v)) {
      return armErr(400, 'NoRegisteredProviderFound', `No registered resource provider found for location '${this.location}' and API version '${v}' for type '${type}'. The supported api-versions are '${supported.join(', ')}'. The supported locations are '${this.location}'.`);
    }
    return undefined;
  }

  private page<T>(items: T[], url: URL): Answer {
    const skip = Number(url.searchParams.get('$skiptoken') ?? '0') || 0;
    const value = items.slice(skip, skip + this.pageSize);
    const next = skip + this.pageSize < items.length ? new URL(url.toString().replace('https://127.0.0.1', this.url)) : undefined;
    if (next) next.searchParams.set('$skiptoken', String(skip + this.pageSize));
    return { status: 200, body: { value, ...(next ? { nextLink: next.toString() } : {}) } };
  }

  private route(method: string, p: string, url: URL, body: unknown): Answer {
    this.sweep();
    const sub = `/subscriptions/${this.subscriptionId}`.toLowerCase();
    const lower = p.toLowerCase();
    if (!lower.startsWith(`${sub}/`)) {
      const m = /^\/subscriptions\/([^/]+)/i.exec(p);
      if (m) return armErr(404, 'SubscriptionNotFound', `The subscription '${m[1]}' could not be found.`);
      return armErr(404, 'InvalidResourceType', 'The resource type could not be found.');
    }
    // Long-running operation status.
    const op = /^\/subscriptions\/[^/]+\/providers\/(microsoft\.compute|microsoft\.network)\/locations\/[^/]+\/operations\/([^/]+)$/i.exec(p);
    if (op && method === 'GET') {
      const bad = this.apiVersion(url, op[1]!.toLowerCase() === 'microsoft.compute' ? 'compute' : 'network', 'locations/operations');
      if (bad) return bad;
      const o = this.ops.get(op[2]!);
      if (!o) return armErr(404, 'NotFound', `The operation '${op[2]}' was not found.`);
      const done = Date.now() >= o.doneAt;
      if (url.searchParams.get('monitor') === 'true') return done ? { status: 200 } : { status: 202, headers: { 'Retry-After': String(this.pollAfterSec), Location: url.toString().replace('https://127.0.0.1', this.url) } };
      return {
        status: 200,
        body: { name: op[2], startTime: new Date(o.doneAt - 1).toISOString(), status: !done ? 'InProgress' : o.fail ? 'Failed' : 'Succeeded', ...(done && o.fail ? { error: o.fail } : {}) },
        ...(!done ? { headers: { 'Retry-After': String(this.pollAfterSec) } } : {}),
      };
    }
    // Resource SKUs.
    if (/^\/subscriptions\/[^/]+\/providers\/microsoft\.compute\/skus$/i.test(p) && method === 'GET') {
      const bad = this.apiVersion(url, 'skus', 'skus');
      if (bad) return bad;
      const filter = url.searchParams.get('$filter');
      if (filter !== null && !/^location eq '[a-z0-9]+'$/.test(filter)) return armErr(400, 'InvalidFilterInQueryString', `Invalid $filter '${filter}' specified in the query string. Only location eq 'LOCATION' is supported.`);
      const loc = filter ? /'([^']+)'/.exec(filter)![1]! : this.location;
      const skus =
        loc !== this.location
          ? []
          : Object.entries(SIZES).map(([name, s]) => ({
              resourceType: 'virtualMachines',
              name,
              tier: 'Standard',
              size: name.replace(/^Standard_/, ''),
              locations: [this.location],
              locationInfo: [{ location: this.location, zones: ['1', '2', '3'] }],
              capabilities: [
                { name: 'vCPUs', value: String(s.vcpus) },
                { name: 'MemoryGB', value: String(s.memGB) },
                ...(s.gpus ? [{ name: 'GPUs', value: String(s.gpus) }] : []),
              ],
              restrictions: s.restricted ? [{ type: 'Location', values: [this.location], restrictionInfo: { locations: [this.location] }, reasonCode: 'NotAvailableForSubscription' }] : [],
            }));
      return this.page(skus, url);
    }
    const rg = this.rgPath.toLowerCase();
    if (!lower.startsWith(`${rg}/`)) {
      const m = /^\/subscriptions\/[^/]+\/resourcegroups\/([^/]+)/i.exec(p);
      if (m) return armErr(404, 'ResourceGroupNotFound', `Resource group '${decodeURIComponent(m[1]!)}' could not be found.`);
      return armErr(404, 'InvalidResourceType', 'The resource type could not be found.');
    }
    const rest = p.slice(this.rgPath.length);
    let m: RegExpExecArray | null;
    if ((m = /^\/providers\/Microsoft\.Compute\/virtualMachines(?:\/([^/]+))?(?:\/([^/]+))?$/i.exec(rest))) {
      const bad = this.apiVersion(url, 'compute', 'virtualMachines');
      if (bad) return bad;
      return this.vmRoute(method, m[1] ? decodeURIComponent(m[1]) : undefined, m[2], url, body);
    }
    if ((m = /^\/providers\/Microsoft\.Compute\/sshPublicKeys\/([^/]+)$/i.exec(rest)) && method === 'GET') {
      const bad = this.apiVersion(url, 'compute', 'sshPublicKeys');
      if (bad) return bad;
      const name = decodeURIComponent(m[1]!);
      const k = this.sshKeys.get(name);
      if (!k) return notFound('Microsoft.Compute/sshPublicKeys', name, this.resourceGroup);
      return { status: 200, body: { id: `${this.rgPath}/providers/Microsoft.Compute/sshPublicKeys/${name}`, name, location: this.location, properties: { publicKey: k } } };
    }
    if ((m = /^\/providers\/Microsoft\.Compute\/disks\/([^/]+)$/i.exec(rest))) {
      const bad = this.apiVersion(url, 'compute', 'disks');
      if (bad) return bad;
      return this.plainResource(method, 'disks', 'Microsoft.Compute', decodeURIComponent(m[1]!), body);
    }
    if ((m = /^\/providers\/Microsoft\.Network\/(networkSecurityGroups|virtualNetworks|publicIPAddresses|networkInterfaces)(?:\/([^/]+))?$/i.exec(rest))) {
      const kind = ['networkSecurityGroups', 'virtualNetworks', 'publicIPAddresses', 'networkInterfaces'].find((k) => k.toLowerCase() === m![1]!.toLowerCase())!;
      const bad = this.apiVersion(url, 'network', kind);
      if (bad) return bad;
      if (!m[2]) {
        if (method !== 'GET') return armErr(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
        return this.page([...this.res.values()].filter((r) => r.kind === kind).map((r) => this.resView(r)), url);
      }
      return this.plainResource(method, kind, 'Microsoft.Network', decodeURIComponent(m[2]), body);
    }
    return armErr(404, 'InvalidResourceType', `The resource type could not be found in the namespace for api version '${url.searchParams.get('api-version')}'.`);
  }

  private resView(r: Res): Record<string, unknown> {
    const ns = r.kind === 'disks' ? 'Microsoft.Compute' : 'Microsoft.Network';
    return { id: `${this.rgPath}/providers/${ns}/${r.kind}/${r.name}`, name: r.name, type: `${ns}/${r.kind}`, location: r.location, ...(r.tags ? { tags: r.tags } : {}), properties: { ...r.properties, provisioningState: 'Succeeded' } };
  }

  /** NSG, VNet, public IP, NIC, disk: GET, PUT (NSG, VNet only), DELETE. */
  private plainResource(method: string, kind: string, ns: string, name: string, body: unknown): Answer {
    const k = this.key(kind, name);
    const have = this.res.get(k);
    if (method === 'GET') return have ? { status: 200, body: this.resView(have) } : notFound(`${ns}/${kind}`, name, this.resourceGroup);
    if (method === 'DELETE') {
      if (!have) return { status: 204 };
      if (this.refuseDelete.has(kind)) return armErr(409, 'InUseCannotBeDeleted', `${kind} ${name} is in use and cannot be deleted.`);
      if (kind === 'publicIPAddresses' && [...this.res.values()].some((r) => r.kind === 'networkInterfaces' && JSON.stringify(r.properties).includes(`/publicIPAddresses/${name}"`))) {
        return armErr(400, 'PublicIPAddressCannotBeDeleted', `Public IP address ${name} can not be deleted since it is still allocated to resource ${name}. In order to delete the public IP, disassociate/detach the Public IP address from the resource.`);
      }
      this.res.delete(k);
      return { status: 202, headers: this.operation(have.location, ns as 'Microsoft.Network', 0) };
    }
    if (method === 'PUT' && (kind === 'networkSecurityGroups' || kind === 'virtualNetworks')) {
      const b = body as { location?: unknown; properties?: unknown; tags?: Record<string, string> } | undefined;
      if (!b || typeof b !== 'object') return armErr(400, 'InvalidRequestFormat', 'Cannot parse the request.');
      if (typeof b.location !== 'string' || !b.location) return armErr(400, 'LocationRequired', 'The location property is required for this definition.');
      if (b.properties !== undefined && (typeof b.properties !== 'object' || b.properties === null)) return armErr(400, 'InvalidRequestFormat', 'Cannot parse the request.');
      if (kind === 'virtualNetworks') {
        const prefixes = (b.properties as { addressSpace?: { addressPrefixes?: unknown } } | undefined)?.addressSpace?.addressPrefixes;
        if (!Array.isArray(prefixes) || !prefixes.length) return armErr(400, 'InvalidAddressSpace', 'The address space of virtual network must contain at least one address prefix.');
      }
      this.res.set(k, { kind, name, location: b.location, ...(b.tags ? { tags: b.tags } : {}), properties: (b.properties ?? {}) as Record<string, unknown> });
      return { status: have ? 200 : 201, body: this.resView(this.res.get(k)!), headers: this.operation(b.location, 'Microsoft.Network', this.bootMs / 2) };
    }
    return armErr(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
  }

  private vmRoute(method: string, name: string | undefined, action: string | undefined, url: URL, body: unknown): Answer {
    if (!name) {
      if (method !== 'GET') return armErr(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
      const expand = url.searchParams.get('$expand');
      if (expand !== null && expand !== 'instanceView') return armErr(400, 'InvalidParameter', `The value of parameter $expand is invalid.`, '$expand');
      return this.page([...this.vms.values()].map((v) => this.vmView(v, expand === 'instanceView')), url);
    }
    const vm = this.vms.get(name.toLowerCase());
    const missing = () => notFound('Microsoft.Compute/virtualMachines', name, this.resourceGroup);
    if (action) {
      if (method === 'GET' && action.toLowerCase() === 'instanceview') return vm ? { status: 200, body: this.instanceView(vm) } : missing();
      if (method !== 'POST') return armErr(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
      if (!vm) return missing();
      if (vm.deletedAt !== undefined) return armErr(409, 'OperationNotAllowed', `Operation '${action}' is not allowed on VM '${name}' since the VM is marked for deletion.`);
      const now = Date.now();
      const power = this.powerState(vm, now);
      switch (action.toLowerCase()) {
        case 'deallocate':
          if (power === 'PowerState/deallocated') return { status: 200 };
          if (power !== 'PowerState/deallocating') vm.power = { action: 'deallocate', at: now };
          return { status: 202, headers: this.operation(vm.location, 'Microsoft.Compute', this.transitionMs) };
        case 'poweroff':
          if (power === 'PowerState/deallocated' || power === 'PowerState/stopped') return { status: 200 };
          vm.power = { action: 'powerOff', at: now };
          return { status: 202, headers: this.operation(vm.location, 'Microsoft.Compute', this.transitionMs) };
        case 'start':
          if (power === 'PowerState/running') return { status: 200 };
          vm.power = { action: 'start', at: now };
          return { status: 202, headers: this.operation(vm.location, 'Microsoft.Compute', this.bootMs) };
        default:
          return armErr(404, 'InvalidResourceType', `The resource type '${action}' could not be found.`);
      }
    }
    if (method === 'GET') {
      if (!vm) return missing();
      const expand = url.searchParams.get('$expand');
      if (expand !== null && !['instanceView', 'userData', 'resiliencyPolicy'].includes(expand)) return armErr(400, 'InvalidParameter', 'The value of parameter $expand is invalid.', '$expand');
      return { status: 200, body: this.vmView(vm, expand === 'instanceView') };
    }
    if (method === 'DELETE') {
      if (!vm) return { status: 204 };
      if (vm.deletedAt === undefined) vm.deletedAt = Date.now();
      return { status: 202, headers: this.operation(vm.location, 'Microsoft.Compute', this.transitionMs) };
    }
    if (method === 'PUT') return this.putVm(name, vm, body);
    return armErr(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
  }

  private putVm(name: string, vm: Vm | undefined, body: unknown): Answer {
    if (!body || typeof body !== 'object' || Array.isArray(body)) return armErr(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.');
    const b = body as { location?: string; tags?: Record<string, string>; properties?: Record<string, any> };
    if (typeof b.location !== 'string' || !b.location) return armErr(400, 'LocationRequired', 'The location property is required for this definition.');
    if (!vmSchema(body)) return schemaError(vmSchema.errors ?? []);
    if (b.location.toLowerCase() !== this.location) return armErr(400, 'LocationNotAvailableForResourceType', `The provided location '${b.location}' is not available for resource type 'Microsoft.Compute/virtualMachines'. List of available regions for the resource type is '${this.location}'.`);
    // Linux VM names: 1-64 characters, letters, digits, '_', '.', '-'; not starting with '_', not ending with '.' or '-'.
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name) || /[.-]$/.test(name)) return armErr(400, 'InvalidParameter', `Virtual machine name '${name}' is invalid.`, 'vmName');
    if (vm?.deletedAt !== undefined) return armErr(409, 'OperationNotAllowed', `Operation 'PUT' is not allowed on VM '${name}' since the VM is marked for deletion.`);
    const props = b.properties ?? {};
    const size = props.hardwareProfile?.vmSize;
    if (!size) return armErr(400, 'InvalidParameter', "Required parameter 'hardwareProfile.vmSize' is missing (null).", 'hardwareProfile.vmSize');
    if (!SIZES[size]) return armErr(400, 'InvalidParameter', `The value ${size} provided for the VM size is not valid. The valid sizes in the current region are: ${Object.keys(SIZES).join(',')}. Find out more on the available VM sizes in each region at https://aka.ms/azure-regions.`, 'vmSize');
    if (SIZES[size]!.restricted) return armErr(409, 'SkuNotAvailable', `The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: ${size}' is currently not available in location '${this.location}'. Please try another size or deploy to a different location or different zone.`);
    if (vm && this.provisioningState(vm) === 'Creating') {
      // A second PUT while the first still creates the VM.
      return armErr(409, 'AnotherOperationInProgress', `Another operation on this or dependent resource is in progress. To retrieve status of the operation use uri: ${this.url}/subscriptions/${this.subscriptionId}/providers/Microsoft.Compute/locations/${vm.location}/operations/${randomUUID()}?api-version=2024-11-01.`);
    }
    if (vm) {
      // An update: what cannot change after creation must not.
      const was = vm.properties.osProfile as { adminUsername?: string; computerName?: string } | undefined;
      const now = props.osProfile as { adminUsername?: string; computerName?: string } | undefined;
      if (now && was && (now.adminUsername !== was.adminUsername || now.computerName !== was.computerName)) {
        return armErr(409, 'PropertyChangeNotAllowed', "Changing property 'osProfile' is not allowed.", 'osProfile');
      }
      vm.tags = b.tags ?? vm.tags;
      return { status: 200, body: this.vmView(vm, false) };
    }
    const osDisk = props.storageProfile?.osDisk;
    if (!osDisk) return armErr(400, 'InvalidParameter', "Required parameter 'storageProfile.osDisk' is missing (null).", 'storageProfile.osDisk');
    if (osDisk.createOption === 'FromImage' && !props.storageProfile?.imageReference) return armErr(400, 'InvalidParameter', "Required parameter 'imageReference' is missing (null).", 'imageReference');
    const osProfile = props.osProfile;
    if (osDisk.createOption === 'FromImage' && !osProfile) return armErr(400, 'InvalidParameter', "Required parameter 'osProfile' is missing (null).", 'osProfile');
    if (osProfile) {
      if (!osProfile.adminUsername) return armErr(400, 'InvalidParameter', "Required parameter 'osProfile.adminUsername' is missing (null).", 'osProfile.adminUsername');
      if (DISALLOWED_ADMINS.has(String(osProfile.adminUsername).toLowerCase())) return armErr(400, 'InvalidParameter', 'The Admin Username specified is not allowed.', 'adminUsername');
      const cn = String(osProfile.computerName ?? name);
      if (!/^[A-Za-z0-9-]{1,64}$/.test(cn) || /^\d+$/.test(cn) || /-$/.test(cn)) return armErr(400, 'InvalidParameter', `Linux host name cannot exceed 64 characters in length or contain the following characters: \` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' " , < > / ?.`, 'computerName');
      const linux = osProfile.linuxConfiguration;
      if (linux?.disablePasswordAuthentication && !osProfile.adminPassword && !(linux.ssh?.publicKeys ?? []).length) {
        return armErr(400, 'InvalidParameter', 'Authentication using either SSH or by user name and password must be enabled in Linux profile.', 'linuxConfiguration');
      }
      for (const k of linux?.ssh?.publicKeys ?? []) {
        if (k.path !== `/home/${osProfile.adminUsername}/.ssh/authorized_keys`) return armErr(400, 'InvalidParameter', `Destination path for SSH public keys is currently limited to its default value /home/${osProfile.adminUsername}/.ssh/authorized_keys due to a known issue in Linux provisioning agent.`, 'linuxConfiguration.ssh.publicKeys.path');
        if (!/^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(String(k.keyData ?? ''))) return armErr(400, 'InvalidParameter', 'The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.', 'linuxConfiguration.ssh.publicKeys.keyData');
      }
    }
    const np = props.networkProfile ?? {};
    const cfgs = (np.networkInterfaceConfigurations ?? []) as Array<{ name: string; properties: { deleteOption?: string; ipConfigurations: Array<{ properties?: { subnet?: { id?: string }; publicIPAddressConfiguration?: { name: string; properties?: { deleteOption?: string } } } }> } }>;
    if (!cfgs.length && !(np.networkInterfaces ?? []).length) return armErr(400, 'InvalidParameter', "Required parameter 'networkProfile' is missing (null).", 'networkProfile');
    if (cfgs.length && !np.networkApiVersion) return armErr(400, 'InvalidParameter', "Required parameter 'networkProfile.networkApiVersion' is missing (null).", 'networkProfile.networkApiVersion');
    for (const c of cfgs) {
      if (this.res.has(this.key('networkInterfaces', c.name))) return armErr(409, 'Conflict', `Network interface ${c.name} already exists and is not attached to VM ${name}.`);
      for (const ipc of c.properties.ipConfigurations) {
        const subnet = ipc.properties?.subnet?.id ?? '';
        const vnet = /\/virtualNetworks\/([^/]+)\/subnets\/([^/]+)$/i.exec(subnet);
        const have = vnet ? this.res.get(this.key('virtualNetworks', vnet[1]!)) : undefined;
        const subnets = (have?.properties.subnets as Array<{ name?: string }> | undefined) ?? [];
        if (!vnet || !have || !subnets.some((s) => s.name === vnet[2])) return armErr(400, 'InvalidResourceReference', `Resource ${subnet} referenced by resource ${name} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`);
      }
    }
    const now = Date.now();
    this.vms.set(name.toLowerCase(), { name, location: b.location, tags: b.tags ?? {}, properties: JSON.parse(JSON.stringify(props)) as Record<string, unknown>, createdAt: now, power: { action: 'create', at: now } });
    this.created += 1;
    this.onCreate?.();
    // What networkInterfaceConfigurations and the OS disk make with the VM.
    for (const c of cfgs) {
      const ipconfs = c.properties.ipConfigurations.map((ipc, i) => {
        const pip = ipc.properties?.publicIPAddressConfiguration;
        if (pip) this.res.set(this.key('publicIPAddresses', pip.name), { kind: 'publicIPAddresses', name: pip.name, location: b.location!, properties: { ipAddress: '127.0.0.1', publicIPAllocationMethod: 'Static' } });
        return { name: `ipconfig${i + 1}`, properties: { subnet: ipc.properties?.subnet, ...(pip ? { publicIPAddress: { id: `${this.rgPath}/providers/Microsoft.Network/publicIPAddresses/${pip.name}` } } : {}) } };
      });
      this.res.set(this.key('networkInterfaces', c.name), { kind: 'networkInterfaces', name: c.name, location: b.location, properties: { ipConfigurations: ipconfs, virtualMachine: { id: `${this.rgPath}/providers/Microsoft.Compute/virtualMachines/${name}` } } });
    }
    const diskName = osDisk.name ?? `${name}_OsDisk_1_${randomUUID().replace(/-/g, '')}`;
    this.vms.get(name.toLowerCase())!.properties.storageProfile = { ...props.storageProfile, osDisk: { ...osDisk, name: diskName } };
    this.res.set(this.key('disks', diskName), { kind: 'disks', name: diskName, location: b.location, properties: { diskState: 'Attached' } });
    return { status: 201, body: this.vmView(this.vms.get(name.toLowerCase())!, false), headers: this.operation(b.location, 'Microsoft.Compute', this.bootMs) };
  }
}
