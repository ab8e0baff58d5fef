import { strict as assert } from 'node:assert';
import { accrue } from '../../src/core/cost';
import { CLOUD_RUN_BILLING } from '../../src/backends/cloud/cloudrun/billing';
import { executionState } from '../../src/backends/cloud/cloudrun/cloudrun';
import { CLOUD_RUN_PRICES, CLOUD_RUN_SHAPES, cloudRunTypeFromFlags, cloudRunTypeName, parseCloudRunType, shapePricePerHour, shapeProblem } from '../../src/backends/cloud/cloudrun/pricing';

describe('Cloud Run jobs: shapes, the shipped price table, the billing rule', () => {
  it('prices a task instance from vCPU-s, GiB-s and GPU-s (Tier 1), and no price outside the table', () => {
    assert.equal(shapePricePerHour({ cpu: 1, memoryGiB: 2 }, 'us-central1'), 0.0792); // (0.000018 + 2 × 0.000002) × 3600
    assert.equal(shapePricePerHour({ cpu: 4, memoryGiB: 16, gpu: 'nvidia-l4' }, 'us-central1'), 1.04652); // + 0.0001867 × 3600
    assert.equal(shapePricePerHour({ cpu: 1, memoryGiB: 2 }, 'southamerica-east1'), undefined);
    assert.equal(CLOUD_RUN_PRICES.source, 'https://cloud.google.com/run/pricing');
    assert.match(CLOUD_RUN_PRICES.asOf, /^\d{4}-\d{2}-\d{2}$/);
    for (const s of CLOUD_RUN_SHAPES) assert.equal(shapeProblem(s), undefined, cloudRunTypeName(s));
  });

  it('type names and --cpu/--memory/--gpu: what Cloud Run allows, said when it does not', () => {
    assert.deepEqual(parseCloudRunType('l4-8vcpu-32gib'), { cpu: 8, memoryGiB: 32, gpu: 'nvidia-l4' });
    assert.equal(parseCloudRunType('p3.2xlarge'), undefined);
    assert.match(shapeProblem({ cpu: 6, memoryGiB: 8 })!, /1, 2, 4 or 8 vCPU/);
    assert.match(shapeProblem({ cpu: 2, memoryGiB: 16 })!, /1 to 8 GiB/);
    assert.match(shapeProblem({ cpu: 8, memoryGiB: 8, gpu: 'nvidia-l4' })!, /16 GiB/);
    assert.equal(cloudRunTypeFromFlags({ cpu: '4', memory: '16Gi', gpu: 'l4' }), 'l4-4vcpu-16gib');
    assert.equal(cloudRunTypeFromFlags({ gpu: 'nvidia-l4' }), 'l4-4vcpu-16gib');
    assert.equal(cloudRunTypeFromFlags({ cpu: '2', memory: '8' }), '2vcpu-8gib');
    assert.equal(cloudRunTypeFromFlags({}), undefined);
    assert.throws(() => cloudRunTypeFromFlags({ cpu: 'two' }), /--cpu must be a whole number/);
    assert.throws(() => cloudRunTypeFromFlags({ memory: '512Mi' }), /--memory must be whole GiB/);
    assert.throws(() => cloudRunTypeFromFlags({ gpu: 'a100' }), /--gpu takes l4/);
  });

  it('bills instance time per 100 ms, no minimum: pending is free, cancelling bills, an ended execution does not', () => {
    const t0 = 1_000_000;
    const price = [{ at: t0, computePerHour: 3.6 }]; // $0.001 per second
    const a = accrue(
      [
        { at: t0, state: 'provisioning' },
        { at: t0 + 5_000, state: 'running' },
        { at: t0 + 15_020, state: 'terminating' },
        { at: t0 + 15_050, state: 'terminated' },
      ],
      price,
      CLOUD_RUN_BILLING,
      t0 + 3_600_000,
    );
    assert.ok(Math.abs(a.billedSeconds - 10.1) < 1e-9, `10.05 s → 10.1 s, got ${a.billedSeconds}`);
    assert.ok(Math.abs(a.total - 0.0101) < 1e-9, `$${a.total}`);
    assert.equal(CLOUD_RUN_BILLING.citation, 'https://cloud.google.com/run/pricing');
  });

  it('reads an execution\'s state from its times and Completed condition', () => {
    const base = { name: 'projects/p/locations/l/jobs/j/executions/j-abcde' };
    assert.deepEqual(executionState(base), { status: 'provisioning', raw: 'Pending' });
    assert.deepEqual(executionState({ ...base, startTime: 'x' }), { status: 'running', raw: 'Running' });
    assert.deepEqual(executionState({ ...base, startTime: 'x', conditions: [{ type: 'Completed', state: 'CONDITION_RECONCILING', executionReason: 'CANCELLING' }] }), { status: 'terminating', raw: 'Cancelling' });
    assert.deepEqual(executionState({ ...base, completionTime: 'x', conditions: [{ type: 'Completed', state: 'CONDITION_FAILED', executionReason: 'CANCELLED' }] }), { status: 'terminated', raw: 'Cancelled' });
    assert.deepEqual(executionState({ ...base, completionTime: 'x', failedCount: 1 }), { status: 'terminated', raw: 'Failed' });
    assert.deepEqual(executionState({ ...base, completionTime: 'x', succeededCount: 1, conditions: [{ type: 'Completed', state: 'CONDITION_SUCCEEDED' }] }), { status: 'terminated', raw: 'Succeeded' });
  });
});
