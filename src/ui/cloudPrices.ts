/**
 * "Tether: Refresh Cloud Prices": a provider's dated price catalogue (EC2's from the AWS Price
 * List API, ...) refreshed into the state folder, for the providers that keep one (their
 * descriptor's `refreshPrices`; the others quote their own prices).
 */
import * as vscode from 'vscode';
import { describeError } from '../core/errors';
import { CLOUD_PROVIDERS } from '../fleet/cloudAccounts';
import type { CloudKeys } from './cloudKeys';

export function registerCloudPricesCommand(deps: { cloudKeys: CloudKeys; stateDir: () => string; log: vscode.LogOutputChannel; onRefreshed: () => unknown }): vscode.Disposable {
  const { cloudKeys, stateDir, log } = deps;
  return vscode.commands.registerCommand('tether.refreshAwsPrices', async (kind?: unknown) => {
    const candidates = CLOUD_PROVIDERS.filter((d) => d.refreshPrices && cloudKeys.current[d.kind] && (typeof kind !== 'string' || d.kind === kind));
    if (!candidates.length) {
      const names = CLOUD_PROVIDERS.filter((d) => d.refreshPrices).map((d) => d.title).join(', ');
      return void vscode.window.showInformationMessage(`Tether: no account with a price catalogue to refresh (${names}): run "Tether: Set Cloud API Key…" first.`);
    }
    const d = candidates.length === 1 ? candidates[0]! : (await vscode.window.showQuickPick(candidates.map((c) => ({ label: c.title, d: c })), { placeHolder: 'Refresh the prices of which provider?' }))?.d;
    if (!d) return;
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Tether: reading ${d.title} prices…` },
        // The provider's pricing client (and its SDK) loads on first use, not at activation.
        () => d.refreshPrices!(cloudKeys.current[d.kind], { log, stateDir: stateDir(), env: process.env }),
      );
      log.info(`${d.title} prices refreshed: ${r.summary}`);
      void vscode.window.showInformationMessage(`Tether: ${r.summary}.`);
      await deps.onRefreshed();
    } catch (err) {
      log.error(`${d.title} prices: ${describeError(err)}`);
      void vscode.window.showErrorMessage(`Tether: ${describeError(err)}`, 'Open Tether Log').then((c) => c && log.show());
    }
  });
}
