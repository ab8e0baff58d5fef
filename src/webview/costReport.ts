/**
 * The cost report webview's script (bundled by webpack into dist/webview/costReport.js; no CDN).
 * Draws spend over time, stacked by provider or by resource (a toggle), with Chart.js in the editor's theme colours, and
 * the per-resource table. Data arrives in a JSON <script> block the extension writes.
 */
import {
  Chart,
  LineController,
  LineElement,
  PointElement,
  LinearScale,
  TimeScale,
  CategoryScale,
  Filler,
  Legend,
  Tooltip,
} from 'chart.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, TimeScale, CategoryScale, Filler, Legend, Tooltip);

interface Series {
  labels: string[];
  byProvider: Record<string, number[]>;
  byResource: Record<string, number[]>;
}

type Stack = 'provider' | 'resource';

declare function acquireVsCodeApi(): { postMessage(msg: unknown): void };

const vscode = acquireVsCodeApi();
const data = JSON.parse(document.getElementById('tether-data')!.textContent!) as { series: Series };
const css = getComputedStyle(document.body);
const fg = css.getPropertyValue('--vscode-foreground').trim() || '#888';
const grid = css.getPropertyValue('--vscode-editorWidget-border').trim() || 'rgba(128,128,128,0.3)';
const palette = ['--vscode-charts-blue', '--vscode-charts-orange', '--vscode-charts-green', '--vscode-charts-purple', '--vscode-charts-red', '--vscode-charts-yellow'].map(
  (v, i) => css.getPropertyValue(v).trim() || ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i]!,
);

const datasets = (stack: Stack) =>
  Object.entries(stack === 'provider' ? data.series.byProvider : data.series.byResource).map(([label, values], i) => ({
    label,
    data: values,
    fill: true,
    borderColor: palette[i % palette.length],
    backgroundColor: `${palette[i % palette.length]}55`,
    pointRadius: 0,
    tension: 0.2,
  }));

const chart = new Chart(document.getElementById('spend') as HTMLCanvasElement, {
  type: 'line',
  data: { labels: data.series.labels, datasets: datasets('provider') },
  options: {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    scales: {
      x: { ticks: { color: fg, maxTicksLimit: 8 }, grid: { color: grid } },
      y: { stacked: true, beginAtZero: true, ticks: { color: fg, callback: (v) => `$${Number(v).toFixed(Number(v) < 1 ? 3 : 2)}` }, grid: { color: grid } },
    },
    plugins: { legend: { labels: { color: fg } }, tooltip: { callbacks: { label: (c) => `${c.dataset.label}: $${Number(c.parsed.y).toFixed(2)}` } } },
  },
});
/** Re-stacks the chart; the body's data attributes say what is drawn (for tests and screen readers). */
function show(stack: Stack): void {
  chart.data.datasets = datasets(stack);
  chart.update();
  document.body.dataset.stack = stack;
  document.body.dataset.series = chart.data.datasets.map((d) => d.label).join(',');
  document.querySelectorAll<HTMLButtonElement>('button[data-stack]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.stack === stack)));
}
document.querySelectorAll<HTMLButtonElement>('button[data-stack]').forEach((b) => b.addEventListener('click', () => show(b.dataset.stack as Stack)));
show('provider');
document.body.dataset.chart = 'ready';

document.getElementById('export')?.addEventListener('click', () => vscode.postMessage({ type: 'exportCsv' }));
