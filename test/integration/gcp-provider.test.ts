// What is particular to Compute Engine, beyond the shared contract suite: errors inside a DONE
// operation, Spot VMs and their preemption, N1 GPUs through guestAccelerators, paging, the label
// marker, requestId, statuses — against the strict compute/v1 fake.
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import {
  GcpComputeProvider,
  GCP_SHIPPED_CATALOGUE,
  gceInstanceName,
  gcpRequestId,
  labelValue,
  LABEL_VALUE_RE,
  mapGceStatus,
  parseInstanceType,
} from '../../src/backends/cloud/gcp/gcp';
import { GCP_BILLING } from '../../src/backends/cloud/gcp/billing';
import { accrue } from '../../src/core/cost';
import { matchesLedgerId } from '../../src/backends/cloud/marker';
import { CloudApiError } from '../../src/backends/cloud/provider';
import { FakeGcpComputeServer } from '../fakes/gcpComputeFake';
import { checkInstanceBody } from '../fakes/gcpComputeSpec';
import { waitFor } from '../helpers/tmp';

const WAIT_MS = 60_000;

describe('GCP Compute Engine provider specifics (strict compute/v1 fake)', function () {
  this.timeout(4 * WAIT_MS);
  let fake: FakeGcpComputeServer;
  let p: GcpComputeProvider;
  beforeEach(async () => {
    fake = new FakeGcpComputeServer({ project: 'tether-test', bootMs: 300 });
    await fake.start();
    p = new GcpComputeProvider({ project: 'tether-test', zone: 'us-central1-a', baseUrl: fake.url, token: async () => fake.apiKey, backoffMs: 20, operationPollMs: 30 });
  });
  afterEach(async () => {
    await fake?.stop();
  });

  it('an insert whose operation ends DONE with errors is a failed launch with Compute Engine\'s code and a remedy', async () => {
    fake.failNextInsert = { code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: "The zone 'projects/tether-test/zones/us-central1-a' does not have enough resources available to fulfill the request." };
    const err = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: 'g2-standard-4' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof CloudApiError, String(err));
    assert.equal(err.code, 'ZONE_RESOURCE_POOL_EXHAUSTED');
    assert.match(err.message, /does not have enough resources/);
    assert.match(err.remedy, /another zone/);
    assert.equal(fake.instances.size, 0);
  });

  it('Spot: provisioningModel SPOT with STOP on preemption; a preempted VM shows as stopped, preempted, with the time', async () => {
    const id = randomUUID();
    const inst = await p.launch({ ledgerId: id, name: 'cheap', instanceType: 'g2-standard-4:spot' });
    const insert = fake.requests.find((r) => r.method === 'POST' && r.path.endsWith('/instances'))!;
    const sched = (insert.body as { scheduling: Record<string, unknown> }).scheduling;
    assert.deepEqual(sched, { onHostMaintenance: 'TERMINATE', provisioningModel: 'SPOT', instanceTerminationAction: 'STOP', automaticRestart: false });
    assert.equal(inst.instanceType, 'g2-standard-4:spot');
    assert.equal(inst.pricePerHour, GCP_SHIPPED_CATALOGUE.regions['us-central1']!['g2-standard-4']!.spot);
    assert.equal(inst.metadata.spot, true);
    await waitFor(async () => (await p.describe(inst.id))?.status === 'running', WAIT_MS, 'running');
    fake.preempt(inst.id);
    const d = (await p.describe(inst.id))!;
    assert.equal(d.status, 'stopped');
    assert.equal(d.rawStatus, 'TERMINATED');
    assert.equal(d.metadata.preempted, true);
    assert.match(String(d.metadata.stateReason), /^preempted by Compute Engine at \d{4}-/);
    assert.ok(matchesLedgerId(d, id));
    const listed = (await p.listInstances()).find((x) => x.id === inst.id)!;
    assert.equal(listed.metadata.preempted, true);
    // An on-demand VM that was merely stopped is not "preempted".
    const od = await p.launch({ ledgerId: randomUUID(), name: 'steady', instanceType: 'g2-standard-4' });
    await waitFor(async () => (await p.describe(od.id))?.status === 'running', WAIT_MS, 'running');
    await p.stop(od.id);
    const stopped = await waitFor(async () => {
      const x = await p.describe(od.id);
      return x?.status === 'stopped' ? x : undefined;
    }, WAIT_MS, 'stopped');
    assert.equal(stopped.metadata.preempted, undefined);
  });

  it('N1 with GPUs: guestAccelerators and onHostMaintenance=TERMINATE; the body passes the compute/v1 schema', async () => {
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'n1', instanceType: 'n1-standard-8+2xnvidia-tesla-t4' });
    const insert = fake.requests.find((r) => r.method === 'POST' && r.path.endsWith('/instances'))!;
    const body = insert.body as { guestAccelerators: unknown; scheduling: { onHostMaintenance: string } };
    assert.deepEqual(body.guestAccelerators, [{ acceleratorType: 'zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4', acceleratorCount: 2 }]);
    assert.equal(body.scheduling.onHostMaintenance, 'TERMINATE');
    assert.deepEqual(checkInstanceBody(insert.body), []);
    assert.equal(inst.gpuCount, 2);
    assert.match(inst.gpuType ?? '', /T4/);
    assert.equal(inst.pricePerHour, undefined, 'not in the catalogue: no price, not a guess');
    // An accelerator-optimized type carries its GPUs in the machine type: no guestAccelerators sent.
    const a2 = await p.launch({ ledgerId: randomUUID(), name: 'a2', instanceType: 'a2-highgpu-1g' });
    const ins2 = fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances'))[1]!;
    assert.equal((ins2.body as { guestAccelerators?: unknown }).guestAccelerators, undefined);
    assert.equal(a2.gpuCount, 1);
    assert.match(a2.gpuType ?? '', /A100/);
  });

  it('lists follow nextPageToken (aggregated and zonal) when Compute Engine returns short pages', async () => {
    const small = new FakeGcpComputeServer({ project: 'tether-test', pageCap: 2 });
    await small.start();
    try {
      const q = new GcpComputeProvider({ project: 'tether-test', zone: 'us-central1-a', baseUrl: small.url, token: async () => small.apiKey, backoffMs: 20 });
      for (let i = 0; i < 5; i++) small.addForeign(`box-${i}`, i % 2 ? 'us-central1-b' : 'us-central1-a');
      const all = await q.listInstances();
      assert.deepEqual(all.map((x) => x.id).sort(), ['box-0', 'box-1', 'box-2', 'box-3', 'box-4']);
      assert.ok(small.requests.filter((r) => r.path.endsWith('/aggregated/instances')).length >= 3, 'three pages at least');
      assert.deepEqual((await q.zoneList('us-central1-a')).map((x) => x.name).sort(), ['box-0', 'box-2', 'box-4']);
      // A machine-type listing pages too (the catalogue).
      assert.ok((await q.listInstanceTypes()).some((t) => t.name === 'g2-standard-4'));
      assert.ok(small.requests.filter((r) => r.path.endsWith('/machineTypes')).length >= 3);
      // describe finds an instance of another zone once a list has seen it there.
      assert.equal((await q.describe('box-1'))?.region, 'us-central1-b');
    } finally {
      await small.stop();
    }
  });

  it('an instance in a zone it was never seen in (after a restart) is found in every zone, not taken for deleted', async () => {
    fake.addForeign('far-box', 'europe-west4-a');
    const d = await p.describe('far-box');
    assert.equal(d?.region, 'europe-west4-a');
    assert.equal(d?.status, 'running');
    const fresh = new GcpComputeProvider({ project: 'tether-test', zone: 'us-central1-a', baseUrl: fake.url, token: async () => fake.apiKey, backoffMs: 20 });
    await fresh.terminate('far-box');
    assert.ok(fake.requests.some((r) => r.method === 'DELETE' && r.path.endsWith('/zones/europe-west4-a/instances/far-box')), 'deleted where it lives');
    assert.equal(await fresh.describe('never-was'), undefined);
  });

  it('a list with unreachable zones is an error, not a list without their instances (reconcile must not close their records)', async () => {
    fake.addForeign('near', 'us-central1-a');
    fake.addForeign('far', 'europe-west4-a');
    fake.unreachableZones = ['europe-west4-a'];
    await assert.rejects(p.listInstances(), (e: unknown) => e instanceof CloudApiError && /incomplete: unreachable zones\/europe-west4-a/.test(e.message));
    fake.unreachableZones = [];
    assert.deepEqual((await p.listInstances()).map((i) => i.id).sort(), ['far', 'near']);
  });

  it('a launch retried with the same ledger id finds the first (label filter), and sends the same requestId', async () => {
    const id = randomUUID();
    const a = await p.launch({ ledgerId: id, name: 'once', instanceType: 'g2-standard-4' });
    const b = await p.launch({ ledgerId: id, name: 'once', instanceType: 'g2-standard-4' });
    assert.equal(a.id, b.id);
    assert.equal(fake.instanceCount(), 1);
    const lists = fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/zones/us-central1-a/instances') && r.search?.includes('filter='));
    assert.ok(lists.length >= 2);
    assert.match(decodeURIComponent(lists[0]!.search!.replace(/\+/g, ' ')), new RegExp(`filter=labels\\.tether-record = "${id}"`));
    const inserts = fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances'));
    assert.equal(inserts.length, 1);
    assert.match(inserts[0]!.search ?? '', new RegExp(`requestId=${gcpRequestId(id)}`));
  });

  it('requestId, names, labels and statuses follow Compute Engine\'s rules', () => {
    const id = randomUUID();
    assert.equal(gcpRequestId(id), gcpRequestId(id), 'deterministic');
    assert.notEqual(gcpRequestId(id), gcpRequestId(randomUUID()));
    assert.notEqual(gcpRequestId(id, 'insert'), gcpRequestId(id, 'stop'));
    assert.match(gcpRequestId(id), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const name = gceInstanceName({ ledgerId: id, name: 'My Big_Job! '.repeat(10), owner: 'k3j9x8a2' });
    assert.match(name, /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/);
    assert.ok(name.startsWith(`tether-${id.slice(0, 8)}k3j9x8a2-my-big-job-`), name);
    assert.equal(labelValue(id), id, 'a lowercase UUID fits a label value as it is');
    assert.ok(LABEL_VALUE_RE.test(labelValue('Some ID with Spaces and ÜBER-long'.repeat(5))));
    const want: Record<string, string> = { PROVISIONING: 'provisioning', STAGING: 'provisioning', RUNNING: 'running', STOPPING: 'stopping', SUSPENDING: 'stopping', STOPPED: 'stopped', SUSPENDED: 'stopped', TERMINATED: 'stopped', REPAIRING: 'unknown', DEPROVISIONING: 'terminating' };
    for (const [raw, state] of Object.entries(want)) assert.equal(mapGceStatus(raw), state, raw);
    assert.deepEqual(parseInstanceType('g2-standard-4:spot'), { machineType: 'g2-standard-4', spot: true });
    assert.deepEqual(parseInstanceType('n1-standard-8+nvidia-tesla-t4'), { machineType: 'n1-standard-8', accelerator: { type: 'nvidia-tesla-t4', count: 1 }, spot: false });
    assert.equal(parseInstanceType('G2 standard'), undefined);
  });

  it('the billing rule: 1-minute minimum, then per second while RUNNING/STOPPING; the disk bills while stopped', () => {
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    const price = [{ at: t0, computePerHour: 3.6, storagePerHour: 0.36 }];
    const short = accrue([{ at: t0, state: 'running' }, { at: t0 + 20_000, state: 'terminated' }], price, GCP_BILLING, t0 + 3_600_000);
    assert.equal(short.billedSeconds, 60);
    assert.ok(Math.abs(short.compute - 3.6 / 60) < 1e-9);
    const long = accrue([{ at: t0, state: 'running' }, { at: t0 + 90_500, state: 'stopping' }, { at: t0 + 100_000, state: 'stopped' }, { at: t0 + 3_700_000, state: 'terminated' }], price, GCP_BILLING, t0 + 4_000_000);
    assert.equal(long.billedSeconds, 100, 'per second, STOPPING included, until TERMINATED');
    assert.ok(long.storage > 0.35, 'the disk billed for the hour it sat stopped');
    assert.match(GCP_BILLING.citation, /^https:\/\/cloud\.google\.com\/compute\/vm-instance-pricing/);
  });
});
