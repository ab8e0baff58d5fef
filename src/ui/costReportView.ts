/**
 * "Tether: Show Cost Report": a webview with spend over time (stacked by provider or resource, Chart.js
 * bundled into dist/webview, theme colours) and the per-resource table, under a strict
 * Content-Security-Policy (no remote content, one nonce'd script). Export to CSV.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { formatUsd } from '../core/format';
import { costCsv, costReport, spendSeries } from '../fleet/costReport';
import type { TetherModel } from './model';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export async function showCostReport(context: vscode.ExtensionContext, model: TetherModel): Promise<void> {
  const folder = model.folders[0];
  if (!folder) return void vscode.window.showInformationMessage('Tether: open a folder first.');
  const ledger = model.engine(folder).ledger;
  const report = costReport(ledger);
  const series = spendSeries(ledger);
  const panel = vscode.window.createWebviewPanel('tether.costReport', 'Tether: Cost Report', vscode.ViewColumn.Active, {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview')],
  });
  const nonce = randomBytes(16).toString('base64');
  const script = panel.webview.asWebviewUri(vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview', 'costReport.js'));
  const csp = `default-src 'none'; img-src ${panel.webview.cspSource}; style-src 'unsafe-inline'; script-src 'nonce-${nonce}' ${panel.webview.cspSource};`;
  const rows = report.lines
    .map(
      (l) =>
        `<tr><td>${esc(l.name)}</td><td>${esc(l.provider)}</td><td>${esc(l.instanceType ?? '')}</td><td class="n">${formatUsd(l.pricePerHour)}/h</td><td>${esc(l.startedAt.slice(0, 16).replace('T', ' '))}</td><td>${l.endedAt ? esc(l.endedAt.slice(0, 16).replace('T', ' ')) : 'running'}</td><td class="n">${formatUsd(l.cost)}</td></tr>`,
    )
    .join('');
  const providers = Object.entries(report.byProvider)
    .map(([p, c]) => `<span class="chip">${esc(p)}: ${formatUsd(c)}</span>`)
    .join(' ');
  panel.webview.html = `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<style>
body{color:var(--vscode-foreground);font-family:var(--vscode-font-family);padding:0 16px}
h1{font-size:1.3em;font-weight:600} .total{font-size:1.6em;font-weight:600}
.chart{position:relative;height:260px;margin:12px 0}
table{border-collapse:collapse;width:100%} th,td{padding:4px 8px;border-bottom:1px solid var(--vscode-editorWidget-border);text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums} .chip{background:var(--vscode-badge-background);color:var(--vscode-badge-foreground);border-radius:8px;padding:2px 8px}
button{background:var(--vscode-button-background);color:var(--vscode-button-foreground);border:0;padding:4px 12px;cursor:pointer}
button.seg{background:var(--vscode-button-secondaryBackground);color:var(--vscode-button-secondaryForeground);margin-left:4px}
button.seg[aria-pressed="true"]{background:var(--vscode-button-background);color:var(--vscode-button-foreground)}
</style></head><body>
<h1>Cloud spend</h1>
<div><span class="total">${formatUsd(report.total)}</span> in all ${providers}</div>
<div role="group" aria-label="Stack the chart by">Stacked by <button data-stack="provider" class="seg">Provider</button><button data-stack="resource" class="seg">Resource</button></div>
<div class="chart"><canvas id="spend" aria-label="Cumulative spend over time, stacked"></canvas></div>
<p><button id="export">Export CSV…</button></p>
<table><thead><tr><th>Resource</th><th>Provider</th><th>Type</th><th>Rate</th><th>Started (UTC)</th><th>Ended</th><th>Cost</th></tr></thead><tbody>${rows || '<tr><td colspan="7">No cloud resources yet.</td></tr>'}</tbody></table>
<p>Costs follow each provider's billing rule (increments, minimums, storage) from Tether's ledger.</p>
<script id="tether-data" type="application/json">${JSON.stringify({ series }).replace(/</g, '\\u003c')}</script>
<script nonce="${nonce}" src="${script}"></script>
</body></html>`;
  panel.webview.onDidReceiveMessage(async (msg: { type?: string }) => {
    if (msg?.type !== 'exportCsv') return;
    const target = await vscode.window.showSaveDialog({ filters: { CSV: ['csv'] }, defaultUri: vscode.Uri.file(`${folder}/tether-costs.csv`) });
    if (!target) return;
    fs.writeFileSync(target.fsPath, costCsv(costReport(ledger)));
    void vscode.window.showInformationMessage(`Tether: cost report saved to ${target.fsPath}`);
  }, undefined, context.subscriptions);
}
