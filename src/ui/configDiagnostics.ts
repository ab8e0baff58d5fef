/** Shows the problems of `.vscode/tether.json` in the Problems panel, at their lines. */
import * as vscode from 'vscode';
import { ConfigError } from '../core/errors';
import { configPath, loadConfig } from '../core/config';

export class ConfigDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('tether');

  /** Re-validates the config of each folder; returns the errors found. */
  update(folders: readonly string[]): ConfigError[] {
    this.collection.clear();
    const errors: ConfigError[] = [];
    for (const folder of folders) {
      try {
        loadConfig(folder);
      } catch (err) {
        if (!(err instanceof ConfigError)) continue;
        errors.push(err);
        this.collection.set(
          vscode.Uri.file(configPath(folder)),
          err.problems.map((p) => {
            const line = Math.max(0, (p.line ?? 1) - 1);
            const col = Math.max(0, (p.column ?? 1) - 1);
            const d = new vscode.Diagnostic(new vscode.Range(line, col, line, col + 1), `${p.path || '/'}: ${p.message}`, vscode.DiagnosticSeverity.Error);
            d.source = 'tether';
            return d;
          }),
        );
      }
    }
    return errors;
  }

  dispose(): void {
    this.collection.dispose();
  }
}
