// A separate process that appends N resources to a ledger, one locked update each.
import { Ledger } from '../../src/core/ledger';

async function main() {
  const [dir, n, tag] = process.argv.slice(2);
  const ledger = new Ledger(dir!);
  for (let i = 0; i < Number(n); i++) {
    await ledger.addIntent({ kind: 'local', plugin: `${tag}-${i}`, executionMode: 'subprocess' as never });
  }
}
void main();
