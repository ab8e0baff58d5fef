/**
 * Reconciles one provider's instance list with the ledger: this ledger's instances it lost
 * track of are re-adopted, instances without Tether's marker are reported as *unmanaged* and
 * instances another ledger launched as *elsewhere* (both never touched), and records whose
 * instance is gone are ended.
 */
import type { LedgerBody, Ledger, LedgerResource } from '../../core/ledger';
import { ledgerStateOf, executionModeOf, remoteOf } from './cloudPlugin';
import { markerOf, matchesLedgerId, readLedgerIdentity } from './marker';
import type { CloudInstance, CloudProvider } from './provider';

/**
 * Which ledger launched an instance, seen from this one: `this` (its marker names this ledger,
 * or an old-format marker names a record this ledger has or had), `elsewhere` (another ledger:
 * another machine, a teammate on the same key, another state folder), or undefined (no marker:
 * not launched by Tether).
 */
export function originOf(inst: Pick<CloudInstance, 'tetherId'>, self: string | undefined, body: Pick<LedgerBody, 'resources' | 'ended'>): 'this' | 'elsewhere' | undefined {
  const m = markerOf(inst.tetherId);
  if (!m) return undefined;
  if (m.ledger) return m.ledger === self ? 'this' : 'elsewhere';
  const known = (r: LedgerResource) => r.kind === 'cloud' && matchesLedgerId(inst, r.id);
  return body.resources.some(known) || body.ended.some(known) ? 'this' : 'elsewhere';
}

export interface ReconcileResult {
  /** Launched by Tether (marker), missing or incomplete in the ledger: now recorded. */
  adopted: CloudInstance[];
  /** No marker: shown to the user, never terminated by Tether. */
  unmanaged: CloudInstance[];
  /** Another ledger's marker ("Tether-launched elsewhere"): shown, never adopted or terminated here. */
  elsewhere: CloudInstance[];
  /** Ledger ids whose instance is terminated or unknown to the provider: ended. */
  gone: string[];
}

export interface ReconcileOptions {
  /** Plugin name for adopted instances without a record. Default `cloud-<provider>`. */
  pluginName?: string;
  /** An intent without an instance older than this is ended as failed (ms). Default 15 min. */
  staleIntentMs?: number;
  /** The provider's list when the caller has just fetched it (one request per poll, not two). */
  list?: CloudInstance[];
  /** This ledger's id (marker.ts); default: read from the ledger's state folder (never created here). */
  self?: string;
}

export async function reconcileCloud(provider: CloudProvider, ledger: Ledger, o: ReconcileOptions = {}): Promise<ReconcileResult> {
  const result: ReconcileResult = { adopted: [], unmanaged: [], elsewhere: [], gone: [] };
  const self = o.self ?? readLedgerIdentity(ledger.stateDir);
  const live = (o.list ?? (await provider.listInstances())).filter((i) => i.status !== 'terminated');
  const records = (): LedgerResource[] => ledger.read().resources.filter((r) => r.kind === 'cloud' && r.remote?.provider === provider.type);

  for (const inst of live) {
    const recs = records();
    const byId = recs.find((r) => r.remote?.instanceId === inst.id);
    if (byId) continue; // known and complete
    const origin = originOf(inst, self, ledger.read());
    if (!origin) {
      result.unmanaged.push(inst);
      continue;
    }
    if (origin === 'elsewhere') {
      result.elsewhere.push(inst);
      continue;
    }
    // Terminated through Tether a moment ago and still shutting down: not a forgotten instance.
    const ended = ledger.read().ended.find((r) => r.kind === 'cloud' && r.remote?.instanceId === inst.id);
    if (ended && (inst.status === 'terminating' || inst.status === 'stopping')) continue;
    const byMarker = recs.find((r) => matchesLedgerId(inst, r.id, self) && !r.remote?.instanceId);
    if (byMarker) {
      await ledger.patch(byMarker.id, { remote: remoteOf(inst, byMarker.remote), state: ledgerStateOf(inst.status) }, `re-adopted ${inst.id} by its marker`);
    } else {
      const rec = await ledger.addIntent({
        kind: 'cloud',
        plugin: o.pluginName ?? `cloud-${provider.type}`,
        executionMode: executionModeOf(inst.gpuCount),
        owner: { kind: 'detached', pid: 0, startTime: 0, host: '' },
        remote: remoteOf(inst, undefined),
      });
      const merged = remoteOf(inst, rec.remote);
      merged.metadata = { ...merged.metadata, tetherId: inst.tetherId, adopted: true };
      await ledger.patch(rec.id, { remote: merged, state: ledgerStateOf(inst.status) }, `adopted ${inst.id}: it carries Tether's marker ${inst.tetherId} but had no ledger record`);
    }
    result.adopted.push(inst);
  }

  const liveIds = new Set(live.map((i) => i.id));
  const stale = o.staleIntentMs ?? 15 * 60_000;
  for (const r of records()) {
    const id = r.remote?.instanceId;
    if (id) {
      if (liveIds.has(id)) continue;
      const d = await provider.describe(id);
      if (d && d.status !== 'terminated') continue;
      await ledger.end(r.id, 'stopped', `instance ${id} is ${d ? d.rawStatus : 'unknown to the provider'}: ended by reconcile`);
      result.gone.push(r.id);
    } else if (Date.now() - Date.parse(r.createdAt) > stale) {
      // An intent whose launch never produced an instance (none carries its marker).
      await ledger.end(r.id, 'failed', 'no instance carries this intent\'s marker: the launch never happened');
      result.gone.push(r.id);
    }
  }
  return result;
}
