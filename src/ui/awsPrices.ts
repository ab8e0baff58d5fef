/** "Tether: Refresh AWS Prices": EC2 on-demand prices from the AWS Price List API into the state folder. */
import * as vscode from 'vscode';
import { describeError } from '../core/errors';
import type { CloudKeys } from './cloudKeys';

export function registerAwsPricesCommand(deps: { cloudKeys: CloudKeys; stateDir: () => string; log: vscode.LogOutputChannel; onRefreshed: () => unknown }): vscode.Disposable {
  const { cloudKeys, stateDir, log } = deps;
  return vscode.commands.registerCommand('tether.refreshAwsPrices', async () => {
    const aws = cloudKeys.current.aws;
    if (!aws) return void vscode.window.showInformationMessage('Tether: no AWS account yet: run "Tether: Set Cloud API Key…" and pick AWS EC2.');
    try {
      const { catalogue, file } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Tether: reading EC2 on-demand prices for ${aws.region} from the AWS Price List API…` },
        // awsPricing (and the AWS SDK behind it) loads on first use, not at activation.
        async () => (await import('../backends/cloud/aws/awsPricing')).refreshUserCatalogue(stateDir(), { regions: [aws.region], ...(aws.credentials ? { credentials: aws.credentials } : {}), log }),
      );
      const n = Object.keys(catalogue.regions[aws.region] ?? {}).length;
      log.info(`AWS prices refreshed: ${n} types in ${aws.region} as of ${catalogue.asOf} (${file})`);
      void vscode.window.showInformationMessage(`Tether: ${n} EC2 on-demand prices for ${aws.region} as of ${catalogue.asOf}.`);
      await deps.onRefreshed();
    } catch (err) {
      log.error(`AWS prices: ${describeError(err)}`);
      void vscode.window.showErrorMessage(`Tether: ${describeError(err)}`, 'Open Tether Log').then((c) => c && log.show());
    }
  });
}
