/** Human formats shared by the CLI, the tree view and the status bar. */

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function formatCpu(p: number | null | undefined): string {
  return p === null || p === undefined ? '–' : `${p.toFixed(p >= 10 ? 0 : 1)}%`;
}

export function formatUsd(n: number): string {
  return `$${n.toFixed(2)}`;
}
